/*
 * cuGetExportTable against NVIDIA driver 580's recorded tables, the
 * integrity hash against its recorded test vectors, MD2 against RFC 1319,
 * and the slots' behaviour over a fake driver.
 *
 * usage: test_darkapi DATA_DIR [--perturb]
 * --perturb changes one recorded hash and one recorded NULL position: the
 * comparisons must then fail (the negative control).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "darkapi.h"
#include "fake_driver.h"
#include "integrity.h"
#include "md2.h"

CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId);

static const char *data_dir;
static int perturb;

typedef CUresult (*fn_void)(void);

static int hexbytes(const char *hex, uint8_t *out, size_t n)
{
	size_t i;
	unsigned v;

	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static CUuuid uuid_of(const char *hex)
{
	CUuuid u;

	assert_int_equal(hexbytes(hex, (uint8_t *)u.bytes, 16), 0);
	return u;
}

static const void *const *table(const char *hex)
{
	CUuuid u = uuid_of(hex);
	const void *t = NULL;

	assert_int_equal(cuGetExportTable(&t, &u), CUDA_SUCCESS);
	assert_non_null(t);
	return t;
}

static FILE *open_data(const char *file)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", data_dir, file);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	return f;
}

/* ---- MD2 ---- */

static void test_md2_rfc1319(void **state)
{
	static const struct {
		const char *msg, *digest;
	} v[] = {
		{ "", "8350e5a3e24c153df2275c9f80692773" },
		{ "a", "32ec01ec4a6dac72c0ab96fb34c0b5d1" },
		{ "abc", "da853b0d3f88d99b30283a69e6ded6bb" },
		{ "message digest", "ab4f496bfb2a530b219ff33031fe06b0" },
		{ "abcdefghijklmnopqrstuvwxyz", "4e8ddff3650292ab5a4108c3aa47940b" },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		  "da33def2a42df13975352846c30338cd" },
		{ "1234567890123456789012345678901234567890"
		  "1234567890123456789012345678901234567890",
		  "d5976f79d83d3a0dc9806c3c66f3efd8" },
	};
	uint8_t d[16], want[16];
	struct lc_md2 m;
	size_t i, j;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(hexbytes(v[i].digest, want, 16), 0);
		lc_md2_init(&m);
		lc_md2_update(&m, v[i].msg, strlen(v[i].msg));
		lc_md2_final(&m, d);
		assert_memory_equal(d, want, 16);
		/* The same bytes fed one at a time. */
		lc_md2_init(&m);
		for (j = 0; v[i].msg[j]; j++)
			lc_md2_update(&m, v[i].msg + j, 1);
		lc_md2_final(&m, d);
		assert_memory_equal(d, want, 16);
	}
}

/* ---- The recorded driver runs ---- */

struct rec_table {
	char uuid[33];
	int ok;
	unsigned long long addr, word0;
	unsigned slots;
	int null[128];		/* by word index */
	unsigned long long slot1;
};

struct rec_run {
	int driver_version;
	uint8_t uuid[16];
	int domain, bus, device;
	struct rec_table t[32];
	unsigned nt;
	struct {
		unsigned pid, version;
		unsigned long long self, time, out[2];
	} v[8];
	unsigned nv;
};

static void parse_nulls(struct rec_table *t, const char *s)
{
	char *end;
	long w;

	while (*s && *s != ' ') {
		w = strtol(s, &end, 10);
		if (end == s)
			break;
		if (w >= 0 && w < 128)
			t->null[w] = 1;
		s = *end == ',' ? end + 1 : end;
	}
}

