/*
 * Wire codec tests: every message kind against its hand-written golden
 * bytes (golden.c) in both directions, then the limits: truncation at every
 * length, counts one over their maxima, header rules, the reader's bounds
 * and the writer's sticky errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "golden.h"
#include "vgpu/wire.h"

/* ---- the writer's allocations, made to fail on demand ------------------ */

void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
static int realloc_fail;

void *__wrap_realloc(void *p, size_t n)
{
	if (realloc_fail)
		return NULL;
	return __real_realloc(p, n);
}

/* ---- helpers ----------------------------------------------------------- */

/* Header + payload as one message, the way tp_send_msg frames it. */
static void check_encoded(const struct golden *g, struct vg_hdr *h, const struct vg_buf *payload)
{
	size_t n = VG_HDR_SIZE + payload->len;
	uint8_t *msg = malloc(n);

	assert_non_null(msg);
	assert_int_equal(payload->err, 0);
	h->len = (uint32_t)n;
	vg_hdr_encode(h, msg);
	if (payload->len)
		memcpy(msg + VG_HDR_SIZE, payload->p, payload->len);
	assert_int_equal(n, g->len);
	assert_memory_equal(msg, g->bytes, g->len);
	free(msg);
}

static void check_hdr(const struct golden *g, uint16_t kind, uint16_t flags, uint32_t op,
		      uint32_t tid, uint64_t seq, int32_t status)
{
	struct vg_hdr h;

	assert_int_equal(vg_hdr_decode(g->bytes, &h), 0);
	assert_int_equal(h.len, g->len);
	assert_int_equal(h.kind, kind);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.op, op);
	assert_int_equal(h.tid, tid);
	assert_true(h.seq == seq);
	assert_int_equal(h.status, status);
	assert_int_equal(h.reserved, 0);
}

/* A reader over the golden message's payload. */
static void payload_rd(const struct golden *g, struct vg_rd *r)
{
	vg_rd_init(r, g->bytes + VG_HDR_SIZE, g->len - VG_HDR_SIZE);
}

/* A copy of bytes in a block of exactly n bytes: AddressSanitizer reports
 * a read one past its end. */
