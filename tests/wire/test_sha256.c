/*
 * SHA-256: the FIPS 180-4 example vectors, every split of a message into
 * updates, and the SHA-extension path against the portable one on random
 * data of every length around the block boundaries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tp.h"

static void hex(const uint8_t *d, char *out)
{
	int i;

	for (i = 0; i < TP_SHA256_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const void *msg, size_t len, const char *want)
{
	uint8_t d[TP_SHA256_LEN];
	char got[2 * TP_SHA256_LEN + 1];

	tp_sha256(msg, len, d);
	hex(d, got);
	assert_string_equal(got, want);
}

static void vectors(int portable)
{
	static const char two_block[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char *million = malloc(1000000);

	assert_non_null(million);
	memset(million, 'a', 1000000);
	tp_sha256_force_portable(portable);
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check(two_block, strlen(two_block), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	check(million, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	tp_sha256_force_portable(0);
	free(million);
}

static void test_vectors_portable(void **state)
{
	(void)state;
	vectors(1);
}

static void test_vectors_default(void **state)
{
	(void)state;
	printf("# the SHA extensions are %s\n", tp_sha256_accelerated() ? "used" : "absent: portable code only");
	vectors(0);
}

/* Updates of every size give the digest of the whole. */
static void test_splits(void **state)
{
	uint8_t msg[300], whole[TP_SHA256_LEN], parts[TP_SHA256_LEN];
	struct tp_sha256 c;
	size_t i, step;

	(void)state;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + 3);
	tp_sha256(msg, sizeof(msg), whole);
	for (step = 1; step <= 130; step++) {
		tp_sha256_init(&c);
		for (i = 0; i < sizeof(msg); i += step)
			tp_sha256_update(&c, msg + i, i + step <= sizeof(msg) ? step : sizeof(msg) - i);
		tp_sha256_final(&c, parts);
		assert_memory_equal(whole, parts, TP_SHA256_LEN);
	}
	/* A negative control: one changed byte changes the digest. */
	msg[150] ^= 1;
	tp_sha256(msg, sizeof(msg), parts);
	assert_memory_not_equal(whole, parts, TP_SHA256_LEN);
}

static void test_fast_equals_portable(void **state)
{
	uint8_t buf[4200], a[TP_SHA256_LEN], b[TP_SHA256_LEN];
	size_t len, i;
	unsigned int x = 12345;

	(void)state;
	if (!tp_sha256_accelerated()) {
		skip();
		return;
	}
	for (i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (len = 0; len < sizeof(buf); len += (len < 300 ? 1 : 61)) {
		tp_sha256_force_portable(1);
		tp_sha256(buf, len, a);
		tp_sha256_force_portable(0);
		tp_sha256(buf, len, b);
		assert_memory_equal(a, b, TP_SHA256_LEN);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_portable),
		cmocka_unit_test(test_vectors_default),
		cmocka_unit_test(test_splits),
		cmocka_unit_test(test_fast_equals_portable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