static void load_run(const char *file, struct rec_run *r)
{
	char line[4096], hex[64];
	FILE *f = open_data(file);

	memset(r, 0, sizeof(*r));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "DRIVER_VERSION %d", &r->driver_version) == 1)
			continue;
		if (sscanf(line, "UUID %32[0-9a-f]", hex) == 1) {
			assert_int_equal(hexbytes(hex, r->uuid, 16), 0);
			continue;
		}
		if (sscanf(line, "PCI domain=%d bus=%d device=%d", &r->domain, &r->bus,
			   &r->device) == 3)
			continue;
		if (!strncmp(line, "TABLE ", 6)) {
			struct rec_table *t = &r->t[r->nt++];
			int res;
			char *p;

			assert_true(r->nt < 32);
			assert_int_equal(sscanf(line, "TABLE %32s r=%d", t->uuid, &res), 2);
			t->ok = res == 0;
			if (!t->ok)
				continue;
			assert_int_equal(sscanf(strstr(line, "addr="), "addr=%llx word0=%llx slots=%u",
						&t->addr, &t->word0, &t->slots), 3);
			parse_nulls(t, strstr(line, "nulls=") + 6);
			p = strstr(line, "slotaddrs=") + 10;
			/* The first address listed is word 1 for sized tables. */
			t->slot1 = strtoull(p, NULL, 16);
			continue;
		}
		if (!strncmp(line, "INTEGRITY ", 10)) {
			assert_true(r->nv < 8);
			assert_int_equal(sscanf(strstr(line, "pid="),
						"pid=%u tid=%*u pthread_self=%llx version=%u time=%llu",
						&r->v[r->nv].pid, &r->v[r->nv].self,
						&r->v[r->nv].version, &r->v[r->nv].time), 4);
			assert_int_equal(sscanf(strstr(line, "out="), "out=%llx %llx",
						&r->v[r->nv].out[0], &r->v[r->nv].out[1]), 2);
			r->nv++;
		}
	}
	fclose(f);
	assert_true(r->nt >= 9);
	assert_int_equal(r->nv, 6);
	if (perturb) {
		r->v[2].out[1] ^= 1;
		r->t[0].null[5] = 1;
	}
}

static const struct rec_table *rec_find(const struct rec_run *r, const char *uuid)
{
	unsigned i;

	for (i = 0; i < r->nt; i++)
		if (!strcmp(r->t[i].uuid, uuid))
			return &r->t[i];
	fail_msg("table %s not recorded", uuid);
	return NULL;
}

#define U_CUDART	"6bd5fb6c5bf4e74a8987d93912fd9df9"
#define U_HOOKS		"a094798c2e742e7493f20800200c0a66"
#define U_TLS		"42d85a8123f6cb478298f6e78a3aecdc"
#define U_CLS		"c693336e1121df11a8c368f355d89593"
#define U_GREEN		"263e88607cd2614392f6bbd5006dfa7e"
#define U_INTEGRITY	"d4082055bde6704b8d34ba123c66e1f2"
#define U_TOOLS_CTX	"21318c60971432488ca641ff7324c8f2"
#define U_TOOLS_MOD	"6e163fbeb958444d835ce182aff1991e"
#define U_CLUSTER	"1734dc26800d47458726c0f1e7dd8bca"

/* Every vector of both runs, both threads, from the recorded inputs. */
static void test_integrity_vectors(void **state)
{
	static const char *const runs[] = { "realdriver-580-run1.txt", "realdriver-580-run2.txt" };
	struct rec_run *r = malloc(sizeof(*r));
	unsigned i, k, bad = 0;

	(void)state;
	assert_non_null(r);
	for (k = 0; k < 2; k++) {
		const struct rec_table *cud, *integ;

		load_run(runs[k], r);
		cud = rec_find(r, U_CUDART);
		integ = rec_find(r, U_INTEGRITY);
		for (i = 0; i < r->nv; i++) {
			struct lc_integrity_in in;
			uint64_t out[2];

			memset(&in, 0, sizeof(in));
			in.driver_version = (uint32_t)r->driver_version;
			in.version = r->v[i].version;
			in.pid = r->v[i].pid;
			in.thread = (uint32_t)r->v[i].self;
			in.cudart_table = cud->addr;
			in.integrity_table = integ->addr;
			in.check_fn = integ->slot1;
			in.unix_seconds = r->v[i].time;
			in.ndev = 1;
			memcpy(in.dev[0].uuid, r->uuid, 16);
			in.dev[0].pci_domain = r->domain;
			in.dev[0].pci_bus = r->bus;
			in.dev[0].pci_device = r->device;
			lc_integrity_hash(&in, out);
			if (out[0] != r->v[i].out[0] || out[1] != r->v[i].out[1]) {
				print_error("%s vector %u (version %u): %016llx %016llx, recorded "
					    "%016llx %016llx\n", runs[k], i, in.version,
					    (unsigned long long)out[0], (unsigned long long)out[1],
					    r->v[i].out[0], r->v[i].out[1]);
				bad++;
			}
		}
	}
	free(r);
	assert_int_equal(bad, 0);
}