static uint8_t *exact_copy(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	assert_non_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* ---- golden bytes, one test per kind ----------------------------------- */

static void test_golden_hello(void **state)
{
	const struct golden *g = &golden_hello;
	struct vg_hello m = {
		.magic = VG_WIRE_MAGIC,
		.version = 1,
		.min_version = 1,
		.caps = VG_CAP_SHM,
		.driver_version = 13000,
		.pid = 4242,
		.nenv = 2,
		.env = { "CUDA_CACHE_DISABLE=1", "CUDA_MODULE_LOADING=LAZY" },
		.env_len = { 20, 24 },
	};
	struct vg_hdr h = { .kind = VG_MSG_HELLO, .seq = 1 };
	struct vg_hello d;
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	assert_int_equal(vg_hello_encode(&m, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_HELLO, 0, 0, 0, 1, 0);
	payload_rd(g, &r);
	assert_int_equal(vg_hello_decode(&r, &d), 0);
	assert_int_equal(d.magic, VG_WIRE_MAGIC);
	assert_int_equal(d.version, 1);
	assert_int_equal(d.min_version, 1);
	assert_true(d.caps == VG_CAP_SHM);
	assert_int_equal(d.driver_version, 13000);
	assert_int_equal(d.pid, 4242);
	assert_int_equal(d.nenv, 2);
	assert_int_equal(d.env_len[0], 20);
	assert_memory_equal(d.env[0], "CUDA_CACHE_DISABLE=1", 20);
	assert_int_equal(d.env_len[1], 24);
	assert_memory_equal(d.env[1], "CUDA_MODULE_LOADING=LAZY", 24);
	/* No copies: the entries point into the message. */
	assert_ptr_equal(d.env[0], g->bytes + VG_HDR_SIZE + 32);
	assert_int_equal(vg_hello_check_version(&d), 0);
}

static void test_golden_welcome(void **state)
{
	const struct golden *g = &golden_welcome;
	struct vg_welcome m = {
		.version = 1,
		.caps = VG_CAP_SHM,
		.driver_version = 12080,
		.worker_pid = 0x1234,
		.ntext = 7,
		.text = "too old",
	};
	struct vg_hdr h = { .kind = VG_MSG_WELCOME, .seq = 1, .status = 801 };
	struct vg_welcome d;
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	assert_int_equal(vg_welcome_encode(&m, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_WELCOME, 0, 0, 0, 1, 801);
	payload_rd(g, &r);
	assert_int_equal(vg_welcome_decode(&r, &d), 0);
	assert_int_equal(d.version, 1);
	assert_true(d.caps == VG_CAP_SHM);
	assert_int_equal(d.driver_version, 12080);
	assert_int_equal(d.worker_pid, 0x1234);
	assert_int_equal(d.ntext, 7);
	assert_memory_equal(d.text, "too old", 7);
}

static void test_golden_thread_open(void **state)
{
	const struct golden *g = &golden_thread_open;
	struct vg_thread_open m = { .guest_tid = 0x12345 }, d;
	struct vg_hdr h = { .kind = VG_MSG_THREAD_OPEN, .seq = 2 };
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	assert_int_equal(vg_thread_open_encode(&m, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_THREAD_OPEN, 0, 0, 0, 2, 0);
	payload_rd(g, &r);
	assert_int_equal(vg_thread_open_decode(&r, &d), 0);
	assert_int_equal(d.guest_tid, 0x12345);
}

static void test_golden_thread_opened(void **state)
{
	const struct golden *g = &golden_thread_opened;
	struct vg_thread_opened m = { .tid = 3, .status = 0 }, d;
	struct vg_hdr h = { .kind = VG_MSG_THREAD_OPENED, .tid = 3, .seq = 2 };
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	assert_int_equal(vg_thread_opened_encode(&m, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_THREAD_OPENED, 0, 0, 3, 2, 0);
	payload_rd(g, &r);
	d.tid = d.status = 0xffffffffu;
	assert_int_equal(vg_thread_opened_decode(&r, &d), 0);
	assert_int_equal(d.tid, 3);
	assert_int_equal(d.status, 0);
}

/* CALL, REPLY, HOST_CALL and HOST_RETURN payloads belong to their
 * operations: here they are plain puts and gets. */
static void test_golden_call(void **state)
{
	const struct golden *g = &golden_call;
	struct vg_hdr h = { .kind = VG_MSG_CALL, .flags = VG_F_NO_REPLY, .op = VG_OP_LAUNCH,
			    .tid = 3, .seq = 0x0102030405060708ull };
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	vg_put_u64(&b, 0x7f0000001000ull);
	vg_put_u32(&b, 256);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_CALL, VG_F_NO_REPLY, VG_OP_LAUNCH, 3, 0x0102030405060708ull, 0);
	payload_rd(g, &r);
	assert_true(vg_get_u64(&r) == 0x7f0000001000ull);
	assert_int_equal(vg_get_u32(&r), 256);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.off, r.len);
}

static void test_golden_reply(void **state)
{
	const struct golden *g = &golden_reply;
	struct vg_hdr h = { .kind = VG_MSG_REPLY, .op = VG_OP_LAUNCH, .tid = 3,
			    .seq = 0x0102030405060708ull, .status = 700 };
	struct vg_buf b;

	vg_buf_init(&b);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);
	check_hdr(g, VG_MSG_REPLY, 0, VG_OP_LAUNCH, 3, 0x0102030405060708ull, 700);
}

static void test_golden_host_call(void **state)
{
	const struct golden *g = &golden_host_call;
	struct vg_hdr h = { .kind = VG_MSG_HOST_CALL, .op = 2, .tid = 3, .seq = 9 };
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	vg_put_u64(&b, 0x401000);
	vg_put_u64(&b, 0xdeadbeef);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_HOST_CALL, 0, 2, 3, 9, 0);
	payload_rd(g, &r);
	assert_true(vg_get_u64(&r) == 0x401000);
	assert_true(vg_get_u64(&r) == 0xdeadbeef);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.off, r.len);
}

static void test_golden_host_return(void **state)
{
	const struct golden *g = &golden_host_return;
	struct vg_hdr h = { .kind = VG_MSG_HOST_RETURN, .op = 1, .tid = 3, .seq = 9 };
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	vg_put_u64(&b, 4096);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_HOST_RETURN, 0, 1, 3, 9, 0);
	payload_rd(g, &r);
	assert_true(vg_get_u64(&r) == 4096);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.off, r.len);
}

