/*
 * SHA-256 (FIPS 180-4 examples), HMAC-SHA256 (RFC 4231 test cases), the
 * constant-time compare, secret files, and the AUTH exchange over a socket
 * pair: both sides right, a wrong secret, no AUTH where one is needed, AUTH
 * to a server without a secret.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth.h"
#include "tp.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	assert_int_equal(strlen(s), 2 * n);
	for (i = 0; i < n; i++) {
		unsigned int v;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void check_sha(const void *p, size_t n, const char *want)
{
	uint8_t got[32], w[32];

	hex(want, w, 32);
	tp_sha256(p, n, got);
	assert_memory_equal(got, w, 32);
}

static void test_sha256_vectors(void **state)
{
	static const char two_block[] =
		"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	struct tp_sha256 s;
	uint8_t got[32], w[32];
	char *a;
	int i;

	check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_sha(two_block, strlen(two_block), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	/* One million 'a', fed in uneven pieces. */
	a = malloc(1000000);
	assert_non_null(a);
	memset(a, 'a', 1000000);
	check_sha(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	tp_sha256_init(&s);
	for (i = 0; i < 1000000; i += 997)
		tp_sha256_update(&s, a + i, (size_t)(1000000 - i < 997 ? 1000000 - i : 997));
	tp_sha256_final(&s, got);
	hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", w, 32);
	assert_memory_equal(got, w, 32);
	free(a);
}

/* Every split of a message that crosses the padding boundaries hashes alike. */
static void test_sha256_splits(void **state)
{
	uint8_t msg[130], one[32], got[32];
	struct tp_sha256 s;
	size_t n, k;

	for (n = 0; n < sizeof(msg); n++)
		msg[n] = (uint8_t)(n * 7 + 1);
	for (n = 50; n < sizeof(msg); n++) {
		tp_sha256(msg, n, one);
		for (k = 0; k <= n; k += 13) {
			tp_sha256_init(&s);
			tp_sha256_update(&s, msg, k);
			tp_sha256_update(&s, msg + k, n - k);
			tp_sha256_final(&s, got);
			assert_memory_equal(got, one, 32);
		}
	}
}

static void check_hmac(const uint8_t *key, size_t klen, const void *data, size_t dlen, const char *want)
{
	struct iovec v = { (void *)data, dlen };
	uint8_t got[32], w[32];

	hex(want, w, 32);
	tp_hmac_sha256(key, klen, &v, 1, got);
	assert_memory_equal(got, w, 32);
}