/* Sizes, lengths and NULL words of every table we serve, as recorded. */
static void test_table_layouts(void **state)
{
	static const char *const sized[] = {
		U_CUDART, U_HOOKS, U_TLS, U_GREEN, U_INTEGRITY, U_TOOLS_CTX, U_TOOLS_MOD, U_CLUSTER,
	};
	struct rec_run *r = malloc(sizeof(*r));
	const struct rec_table *rt;
	const void *const *t;
	unsigned i, w, n, bad = 0;

	(void)state;
	assert_non_null(r);
	load_run("realdriver-580-run1.txt", r);
	for (i = 0; i < sizeof(sized) / sizeof(sized[0]); i++) {
		rt = rec_find(r, sized[i]);
		t = table(sized[i]);
		assert_true(rt->ok);
		if ((uintptr_t)t[0] != rt->word0) {
			print_error("%s: size word %#lx, recorded %#llx\n", sized[i],
				    (unsigned long)(uintptr_t)t[0], rt->word0);
			bad++;
			continue;
		}
		n = (unsigned)(rt->word0 / sizeof(void *));
		assert_int_equal(n, rt->slots);
		for (w = 1; w < n; w++) {
			if ((t[w] == NULL) != rt->null[w]) {
				print_error("%s word %u: %s, recorded %s\n", sized[i], w,
					    t[w] ? "set" : "NULL", rt->null[w] ? "NULL" : "set");
				bad++;
			}
		}
	}
	/* Context-local storage has no size word: three functions, then NULL. */
	rt = rec_find(r, U_CLS);
	t = table(U_CLS);
	for (w = 0; w < LC_ETBL_CLS_WORDS; w++)
		if ((t[w] == NULL) != rt->null[w])
			bad++;
	assert_int_equal(LC_ETBL_CLS_WORDS, 4);
	assert_true(rt->null[3]);
	/* The same pointer every time: several cudart copies share the tables. */
	assert_ptr_equal(table(U_TOOLS_CTX), table(U_TOOLS_CTX));
	free(r);
	assert_int_equal(bad, 0);
}

static void test_unknown_and_null(void **state)
{
	static const char *const refused[] = {
		"f8cff95121468b4eb9e2fb469e7c0dd9",	/* served by 580; refused by design */
		"da9151d33ae6cc41a5c04f26d533e328",
		"0ca50b8c1004929a89a7d0df10e77286",
		"b10541e1f7c7c74a9f64f223be99f1e2",
		"195bcbf4d67d024aacc51d29cea631ae",
		"00112233445566778899aabbccddeeff",
	};
	const void *t;
	CUuuid u;
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		u = uuid_of(refused[i]);
		t = &u;
		assert_int_equal(cuGetExportTable(&t, &u), CUDA_ERROR_INVALID_VALUE);
		assert_null(t);
	}
	u = uuid_of(U_CUDART);
	assert_int_equal(cuGetExportTable(NULL, &u), CUDA_ERROR_INVALID_VALUE);
	t = &u;
	assert_int_equal(cuGetExportTable(&t, NULL), CUDA_ERROR_INVALID_VALUE);
	assert_null(t);
}