static void test_golden_error(void **state)
{
	const struct golden *g = &golden_error;
	struct vg_error m = { .code = EPROTONOSUPPORT, .ntext = 12, .text = "versions 2-3" }, d;
	struct vg_hdr h = { .kind = VG_MSG_ERROR, .seq = 1 };
	struct vg_buf b;
	struct vg_rd r;

	assert_int_equal(EPROTONOSUPPORT, 93);
	vg_buf_init(&b);
	assert_int_equal(vg_error_encode(&m, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_ERROR, 0, 0, 0, 1, 0);
	payload_rd(g, &r);
	assert_int_equal(vg_error_decode(&r, &d), 0);
	assert_int_equal(d.code, EPROTONOSUPPORT);
	assert_int_equal(d.ntext, 12);
	assert_memory_equal(d.text, "versions 2-3", 12);
}

static void test_golden_stats(void **state)
{
	const struct golden *g = &golden_stats;
	struct vg_hdr h = { .kind = VG_MSG_STATS, .seq = 7 };
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	assert_int_equal(vg_stats_encode(&b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_STATS, 0, 0, 0, 7, 0);
	payload_rd(g, &r);
	assert_int_equal(vg_stats_decode(&r), 0);
}

static void test_golden_stats_reply(void **state)
{
	const struct golden *g = &golden_stats_reply;
	const struct vg_stat v[2] = { { 5, 3 }, { 0x1234, 0x100000000ull } };
	struct vg_hdr h = { .kind = VG_MSG_STATS_REPLY, .seq = 7 };
	struct vg_stat d[4];
	struct vg_buf b;
	struct vg_rd r;
	uint32_t n;

	vg_buf_init(&b);
	assert_int_equal(vg_stats_reply_encode(v, 2, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_STATS_REPLY, 0, 0, 0, 7, 0);
	payload_rd(g, &r);
	assert_int_equal(vg_stats_reply_decode(&r, d, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(d[0].fn, 5);
	assert_true(d[0].count == 3);
	assert_int_equal(d[1].fn, 0x1234);
	assert_true(d[1].count == 0x100000000ull);
}

static void test_golden_attach(void **state)
{
	const struct golden *g = &golden_attach;
	struct vg_attach m = { .tid = 5 }, d;
	struct vg_hdr h = { .kind = VG_MSG_ATTACH, .tid = 5, .seq = 9 };
	struct vg_buf b;
	struct vg_rd r;
	int i;

	for (i = 0; i < 16; i++) {
		m.session[i] = (uint8_t)(0x10 + i);
		m.token[i] = (uint8_t)(0xa0 + i);
	}
	vg_buf_init(&b);
	assert_int_equal(vg_attach_encode(&m, &b), 0);
	check_encoded(g, &h, &b);
	vg_buf_fini(&b);

	check_hdr(g, VG_MSG_ATTACH, 0, 0, 5, 9, 0);
	payload_rd(g, &r);
	memset(&d, 0xff, sizeof(d));
	assert_int_equal(vg_attach_decode(&r, &d), 0);
	assert_int_equal(d.tid, 5);
	assert_memory_equal(d.session, m.session, 16);
	assert_memory_equal(d.token, m.token, 16);
}

static void test_golden_auth(void **state)
{
	const struct golden *gs[3] = { &golden_auth1, &golden_auth2, &golden_auth3 };
	struct vg_auth d;
	struct vg_buf b;
	struct vg_rd r;
	uint32_t step;

	for (step = 1; step <= 3; step++) {
		struct vg_auth m = { .step = step };
		struct vg_hdr h = { .kind = VG_MSG_AUTH };

		/* The golden's fields: Ng 0x11 (step 1), Nh 0x22 (step 2), proofs 0x33. */
		memset(m.nonce, step == 1 ? 0x11 : 0x22, sizeof(m.nonce));
		memset(m.proof, 0x33, sizeof(m.proof));
		vg_buf_init(&b);
		assert_int_equal(vg_auth_encode(&m, &b), 0);
		check_encoded(gs[step - 1], &h, &b);
		vg_buf_fini(&b);

		check_hdr(gs[step - 1], VG_MSG_AUTH, 0, 0, 0, 0, 0);
		payload_rd(gs[step - 1], &r);
		assert_int_equal(vg_auth_decode(&r, &d), 0);
		assert_int_equal(d.step, step);
		if (step <= 2)
			assert_memory_equal(d.nonce, m.nonce, sizeof(m.nonce));
		if (step >= 2)
			assert_memory_equal(d.proof, m.proof, sizeof(m.proof));
	}
}

/* Steps outside 1..3 are refused both ways; so is a step 1 the size of a step 2. */
static void test_auth_steps(void **state)
{
	struct vg_auth m = { .step = 4 }, d;
	struct vg_buf b;
	struct vg_rd r;
	uint8_t p[68] = { 0 };

	vg_buf_init(&b);
	assert_int_equal(vg_auth_encode(&m, &b), -EPROTO);
	assert_int_equal(b.len, 0);
	m.step = 0;
	assert_int_equal(vg_auth_encode(&m, &b), -EPROTO);
	vg_buf_fini(&b);
	put_le32(p, 0);
	vg_rd_init(&r, p, 36);
	assert_int_equal(vg_auth_decode(&r, &d), -EPROTO);
	put_le32(p, 4);
	vg_rd_init(&r, p, 36);
	assert_int_equal(vg_auth_decode(&r, &d), -EPROTO);
	put_le32(p, 1);
	vg_rd_init(&r, p, 68);
	assert_int_equal(vg_auth_decode(&r, &d), -EPROTO);
	put_le32(p, 2);
	vg_rd_init(&r, p, 68);
	assert_int_equal(vg_auth_decode(&r, &d), 0);
}

/* ---- decoders at every length ------------------------------------------ */

static int dec_hello(struct vg_rd *r)
{
	struct vg_hello m;

	return vg_hello_decode(r, &m);
}

static int dec_welcome(struct vg_rd *r)
{
	struct vg_welcome m;

	return vg_welcome_decode(r, &m);
}

static int dec_thread_open(struct vg_rd *r)
{
	struct vg_thread_open m;

	return vg_thread_open_decode(r, &m);
}

static int dec_thread_opened(struct vg_rd *r)
{
	struct vg_thread_opened m;

	return vg_thread_opened_decode(r, &m);
}

static int dec_error(struct vg_rd *r)
{
	struct vg_error m;

	return vg_error_decode(r, &m);
}

static int dec_stats(struct vg_rd *r)
{
	return vg_stats_decode(r);
}

static int dec_stats_reply(struct vg_rd *r)
{
	struct vg_stat v[4];
	uint32_t n;

	return vg_stats_reply_decode(r, v, 4, &n);
}

static int dec_attach(struct vg_rd *r)
{
	struct vg_attach m;

	return vg_attach_decode(r, &m);
}

static int dec_auth(struct vg_rd *r)
{
	struct vg_auth m;

	return vg_auth_decode(r, &m);
}

static const struct {
	const struct golden *g;
	int (*decode)(struct vg_rd *r);
} decoders[] = {
	{ &golden_hello, dec_hello },
	{ &golden_welcome, dec_welcome },
	{ &golden_thread_open, dec_thread_open },
	{ &golden_thread_opened, dec_thread_opened },
	{ &golden_error, dec_error },
	{ &golden_stats, dec_stats },
	{ &golden_stats_reply, dec_stats_reply },
	{ &golden_attach, dec_attach },
	{ &golden_auth1, dec_auth },
	{ &golden_auth2, dec_auth },
	{ &golden_auth3, dec_auth },
};

/*
 * Every proper prefix of every payload fails with -EPROTO, and so does the
 * whole payload with one byte more; each is decoded from a block of exactly
 * its size, so a read past the end is an AddressSanitizer report.
 */
static void test_truncated_every_length(void **state)
{
	size_t i, n;

	for (i = 0; i < sizeof(decoders) / sizeof(decoders[0]); i++) {
		const struct golden *g = decoders[i].g;
		const uint8_t *pl = g->bytes + VG_HDR_SIZE;
		size_t len = g->len - VG_HDR_SIZE;
		struct vg_rd r;
		uint8_t *q;

		for (n = 0; n < len; n++) {
			q = exact_copy(pl, n);
			vg_rd_init(&r, q, n);
			if (decoders[i].decode(&r) != -EPROTO)
				fail_msg("%s: a %zu-byte prefix of %zu did not give -EPROTO", g->name, n, len);
			assert_true(r.off <= r.len);
			free(q);
		}
		q = malloc(len + 1);
		assert_non_null(q);
		memcpy(q, pl, len);
		q[len] = 0;
		vg_rd_init(&r, q, len + 1);
		if (decoders[i].decode(&r) != -EPROTO)
			fail_msg("%s: a trailing byte was accepted", g->name);
		free(q);

		q = exact_copy(pl, len);
		vg_rd_init(&r, q, len);
		assert_int_equal(decoders[i].decode(&r), 0);
		assert_int_equal(r.off, len);
		free(q);
	}
}

/* ---- versions ---------------------------------------------------------- */

static void test_hello_version_mismatch(void **state)
{
	struct vg_hello m = { .magic = VG_WIRE_MAGIC, .version = 3, .min_version = 2 }, d;
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	assert_int_equal(vg_hello_encode(&m, &b), 0);
	/* The version fields are bytes 4..7: version 3, min_version 2. */
	assert_int_equal(b.p[4], 3);
	assert_int_equal(b.p[6], 2);
	vg_rd_init(&r, b.p, b.len);
	assert_int_equal(vg_hello_decode(&r, &d), 0);
	assert_int_equal(d.version, 3);
	assert_int_equal(d.min_version, 2);
	assert_int_equal(vg_hello_check_version(&d), -EPROTONOSUPPORT);
	vg_buf_fini(&b);

	d.min_version = 0, d.version = 0;
	assert_int_equal(vg_hello_check_version(&d), -EPROTONOSUPPORT);
	d.min_version = 1, d.version = 5;
	assert_int_equal(vg_hello_check_version(&d), 0);
	d.min_version = 1, d.version = 1;
	assert_int_equal(vg_hello_check_version(&d), 0);
}

static void test_hello_bad_magic_and_range(void **state)
{
	uint8_t *q = exact_copy(golden_hello.bytes + VG_HDR_SIZE, golden_hello.len - VG_HDR_SIZE);
	size_t len = golden_hello.len - VG_HDR_SIZE;
	struct vg_hello d;
	struct vg_rd r;

	q[0] ^= 1;                           /* magic */
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_hello_decode(&r, &d), -EPROTO);
	q[0] ^= 1;
	q[6] = 2;                            /* min_version 2 > version 1 */
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_hello_decode(&r, &d), -EPROTO);
	q[6] = 1;
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_hello_decode(&r, &d), 0);
	free(q);
}

/* ---- counts over their maxima ------------------------------------------ */

static void test_hello_limits(void **state)
{
	size_t len = golden_hello.len - VG_HDR_SIZE;
	uint8_t *q = exact_copy(golden_hello.bytes + VG_HDR_SIZE, len);
	struct vg_hello m, d;
	struct vg_buf b;
	struct vg_rd r;
	static char big[VG_ENV_ENTRY_MAX + 1];
	uint32_t i;

	/* Payload offsets: nenv at 24, env[0]'s length at 28. */
	put_le32(q + 24, VG_ENV_MAX + 1);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_hello_decode(&r, &d), -EMSGSIZE);
	put_le32(q + 24, 2);
	put_le32(q + 28, VG_ENV_ENTRY_MAX + 1);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_hello_decode(&r, &d), -EMSGSIZE);
	put_le32(q + 28, 0);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_hello_decode(&r, &d), -EPROTO);
	free(q);

	/* The encoder refuses the same, writing nothing. */
	memset(&m, 0, sizeof(m));
	m.magic = VG_WIRE_MAGIC;
	m.version = m.min_version = 1;
	vg_buf_init(&b);
	m.nenv = VG_ENV_MAX + 1;
	assert_int_equal(vg_hello_encode(&m, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	m.nenv = 1;
	m.env[0] = big;
	m.env_len[0] = VG_ENV_ENTRY_MAX + 1;
	assert_int_equal(vg_hello_encode(&m, &b), -EMSGSIZE);
	m.env_len[0] = 0;
	assert_int_equal(vg_hello_encode(&m, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0);

	/* Exactly at the maxima is fine both ways. */
	memset(big, 'x', sizeof(big));
	m.nenv = VG_ENV_MAX;
	for (i = 0; i < VG_ENV_MAX; i++) {
		m.env[i] = big;
		m.env_len[i] = VG_ENV_ENTRY_MAX;
	}
	assert_int_equal(vg_hello_encode(&m, &b), 0);
	vg_rd_init(&r, b.p, b.len);
	assert_int_equal(vg_hello_decode(&r, &d), 0);
	assert_int_equal(d.nenv, VG_ENV_MAX);
	assert_int_equal(d.env_len[VG_ENV_MAX - 1], VG_ENV_ENTRY_MAX);
	vg_buf_fini(&b);
}

static void test_welcome_limits(void **state)
{
	static char text[VG_TEXT_MAX + 1];
	struct vg_welcome m = { .version = 1, .text = text }, d;
	size_t len = golden_welcome.len - VG_HDR_SIZE;
	uint8_t *q;
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	m.ntext = VG_TEXT_MAX + 1;
	assert_int_equal(vg_welcome_encode(&m, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	m.ntext = VG_TEXT_MAX;
	assert_int_equal(vg_welcome_encode(&m, &b), 0);
	vg_rd_init(&r, b.p, b.len);
	assert_int_equal(vg_welcome_decode(&r, &d), 0);
	assert_int_equal(d.ntext, VG_TEXT_MAX);
	vg_buf_fini(&b);

	/* Payload offsets: reserved at 2, ntext at 20. */
	q = exact_copy(golden_welcome.bytes + VG_HDR_SIZE, len);
	put_le32(q + 20, VG_TEXT_MAX + 1);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_welcome_decode(&r, &d), -EMSGSIZE);
	put_le32(q + 20, 7);
	q[2] = 1;
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_welcome_decode(&r, &d), -EPROTO);
	free(q);
}

static void test_error_limits(void **state)
{
	static char text[VG_TEXT_MAX + 1];
	struct vg_error m = { .code = EPROTO, .text = text }, d;
	size_t len = golden_error.len - VG_HDR_SIZE;
	uint8_t *q;
	struct vg_buf b;
	struct vg_rd r;

	vg_buf_init(&b);
	m.ntext = VG_TEXT_MAX + 1;
	assert_int_equal(vg_error_encode(&m, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	/* No text is an empty text, never a NULL blob. */
	m.ntext = 0;
	m.text = NULL;
	assert_int_equal(vg_error_encode(&m, &b), 0);
	vg_rd_init(&r, b.p, b.len);
	assert_int_equal(vg_error_decode(&r, &d), 0);
	assert_int_equal(d.ntext, 0);
	assert_non_null(d.text);
	vg_buf_fini(&b);

	/* Payload offset of the text length: 4. */
	q = exact_copy(golden_error.bytes + VG_HDR_SIZE, len);
	put_le32(q + 4, VG_TEXT_MAX + 1);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_error_decode(&r, &d), -EMSGSIZE);
	put_le32(q + 4, VG_NULL_LEN);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_error_decode(&r, &d), -EPROTO);
	free(q);
}

static void test_stats_reply_limits(void **state)
{
	uint8_t pl[4];
	struct vg_stat v[2] = { { 1, 1 }, { 2, 2 } };
	size_t len = golden_stats_reply.len - VG_HDR_SIZE;
	uint8_t *q;
	struct vg_buf b;
	struct vg_rd r;
	uint32_t n = 77;

	put_le32(pl, VG_STATS_MAX + 1);
	vg_rd_init(&r, pl, sizeof(pl));
	assert_int_equal(vg_stats_reply_decode(&r, v, VG_STATS_MAX + 8, &n), -EMSGSIZE);
	assert_int_equal(n, 0);
	/* Two entries into room for one: refused before anything is stored. */
	q = exact_copy(golden_stats_reply.bytes + VG_HDR_SIZE, len);
	vg_rd_init(&r, q, len);
	assert_int_equal(vg_stats_reply_decode(&r, v, 1, &n), -EMSGSIZE);
	assert_int_equal(v[0].fn, 1);
	assert_int_equal(v[1].fn, 2);
	free(q);

	vg_buf_init(&b);
	assert_int_equal(vg_stats_reply_encode(v, VG_STATS_MAX + 1, &b), -EMSGSIZE);
	assert_int_equal(b.len, 0);
	vg_buf_fini(&b);
}

/* ---- header rules ------------------------------------------------------ */

static int hdr_with(uint32_t len, uint16_t kind, uint16_t flags, uint32_t reserved)
{
	uint8_t in[VG_HDR_SIZE];
	struct vg_hdr h;

	memcpy(in, golden_call.bytes, VG_HDR_SIZE);
	put_le32(in + 0, len);
	in[4] = (uint8_t)kind;
	in[5] = (uint8_t)(kind >> 8);
	in[6] = (uint8_t)flags;
	in[7] = (uint8_t)(flags >> 8);
	put_le32(in + 28, reserved);
	return vg_hdr_decode(in, &h);
}

static void test_header_rules(void **state)
{
	assert_int_equal(hdr_with(44, VG_MSG_CALL, VG_F_NO_REPLY, 0), 0);
	assert_int_equal(hdr_with(VG_HDR_SIZE, VG_MSG_CALL, 0, 0), 0);
	assert_int_equal(hdr_with(VG_MSG_MAX, VG_MSG_CALL, 0, 0), 0);
	assert_int_equal(hdr_with(VG_MSG_MAX + 1, VG_MSG_CALL, 0, 0), -EMSGSIZE);
	assert_int_equal(hdr_with(0xffffffffu, VG_MSG_CALL, 0, 0), -EMSGSIZE);
	assert_int_equal(hdr_with(VG_HDR_SIZE - 1, VG_MSG_CALL, 0, 0), -EPROTO);
	assert_int_equal(hdr_with(0, VG_MSG_CALL, 0, 0), -EPROTO);
	/* Kinds: 1..VG_MSG_KIND_MAX. */
	assert_int_equal(hdr_with(44, 0, 0, 0), -EPROTO);
	assert_int_equal(hdr_with(44, VG_MSG_KIND_MAX, 0, 0), 0);
	assert_int_equal(hdr_with(44, VG_MSG_KIND_MAX + 1, 0, 0), -EPROTO);
	assert_int_equal(hdr_with(44, 0x0105, 0, 0), -EPROTO);
	/* Flags: every known combination, and each unknown bit alone. */
	assert_int_equal(hdr_with(44, VG_MSG_CALL, VG_F_NO_REPLY | VG_F_ORDERED, 0), 0);
	assert_int_equal(hdr_with(44, VG_MSG_CALL, VG_F_FLAGS_KNOWN, 0), 0);
	for (unsigned int bit = 0; bit < 16; bit++) {
		uint16_t f = (uint16_t)(1u << bit);

		if (f & VG_F_FLAGS_KNOWN)
			continue;
		assert_int_equal(hdr_with(44, VG_MSG_CALL, f, 0), -EPROTO);
	}
	assert_int_equal(hdr_with(44, VG_MSG_CALL, 0, 1), -EPROTO);
	assert_int_equal(hdr_with(44, VG_MSG_CALL, 0, 0x80000000u), -EPROTO);
}

/* The encoder writes reserved as 0 whatever the struct says, and negative
 * status values round-trip. */
static void test_header_encode_fields(void **state)
{
	struct vg_hdr h = { .len = 32, .kind = VG_MSG_REPLY, .status = -5, .reserved = 7 }, d;
	uint8_t out[VG_HDR_SIZE];

	vg_hdr_encode(&h, out);
	assert_int_equal(out[24], 0xfb);
	assert_int_equal(out[27], 0xff);
	assert_int_equal(out[28] | out[29] | out[30] | out[31], 0);
	assert_int_equal(vg_hdr_decode(out, &d), 0);
	assert_int_equal(d.status, -5);
}

/* The numbers that are the protocol, frozen: changing one is a new version. */
static void test_constants_frozen(void **state)
{
	static const uint8_t magic[4] = { 'V', 'G', 'P', 'U' };
	uint8_t le[4];

	put_le32(le, VG_WIRE_MAGIC);
	assert_memory_equal(le, magic, 4);
	assert_int_equal(VG_WIRE_VERSION, 1);
	assert_int_equal(VG_HDR_SIZE, 32);
	assert_int_equal(VG_MSG_HELLO, 1);
	assert_int_equal(VG_MSG_WELCOME, 2);
	assert_int_equal(VG_MSG_THREAD_OPEN, 3);
	assert_int_equal(VG_MSG_THREAD_OPENED, 4);
	assert_int_equal(VG_MSG_CALL, 5);
	assert_int_equal(VG_MSG_REPLY, 6);
	assert_int_equal(VG_MSG_HOST_CALL, 7);
	assert_int_equal(VG_MSG_HOST_RETURN, 8);
	assert_int_equal(VG_MSG_ERROR, 9);
	assert_int_equal(VG_MSG_STATS, 10);
	assert_int_equal(VG_MSG_STATS_REPLY, 11);
	assert_int_equal(VG_MSG_ATTACH, 12);
	assert_int_equal(VG_MSG_AUTH, 13);
	assert_int_equal(VG_SESSION_ID_SIZE, 16);
	assert_int_equal(VG_TOKEN_SIZE, 16);
	assert_int_equal(VG_AUTH_NONCE_SIZE, 32);
	assert_int_equal(VG_AUTH_PROOF_SIZE, 32);
	assert_int_equal(VG_F_NO_REPLY, 0x0001);
	assert_int_equal(VG_F_ORDERED, 0x0002);
	assert_int_equal(VG_F_FD, 0x0004);
	assert_int_equal(VG_F_FLAGS_KNOWN, 0x0007);
	assert_int_equal(VG_CAP_ASYNC, 1);
	assert_int_equal(VG_CAP_SHM, 2);
	assert_int_equal(VG_NULL_LEN, 0xffffffffu);
	assert_int_equal(VG_OP_BASE, 0x10000);
	/* The maxima both sides enforce. */
	assert_int_equal(VG_MSG_MAX, 256u << 20);
	assert_int_equal(VG_ENV_MAX, 64);
	assert_int_equal(VG_ENV_ENTRY_MAX, 4096);
	assert_int_equal(VG_TEXT_MAX, 1024);
	assert_int_equal(VG_STATS_MAX, 4096);
}

/* ---- the reader -------------------------------------------------------- */

static void test_reader_bounds(void **state)
{
	uint8_t *q = exact_copy((const uint8_t *)"\x01\x02\x03", 3);
	struct vg_rd r;

	vg_rd_init(&r, q, 3);
	assert_int_equal(vg_get_u32(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
	assert_int_equal(r.off, 0);
	/* Sticky: the bytes that are there are not read any more. */
	assert_int_equal(vg_get_u8(&r), 0);
	assert_int_equal(vg_get_u16(&r), 0);
	assert_true(vg_get_u64(&r) == 0);
	assert_null(vg_get_bytes(&r, 1));
	assert_int_equal(r.off, 0);

	vg_rd_init(&r, q, 3);
	assert_int_equal(vg_get_u16(&r), 0x0201);
	assert_int_equal(vg_get_u8(&r), 3);
	assert_int_equal(r.err, 0);
	assert_non_null(vg_get_bytes(&r, 0));
	assert_int_equal(vg_get_u8(&r), 0);
	assert_int_equal(r.err, -EBADMSG);

	/* A huge length cannot wrap around the bounds check. */
	vg_rd_init(&r, q, 3);
	vg_get_u8(&r);
	assert_null(vg_get_bytes(&r, SIZE_MAX));
	assert_int_equal(r.err, -EBADMSG);

	/* No buffer: nothing to read, whatever the length says. */
	vg_rd_init(&r, NULL, 100);
	assert_int_equal(r.len, 0);
	assert_int_equal(vg_get_u8(&r), 0);
	assert_int_equal(r.err, -EBADMSG);
	free(q);
}

static void test_reader_blobs(void **state)
{
	/* NULL blob, empty blob, 2-byte blob "hi", then a blob claiming 5 of 3. */
	static const uint8_t in[] = {
		0xff, 0xff, 0xff, 0xff,                 /* NULL */
		0x00, 0x00, 0x00, 0x00,                 /* length 0 */
		0x02, 0x00, 0x00, 0x00, 'h', 'i',       /* length 2, "hi" */
		0x05, 0x00, 0x00, 0x00, 'a', 'b', 'c',  /* length 5, 3 bytes there */
	};
	uint8_t *q = exact_copy(in, sizeof(in));
	struct vg_rd r;
	const void *p;
	uint32_t n;
	int is_null;

	vg_rd_init(&r, q, sizeof(in));
	p = vg_get_blob(&r, 16, &n, &is_null);
	assert_null(p);
	assert_int_equal(is_null, 1);
	assert_int_equal(r.err, 0);
	p = vg_get_blob(&r, 16, &n, &is_null);
	assert_non_null(p);
	assert_int_equal(is_null, 0);
	assert_int_equal(n, 0);
	p = vg_get_blob(&r, 2, &n, &is_null);
	assert_int_equal(n, 2);
	assert_memory_equal(p, "hi", 2);
	p = vg_get_blob(&r, 16, &n, &is_null);
	assert_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(r.err, -EBADMSG);

	/* Over the caller's maximum: refused before the bytes are looked at. */
	vg_rd_init(&r, q + 8, sizeof(in) - 8);
	p = vg_get_blob(&r, 1, &n, &is_null);
	assert_null(p);
	assert_int_equal(n, 0);
	assert_int_equal(r.err, -EMSGSIZE);
	free(q);
}

/* ---- the writer -------------------------------------------------------- */

static void test_writer_layout(void **state)
{
	static const uint8_t want[] = {
		0xa5,                                           /* u8 */
		0x02, 0x01,                                     /* u16 0x0102 */
		0x06, 0x05, 0x04, 0x03,                         /* u32 0x03040506 */
		0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, /* u64 0x0708090a0b0c0d0e */
		0xff, 0xff, 0xff, 0xff,                         /* NULL blob */
		0x03, 0x00, 0x00, 0x00, 'a', 'b', 'c',          /* blob "abc" */
	};
	struct vg_buf b;

	vg_buf_init(&b);
	vg_put_u8(&b, 0xa5);
	vg_put_u16(&b, 0x0102);
	vg_put_u32(&b, 0x03040506);
	vg_put_u64(&b, 0x0708090a0b0c0d0eull);
	vg_put_blob(&b, NULL, 99);
	vg_put_blob(&b, "abc", 3);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, sizeof(want));
	assert_memory_equal(b.p, want, sizeof(want));
	vg_buf_fini(&b);
}

static void test_writer_grows(void **state)
{
	struct vg_buf b;
	struct vg_rd r;
	uint32_t i;

	vg_buf_init(&b);
	for (i = 0; i < 100000; i++)
		vg_put_u32(&b, i * 2654435761u);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, 400000);
	vg_rd_init(&r, b.p, b.len);
	for (i = 0; i < 100000; i++)
		if (vg_get_u32(&r) != i * 2654435761u)
			fail_msg("word %u changed when the buffer grew", i);
	assert_int_equal(r.err, 0);
	vg_buf_fini(&b);
}

static void test_writer_sticky_errors(void **state)
{
	struct vg_buf b;

	vg_buf_init(&b);
	realloc_fail = 1;
	vg_put_u32(&b, 1);
	realloc_fail = 0;
	assert_int_equal(b.err, -ENOMEM);
	assert_int_equal(b.len, 0);
	/* Memory is back, but the buffer stays failed until reset. */
	vg_put_u32(&b, 2);
	vg_put_bytes(&b, "xyz", 3);
	assert_null(vg_put_space(&b, 1));
	assert_int_equal(b.len, 0);
	assert_int_equal(b.err, -ENOMEM);
	vg_buf_reset(&b);
	vg_put_u32(&b, 3);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.len, 4);

	/* Growing past VG_MSG_MAX is refused without allocating it. */
	assert_null(vg_put_space(&b, VG_MSG_MAX));
	assert_int_equal(b.err, -EMSGSIZE);
	assert_int_equal(b.len, 4);
	vg_buf_reset(&b);
	assert_null(vg_put_space(&b, (size_t)VG_MSG_MAX + 1));
	assert_int_equal(b.err, -EMSGSIZE);
	vg_buf_reset(&b);
	assert_null(vg_put_space(&b, SIZE_MAX));
	assert_int_equal(b.err, -EMSGSIZE);

	/* An encoder hands back the buffer's error. */
	vg_buf_reset(&b);
	vg_buf_fini(&b);
	vg_buf_init(&b);
	realloc_fail = 1;
	assert_int_equal(vg_stats_reply_encode(NULL, 0, &b), -ENOMEM);
	realloc_fail = 0;
	vg_buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_hello),
		cmocka_unit_test(test_golden_welcome),
		cmocka_unit_test(test_golden_thread_open),
		cmocka_unit_test(test_golden_thread_opened),
		cmocka_unit_test(test_golden_call),
		cmocka_unit_test(test_golden_reply),
		cmocka_unit_test(test_golden_host_call),
		cmocka_unit_test(test_golden_host_return),
		cmocka_unit_test(test_golden_error),
		cmocka_unit_test(test_golden_stats),
		cmocka_unit_test(test_golden_stats_reply),
		cmocka_unit_test(test_golden_attach),
		cmocka_unit_test(test_golden_auth),
		cmocka_unit_test(test_auth_steps),
		cmocka_unit_test(test_truncated_every_length),
		cmocka_unit_test(test_hello_version_mismatch),
		cmocka_unit_test(test_hello_bad_magic_and_range),
		cmocka_unit_test(test_hello_limits),
		cmocka_unit_test(test_welcome_limits),
		cmocka_unit_test(test_error_limits),
		cmocka_unit_test(test_stats_reply_limits),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_header_encode_fields),
		cmocka_unit_test(test_constants_frozen),
		cmocka_unit_test(test_reader_bounds),
		cmocka_unit_test(test_reader_blobs),
		cmocka_unit_test(test_writer_layout),
		cmocka_unit_test(test_writer_grows),
		cmocka_unit_test(test_writer_sticky_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