static void test_hmac_rfc4231(void **state)
{
	static const char tc6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
	static const char tc7[] = "This is a test using a larger than block-size key and a larger than "
				  "block-size data. The key needs to be hashed before being used by the "
				  "HMAC algorithm.";
	uint8_t k[131], d[50];
	struct iovec v[3];
	uint8_t got[32], w[32];
	int i;

	memset(k, 0x0b, 20);
	check_hmac(k, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	check_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(k, 0xaa, 20);
	memset(d, 0xdd, 50);
	check_hmac(k, 20, d, 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	for (i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(d, 0xcd, 50);
	check_hmac(k, 25, d, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	memset(k, 0xaa, 131);
	check_hmac(k, 131, tc6, strlen(tc6), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	check_hmac(k, 131, tc7, strlen(tc7), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
	/* The same data in pieces. */
	v[0] = (struct iovec){ (void *)tc7, 10 };
	v[1] = (struct iovec){ (void *)(tc7 + 10), 0 };
	v[2] = (struct iovec){ (void *)(tc7 + 10), strlen(tc7) - 10 };
	tp_hmac_sha256(k, 131, v, 3, got);
	hex("9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", w, 32);
	assert_memory_equal(got, w, 32);
}

static void test_mem_equal(void **state)
{
	uint8_t a[32] = { 0 }, b[32] = { 0 };
	int i;

	assert_int_equal(tp_mem_equal(a, b, 32), 1);
	for (i = 0; i < 32; i++) {
		b[i] = 0x80;
		assert_int_equal(tp_mem_equal(a, b, 32), 0);
		b[i] = 0;
	}
	assert_int_equal(tp_mem_equal(a, b, 0), 1);
}

/* ---- secret files ------------------------------------------------------ */

static char dir[] = "/tmp/vgpu-auth-XXXXXX";

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_secret_files(void **state)
{
	struct tp_secret *s = calloc(1, sizeof(*s));
	char path[256], why[512];

	assert_non_null(s);
	snprintf(path, sizeof(path), "%s/secret", dir);
	write_file(path, "0123456789abcdef-the-secret\n\n", 0600);
	assert_int_equal(tp_secret_load(path, s, why, sizeof(why)), 0);
	assert_int_equal(s->len, 27);
	assert_memory_equal(s->key, "0123456789abcdef-the-secret", 27);
	/* Others may read it: refused, as ssh refuses such keys. */
	chmod(path, 0640);
	assert_int_equal(tp_secret_load(path, s, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "chmod 600"));
	assert_int_equal(s->len, 0);
	chmod(path, 0604);
	assert_int_equal(tp_secret_load(path, s, why, sizeof(why)), -EPERM);
	/* Too short once the newline is gone. */
	write_file(path, "0123456789abcde\n", 0600);
	assert_int_equal(tp_secret_load(path, s, why, sizeof(why)), -EINVAL);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(tp_secret_load(path, s, why, sizeof(why)), -ENOENT);
	assert_int_equal(tp_secret_load(dir, s, why, sizeof(why)), -EINVAL);
	free(s);
}

/* ---- the exchange ------------------------------------------------------ */

struct server {
	struct tp_chan *c;
	const struct tp_secret *s;
	int ret;
	struct vg_hdr after;	/* the message after AUTH */
};

static void *server_main(void *p)
{
	struct server *sv = p;
	struct vg_buf b;
	struct vg_hdr h;

	vg_buf_init(&b);
	sv->ret = tp_recv_msg(sv->c, &h, &b, 4096, NULL);
	if (sv->ret == 0)
		sv->ret = tp_auth_server(sv->c, sv->s, &h, b.p, b.len);
	if (sv->ret == 0 && tp_recv_msg(sv->c, &sv->after, &b, 4096, NULL) < 0)
		sv->ret = -100;
	if (sv->ret == 1)
		sv->after = h;
	if (sv->ret < 0)
		tp_chan_destroy(sv->c), sv->c = NULL;	/* the worker closes */
	vg_buf_fini(&b);
	return NULL;
}

static void secret_set(struct tp_secret *s, const char *text)
{
	memset(s, 0, sizeof(*s));
	s->len = strlen(text);
	memcpy(s->key, text, s->len);
}

/* Runs one exchange; returns the client's result, *sret the server's. */
static int exchange(const struct tp_secret *cs, const struct tp_secret *ss, int *sret, char *why, size_t n)
{
	struct server sv = { .s = ss };
	struct tp_chan *cl;
	struct vg_hdr h = { .kind = VG_MSG_STATS };
	pthread_t th;
	int fd, ret;

	assert_int_equal(tp_unix_pair(&cl, &fd), 0);
	assert_int_equal(tp_stream_wrap(fd, &sv.c), 0);
	assert_int_equal(pthread_create(&th, NULL, server_main, &sv), 0);
	if (cs)
		ret = tp_auth_client(cl, cs, why, n);
	else
		ret = 0;
	if (ret == 0)
		tp_send_msg(cl, &h, NULL, 0, -1);
	if (!cs && ss) {
		/* No AUTH from us: the server's ERROR comes instead of anything. */
		struct vg_buf b;
		struct vg_error e;
		struct vg_rd r;

		vg_buf_init(&b);
		assert_int_equal(tp_recv_msg(cl, &h, &b, 4096, NULL), 0);
		assert_int_equal(h.kind, VG_MSG_ERROR);
		vg_rd_init(&r, b.p, b.len);
		assert_int_equal(vg_error_decode(&r, &e), 0);
		assert_int_equal(e.code, EACCES);
		snprintf(why, n, "%.*s", (int)e.ntext, e.text);
		vg_buf_fini(&b);
		ret = -EACCES;
	}
	/* A failed client closes, which ends the server's wait. */
	tp_chan_destroy(cl);
	pthread_join(th, NULL);
	*sret = sv.ret;
	if (sv.ret >= 0)
		assert_int_equal(sv.after.kind, VG_MSG_STATS);
	tp_chan_destroy(sv.c);
	return ret;
}

static void test_exchange(void **state)
{
	struct tp_secret *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	char why[VG_TEXT_MAX + 1];
	int sret;

	assert_non_null(a);
	assert_non_null(b);
	secret_set(a, "a shared secret of some length");
	secret_set(b, "a shared secret of some lengtH");

	/* Same secret: both sides go on to the next message. */
	assert_int_equal(exchange(a, a, &sret, why, sizeof(why)), 0);
	assert_int_equal(sret, 0);
	/* No secret anywhere: the first message is handed back. */
	assert_int_equal(exchange(NULL, NULL, &sret, why, sizeof(why)), 0);
	assert_int_equal(sret, 1);
	/* Another secret: the guest sees the host's proof is wrong and stops. */
	assert_int_equal(exchange(b, a, &sret, why, sizeof(why)), -EACCES);
	assert_true(sret < 0);
	/* No AUTH to a server with a secret. */
	assert_int_equal(exchange(NULL, a, &sret, why, sizeof(why)), -EACCES);
	assert_int_equal(sret, -EACCES);
	assert_non_null(strstr(why, "authentication required"));
	/* AUTH to a server without one. */
	assert_int_equal(exchange(a, NULL, &sret, why, sizeof(why)), -EACCES);
	assert_int_equal(sret, -EACCES);
	assert_non_null(strstr(why, "no secret"));
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_vectors),
		cmocka_unit_test(test_sha256_splits),
		cmocka_unit_test(test_hmac_rfc4231),
		cmocka_unit_test(test_mem_equal),
		cmocka_unit_test(test_secret_files),
		cmocka_unit_test(test_exchange),
	};
	int ret;

	if (!mkdtemp(dir))
		return 1;
	char path[256];

	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(path, sizeof(path), "%s/secret", dir);
	unlink(path);
	rmdir(dir);
	return ret;
}