/* Unused slots are functions that refuse. */
static void test_unused_slots(void **state)
{
	(void)state;
	assert_int_equal(((fn_void)table(U_CUDART)[1])(), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(((fn_void)table(U_TOOLS_CTX)[1])(), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(((fn_void)table(U_TOOLS_CTX)[92])(), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(((fn_void)table(U_TOOLS_MOD)[98])(), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(((fn_void)table(U_INTEGRITY)[2])(), CUDA_ERROR_NOT_SUPPORTED);
	assert_int_equal(((fn_void)table(U_GREEN)[1])(), CUDA_ERROR_NOT_SUPPORTED);
}

/* The slot itself hashes this process's pid, thread, tables and device. */
static void test_integrity_slot(void **state)
{
	typedef CUresult (*check_fn)(uint32_t, uint64_t, uint64_t *);
	const void *const *it = table(U_INTEGRITY);
	struct lc_integrity_in in;
	uint64_t out[2], want[2];

	(void)state;
	assert_int_equal(((check_fn)it[1])(13000, 1700000000, out), CUDA_SUCCESS);
	assert_true(out[0] == 0x3341181c03cb675cULL && out[1] == 0x8ed383aa1f4cd1e8ULL);
	assert_int_equal(((check_fn)it[1])(13002, 1700000000, out), CUDA_SUCCESS);
	memset(&in, 0, sizeof(in));
	in.driver_version = 13000;
	in.version = 13002;
	in.pid = (uint32_t)getpid();
	in.thread = (uint32_t)(uintptr_t)pthread_self();
	in.cudart_table = (uintptr_t)table(U_CUDART);
	in.integrity_table = (uintptr_t)it;
	in.check_fn = (uintptr_t)it[1];
	in.unix_seconds = 1700000000;
	in.ndev = 1;
	memcpy(in.dev[0].uuid, fake_uuid, 16);
	in.dev[0].pci_device = 6;
	lc_integrity_hash(&in, want);
	assert_true(out[0] == want[0] && out[1] == want[1]);
	/* Another second, another hash. */
	assert_int_equal(((check_fn)it[1])(13002, 1700000001, out), CUDA_SUCCESS);
	assert_false(out[0] == want[0] && out[1] == want[1]);
}

static void test_cudart_bootstrap_slots(void **state)
{
	typedef CUresult (*primary_fn)(CUcontext *, CUdevice);
	typedef CUresult (*buf_fn)(uint32_t **, size_t *);
	typedef CUresult (*type_fn)(CUcontext, uint32_t *, CUcontext *);
	typedef int (*int_fn)(void);
	const void *const *cud = table(U_CUDART), *const *hooks = table(U_HOOKS);
	const void *const *green = table(U_GREEN);
	CUcontext ctx = NULL, prim = (CUcontext)1;
	uint32_t *buf = NULL, type = 9;
	size_t n = 0, i;
	int refs = fake_primary_refs;

	(void)state;
	assert_int_equal(((primary_fn)cud[2])(&ctx, 0), CUDA_SUCCESS);
	assert_ptr_equal(ctx, FAKE_CTX_A);
	assert_int_equal(fake_primary_refs, refs);	/* not retained */
	assert_int_equal(((fn_void)cud[12])(), CUDA_SUCCESS);
	assert_true((uintptr_t)hooks[0] > 0x30);
	assert_int_equal(((buf_fn)hooks[2])(&buf, &n), CUDA_SUCCESS);
	assert_true(n > 0x20a);
	for (i = 0; i < n; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(((buf_fn)hooks[6])(&buf, &n), CUDA_SUCCESS);
	assert_true(n > 0xd);
	assert_int_equal(((type_fn)green[2])(FAKE_CTX_A, &type, &prim), CUDA_SUCCESS);
	assert_int_equal(type, 0);
	assert_int_equal(((int_fn)green[3])(), 0);
}

/* ---- Context-local storage ---- */

static int dtor_log[8];
static CUcontext dtor_ctx[8];
static int ndtor;

static void dtor(CUcontext ctx, void *key, void *data)
{
	(void)key;
	if (ndtor < 8) {
		dtor_ctx[ndtor] = ctx;
		dtor_log[ndtor] = (int)(intptr_t)data;
	}
	ndtor++;
}

static void test_cls_destructor_order(void **state)
{
	typedef CUresult (*reg_fn)(CUcontext, void *, void *, void (*)(CUcontext, void *, void *));
	typedef CUresult (*unreg_fn)(CUcontext, void *);
	typedef CUresult (*get_fn)(void **, CUcontext, void *);
	const void *const *cls = table(U_CLS);
	static int k1, k2, k3, k4;
	void *data = NULL;

	(void)state;
	ndtor = 0;
	cuCtxSetCurrent(FAKE_CTX_A);
	assert_int_equal(((get_fn)cls[2])(&data, NULL, &k1), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(((reg_fn)cls[0])(NULL, &k1, (void *)1, dtor), CUDA_SUCCESS);
	assert_int_equal(((reg_fn)cls[0])(FAKE_CTX_A, &k2, (void *)2, dtor), CUDA_SUCCESS);
	assert_int_equal(((reg_fn)cls[0])(FAKE_CTX_B, &k1, (void *)10, dtor), CUDA_SUCCESS);
	assert_int_equal(((reg_fn)cls[0])(FAKE_CTX_A, &k3, (void *)3, dtor), CUDA_SUCCESS);
	assert_int_equal(((reg_fn)cls[0])(FAKE_CTX_A, &k4, (void *)4, dtor), CUDA_SUCCESS);
	assert_int_equal(((get_fn)cls[2])(&data, NULL, &k1), CUDA_SUCCESS);
	assert_ptr_equal(data, (void *)1);
	assert_int_equal(((get_fn)cls[2])(&data, FAKE_CTX_B, &k1), CUDA_SUCCESS);
	assert_ptr_equal(data, (void *)10);
	assert_int_equal(((unreg_fn)cls[1])(FAKE_CTX_A, &k3), CUDA_SUCCESS);
	assert_int_equal(((unreg_fn)cls[1])(FAKE_CTX_A, &k3), CUDA_ERROR_INVALID_HANDLE);

	lc_cls_context_destroyed(FAKE_CTX_A);
	/* Reverse order of registration; the unregistered key never runs. */
	assert_int_equal(ndtor, 3);
	assert_int_equal(dtor_log[0], 4);
	assert_int_equal(dtor_log[1], 2);
	assert_int_equal(dtor_log[2], 1);
	assert_true(dtor_ctx[0] == FAKE_CTX_A && dtor_ctx[1] == FAKE_CTX_A &&
		    dtor_ctx[2] == FAKE_CTX_A);
	assert_int_equal(((get_fn)cls[2])(&data, FAKE_CTX_A, &k1), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(((get_fn)cls[2])(&data, FAKE_CTX_B, &k1), CUDA_SUCCESS);
	lc_cls_context_destroyed(FAKE_CTX_A);
	assert_int_equal(ndtor, 3);
	/* No current context: nothing to attach to. */
	cuCtxSetCurrent(NULL);
	assert_int_equal(((reg_fn)cls[0])(NULL, &k1, (void *)1, dtor), CUDA_ERROR_INVALID_CONTEXT);
}

/* ---- Tools ---- */

typedef CUresult (*ctxid_fn)(CUcontext, uint64_t *);
typedef CUresult (*handle_fn)(CUcontext, CUstream, void **, uint8_t);
typedef CUresult (*streamid_fn)(CUcontext, void *, uint64_t *);

static void test_tools_context_ids(void **state)
{
	const void *const *tc = table(U_TOOLS_CTX);
	uint64_t a1 = 0, a2 = 0, b = 0, a3 = 0;
	int calls;

	(void)state;
	cuCtxSetCurrent(FAKE_CTX_A);
	assert_int_equal(((ctxid_fn)tc[4])(NULL, &a1), CUDA_SUCCESS);
	calls = fake_ctxid_calls;
	assert_int_equal(((ctxid_fn)tc[4])(FAKE_CTX_A, &a2), CUDA_SUCCESS);
	assert_int_equal(fake_ctxid_calls, calls);	/* answered from the cache */
	assert_int_equal(((ctxid_fn)tc[4])(FAKE_CTX_B, &b), CUDA_SUCCESS);
	assert_true(a1 != 0 && a1 == a2 && b != a1);
	/* After the context ends (cudaDeviceReset) the same handle gets a new id. */
	fake_ctx_forget(FAKE_CTX_A);
	lc_cls_context_destroyed(FAKE_CTX_A);
	assert_int_equal(((ctxid_fn)tc[4])(FAKE_CTX_A, &a3), CUDA_SUCCESS);
	assert_true(a3 != a1 && a3 != b);
	assert_int_equal(((ctxid_fn)tc[4])(FAKE_CTX_A, NULL), CUDA_ERROR_INVALID_VALUE);
	cuCtxSetCurrent(NULL);
	assert_int_equal(((ctxid_fn)tc[4])(NULL, &a1), CUDA_ERROR_INVALID_CONTEXT);
}

static uint64_t thread_stream_id_of(const void *const *tc)
{
	void *h1 = NULL, *h2 = NULL;
	uint64_t id = 0, id2 = 0;

	cuCtxSetCurrent(FAKE_CTX_A);
	assert_int_equal(((handle_fn)tc[51])(NULL, NULL, &h1, 1), CUDA_SUCCESS);
	assert_int_equal(((handle_fn)tc[51])(NULL, CU_STREAM_PER_THREAD, &h2, 0), CUDA_SUCCESS);
	assert_ptr_equal(h1, h2);
	assert_int_equal(((streamid_fn)tc[39])(NULL, h1, &id), CUDA_SUCCESS);
	assert_int_equal(((streamid_fn)tc[39])(NULL, h1, &id2), CUDA_SUCCESS);
	assert_true(id == id2 && id != 0);
	return id;
}

static void *other_thread(void *arg)
{
	*(uint64_t *)arg = thread_stream_id_of(table(U_TOOLS_CTX));
	return NULL;
}

static void test_tools_stream_ids(void **state)
{
	const void *const *tc = table(U_TOOLS_CTX);
	void *ha = NULL, *ha2 = NULL, *hb = NULL, *hs = NULL, *hl = NULL;
	uint64_t ia = 0, ib = 0, is = 0, il = 0, t1, t2 = 0;
	pthread_t th;
	int calls;

	(void)state;
	cuCtxSetCurrent(FAKE_CTX_A);
	assert_int_equal(((handle_fn)tc[51])(FAKE_CTX_A, NULL, &ha, 0), CUDA_SUCCESS);
	assert_int_equal(((handle_fn)tc[51])(NULL, NULL, &ha2, 0), CUDA_SUCCESS);
	assert_int_equal(((handle_fn)tc[51])(FAKE_CTX_A, CU_STREAM_LEGACY, &hl, 0), CUDA_SUCCESS);
	assert_int_equal(((handle_fn)tc[51])(FAKE_CTX_B, NULL, &hb, 0), CUDA_SUCCESS);
	assert_int_equal(((handle_fn)tc[51])(FAKE_CTX_A, (CUstream)0x777000, &hs, 0),
			 CUDA_SUCCESS);
	assert_non_null(ha);
	assert_ptr_equal(ha, ha2);
	assert_ptr_equal(ha, hl);
	assert_ptr_not_equal(ha, hb);
	assert_int_equal(((streamid_fn)tc[39])(NULL, ha, &ia), CUDA_SUCCESS);
	/* Context B's legacy stream, asked while A is current. */
	assert_int_equal(((streamid_fn)tc[39])(NULL, hb, &ib), CUDA_SUCCESS);
	assert_int_equal(((streamid_fn)tc[39])(NULL, hs, &is), CUDA_SUCCESS);
	assert_int_equal(ia, 7);
	assert_int_equal(ib, 8);
	assert_int_equal(is, 0x777000);
	calls = fake_streamid_calls;
	assert_int_equal(((streamid_fn)tc[39])(NULL, hl, &il), CUDA_SUCCESS);
	assert_int_equal(il, 7);
	assert_int_equal(fake_streamid_calls, calls);	/* cached */
	/* The current context is unchanged by the lookups. */
	{
		CUcontext cur = NULL;

		cuCtxGetCurrent(&cur);
		assert_ptr_equal(cur, FAKE_CTX_A);
	}
	/* The per-thread stream is one per thread. */
	t1 = thread_stream_id_of(tc);
	assert_int_equal(pthread_create(&th, NULL, other_thread, &t2), 0);
	pthread_join(th, NULL);
	assert_true(t1 != t2 && t1 != ia && t2 != ia);
	/* Not a handle of ours. */
	assert_int_equal(((streamid_fn)tc[39])(NULL, &ia, &il), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(((handle_fn)tc[51])(NULL, NULL, NULL, 0), CUDA_ERROR_INVALID_VALUE);
	lc_tools_stream_destroyed((CUstream)0x777000);
	lc_cls_context_destroyed(FAKE_CTX_B);
	assert_int_equal(((streamid_fn)tc[39])(NULL, hs, &il), CUDA_ERROR_INVALID_HANDLE);
	assert_int_equal(((streamid_fn)tc[39])(NULL, hb, &il), CUDA_ERROR_INVALID_HANDLE);
}

static void store_fn(void *user, CUfunction f, uint64_t x)
{
	CUfunction *out = user;

	(void)x;
	while (*out)
		out++;
	*out = f;
}

static void test_tools_module_and_cluster(void **state)
{
	typedef unsigned (*enum_fn)(CUcontext, CUmodule, void (*)(void *, CUfunction, uint64_t),
				    void *);
	typedef CUresult (*map_fn)(uint8_t **, uint8_t **);
	typedef CUresult (*free_fn)(uint8_t *, uint8_t *);
	const void *const *tm = table(U_TOOLS_MOD), *const *cp = table(U_CLUSTER);
	CUfunction got[8] = { 0 };
	uint8_t *v = (uint8_t *)1, *m = (uint8_t *)1;

	(void)state;
	assert_true((uintptr_t)tm[0] > 0x37);
	assert_int_equal(((enum_fn)tm[7])(FAKE_CTX_A, (CUmodule)0x51, store_fn, got), 1);
	assert_ptr_equal(got[0], (CUfunction)(0x51 * 16));
	assert_null(got[1]);
	memset(got, 0, sizeof(got));
	assert_int_equal(((enum_fn)tm[7])(FAKE_CTX_A, (CUmodule)0x63, store_fn, got), 3);
	assert_ptr_equal(got[2], (CUfunction)(0x63 * 16 + 2));
	assert_int_equal(((enum_fn)tm[7])(FAKE_CTX_A, NULL, store_fn, got), 0);
	assert_int_equal(((map_fn)cp[4])(&v, &m), CUDA_ERROR_NOT_SUPPORTED);
	assert_null(v);
	assert_null(m);
	assert_int_equal(((free_fn)cp[13])(v, m), CUDA_SUCCESS);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_md2_rfc1319),
		cmocka_unit_test(test_integrity_vectors),
		cmocka_unit_test(test_table_layouts),
		cmocka_unit_test(test_unknown_and_null),
		cmocka_unit_test(test_unused_slots),
		cmocka_unit_test(test_integrity_slot),
		cmocka_unit_test(test_cudart_bootstrap_slots),
		cmocka_unit_test(test_cls_destructor_order),
		cmocka_unit_test(test_tools_context_ids),
		cmocka_unit_test(test_tools_stream_ids),
		cmocka_unit_test(test_tools_module_and_cluster),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s DATA_DIR [--perturb]\n", argv[0]);
		return 2;
	}
	data_dir = argv[1];
	perturb = argc > 2 && !strcmp(argv[2], "--perturb");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
