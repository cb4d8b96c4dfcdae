/*
 * cuGetExportTable: the driver's private tables, served in the guest.
 *
 * Every table has the real driver 580's size word and length, NULL words
 * exactly where the real one has them, and a function in every other word:
 * the slots clients use do the work, the rest log once and return
 * CUDA_ERROR_NOT_SUPPORTED (a NULL slot would be a crash the day a newer
 * client calls it).  Tables are built once and never change or move:
 * several cudart copies in one process fetch the same ones, and the
 * integrity hash covers their addresses.
 *
 * This file holds the lookup and cudart's small bootstrap tables
 * (CUDART_INTERFACE, TOOLS_RUNTIME_CALLBACK_HOOKS, TOOLS_TLS,
 * GREEN_CONTEXT); ctxlocal.c, integrity.c and toolsctx.c hold the others.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "vgpu/log.h"
#include "darkapi.h"

#define LC_EXPORT __attribute__((visibility("default")))

LC_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId);

/*
 * The tables of the other files are referenced weakly so that a libcuda
 * built from this file alone still links; such a table is then refused as
 * unknown.
 */
#pragma weak lc_etbl_cls
#pragma weak lc_etbl_integrity
#pragma weak lc_etbl_tools_context
#pragma weak lc_etbl_tools_module
#pragma weak lc_etbl_cluster
#pragma weak lc_tools_ctx_id
#pragma weak lc_ctx_primary_peek

/* ---- Slots nobody implements: one function per (table, slot) ---- */

static const char *const etbl_names[LC_ETBL_COUNT] = {
	[LC_ETBL_CUDART] = "CUDART_INTERFACE",
	[LC_ETBL_HOOKS] = "TOOLS_RUNTIME_CALLBACK_HOOKS",
	[LC_ETBL_TOOLS_TLS] = "TOOLS_TLS",
	[LC_ETBL_CLS] = "CONTEXT_LOCAL_STORAGE_V0301",
	[LC_ETBL_GREEN] = "GREEN_CONTEXT",
	[LC_ETBL_INTEGRITY] = "INTEGRITY_CHECK",
	[LC_ETBL_TOOLS_CONTEXT] = "ToolsContext",
	[LC_ETBL_TOOLS_MODULE] = "ToolsModule",
	[LC_ETBL_CLUSTER] = "ClusterPrototype",
};

#define SLOT_MAX 100
static uint8_t slot_logged[LC_ETBL_COUNT][SLOT_MAX];

static CUresult slot_unsupported(enum lc_etbl_id id, unsigned slot)
{
	if (!__atomic_exchange_n(&slot_logged[id][slot], 1, __ATOMIC_RELAXED))
		VG_WARN("%s export table: slot %u is not implemented", etbl_names[id], slot);
	return CUDA_ERROR_NOT_SUPPORTED;
}

/*
 * Callers pass their own arguments; a function that takes none and returns
 * an int is safe to call that way under the SysV calling convention.
 */
typedef CUresult (*slot_fn)(void);

#define STUB(t, n) \
	static CUresult stub_##t##_##n(void) { return slot_unsupported(t, n); }
#define STUB_REF(t, n) stub_##t##_##n,
#define R10(M, t, d) M(t, d##0) M(t, d##1) M(t, d##2) M(t, d##3) M(t, d##4) \
	M(t, d##5) M(t, d##6) M(t, d##7) M(t, d##8) M(t, d##9)
#define R20(M, t) R10(M, t, ) R10(M, t, 1)
#define R100(M, t) R10(M, t, ) R10(M, t, 1) R10(M, t, 2) R10(M, t, 3) R10(M, t, 4) \
	R10(M, t, 5) R10(M, t, 6) R10(M, t, 7) R10(M, t, 8) R10(M, t, 9)

R20(STUB, LC_ETBL_CUDART)
R20(STUB, LC_ETBL_HOOKS)
R20(STUB, LC_ETBL_TOOLS_TLS)
R20(STUB, LC_ETBL_CLS)
R20(STUB, LC_ETBL_GREEN)
R20(STUB, LC_ETBL_INTEGRITY)
R100(STUB, LC_ETBL_TOOLS_CONTEXT)
R100(STUB, LC_ETBL_TOOLS_MODULE)
R20(STUB, LC_ETBL_CLUSTER)

static const slot_fn stubs_cudart[] = { R20(STUB_REF, LC_ETBL_CUDART) };
static const slot_fn stubs_hooks[] = { R20(STUB_REF, LC_ETBL_HOOKS) };
static const slot_fn stubs_tls[] = { R20(STUB_REF, LC_ETBL_TOOLS_TLS) };
static const slot_fn stubs_cls[] = { R20(STUB_REF, LC_ETBL_CLS) };
static const slot_fn stubs_green[] = { R20(STUB_REF, LC_ETBL_GREEN) };
static const slot_fn stubs_integrity[] = { R20(STUB_REF, LC_ETBL_INTEGRITY) };
static const slot_fn stubs_tctx[] = { R100(STUB_REF, LC_ETBL_TOOLS_CONTEXT) };
static const slot_fn stubs_tmod[] = { R100(STUB_REF, LC_ETBL_TOOLS_MODULE) };
static const slot_fn stubs_cluster[] = { R20(STUB_REF, LC_ETBL_CLUSTER) };

#define STUBS(a) { a, sizeof(a) / sizeof(a[0]) }
static const struct {
	const slot_fn *fn;
	unsigned n;
} stubs[LC_ETBL_COUNT] = {
	[LC_ETBL_CUDART] = STUBS(stubs_cudart),
	[LC_ETBL_HOOKS] = STUBS(stubs_hooks),
	[LC_ETBL_TOOLS_TLS] = STUBS(stubs_tls),
	[LC_ETBL_CLS] = STUBS(stubs_cls),
	[LC_ETBL_GREEN] = STUBS(stubs_green),
	[LC_ETBL_INTEGRITY] = STUBS(stubs_integrity),
	[LC_ETBL_TOOLS_CONTEXT] = STUBS(stubs_tctx),
	[LC_ETBL_TOOLS_MODULE] = STUBS(stubs_tmod),
	[LC_ETBL_CLUSTER] = STUBS(stubs_cluster),
};

void lc_etbl_fill(enum lc_etbl_id id, void **words, unsigned n, int sized)
{
	unsigned i;

	for (i = 0; i < n && i < stubs[id].n; i++)
		words[i] = (void *)stubs[id].fn[i];
	if (sized)
		words[0] = (void *)(uintptr_t)(n * sizeof(void *));
}

/* ---- CUDART_INTERFACE: 13 words, slot 10 NULL ---- */

static void *cudart_words[LC_ETBL_CUDART_WORDS];

/*
 * Slot 2, called per device at cudart's start: the primary context's
 * handle, neither retained nor made active.
 */
static CUresult cudart_primary_ctx(CUcontext *pctx, CUdevice dev)
{
	CUresult res;

	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	if (lc_ctx_primary_peek)
		return lc_ctx_primary_peek(dev, pctx);
	res = cuDevicePrimaryCtxRetain(pctx, dev);
	if (res == CUDA_SUCCESS)
		res = cuDevicePrimaryCtxRelease_v2(dev);
	return res;
}

/* Slot 7: cudart forgets a fat binary; nothing here holds on to it. */
static void cudart_fatbin_destroyed(const void *fatbin)
{
	(void)fatbin;
}

/* Slot 12 (called by cudart 13.1 and later): load the compilers. */
static CUresult cudart_load_compilers(void)
{
	return CUDA_SUCCESS;
}

static void cudart_build(void)
{
	lc_etbl_fill(LC_ETBL_CUDART, cudart_words, LC_ETBL_CUDART_WORDS, 1);
	cudart_words[2] = (void *)cudart_primary_ctx;
	cudart_words[7] = (void *)cudart_fatbin_destroyed;
	cudart_words[10] = NULL;
	cudart_words[12] = (void *)cudart_load_compilers;
}

const void *lc_etbl_cudart(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, cudart_build);
	return cudart_words;
}

/* ---- TOOLS_RUNTIME_CALLBACK_HOOKS: 7 words ---- */

/*
 * One word per runtime callback id (cudart needs more than 0x20a) and per
 * internal one (more than 0xd).  All zero: no tool is attached, so cudart
 * never issues a callback.
 */
#define HOOKS_RT_IDS		1024
#define HOOKS_INTERNAL_IDS	64
static uint32_t hooks_enable[HOOKS_RT_IDS];
static uint32_t hooks_internal_enable[HOOKS_INTERNAL_IDS];
static void *hooks_words[LC_ETBL_HOOKS_WORDS];

static CUresult hooks_issue(uint32_t cbid, const void *params)
{
	(void)cbid;
	(void)params;
	return CUDA_SUCCESS;
}

static CUresult hooks_enable_buffer(uint32_t **buf, size_t *n)
{
	if (!buf || !n)
		return CUDA_ERROR_INVALID_VALUE;
	*buf = hooks_enable;
	*n = HOOKS_RT_IDS;
	return CUDA_SUCCESS;
}

static CUresult hooks_internal_enable_buffer(uint32_t **buf, size_t *n)
{
	if (!buf || !n)
		return CUDA_ERROR_INVALID_VALUE;
	*buf = hooks_internal_enable;
	*n = HOOKS_INTERNAL_IDS;
	return CUDA_SUCCESS;
}

static CUresult hooks_context_id(CUcontext ctx, uint64_t *id)
{
	if (!lc_tools_ctx_id)
		return slot_unsupported(LC_ETBL_HOOKS, 4);
	return lc_tools_ctx_id(ctx, id);
}

static void hooks_build(void)
{
	lc_etbl_fill(LC_ETBL_HOOKS, hooks_words, LC_ETBL_HOOKS_WORDS, 1);
	hooks_words[1] = (void *)hooks_issue;
	hooks_words[2] = (void *)hooks_enable_buffer;
	hooks_words[4] = (void *)hooks_context_id;
	hooks_words[5] = (void *)hooks_issue;
	hooks_words[6] = (void *)hooks_internal_enable_buffer;
}

static const void *etbl_hooks(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, hooks_build);
	return hooks_words;
}

/* ---- TOOLS_TLS: 3 words, the tools' view of the current context ---- */

static void *tls_words[LC_ETBL_TOOLS_TLS_WORDS];

static CUresult tls_set_current(CUcontext ctx)
{
	return cuCtxSetCurrent(ctx);
}

static CUresult tls_get_current(CUcontext *pctx)
{
	return cuCtxGetCurrent(pctx);
}

static void tls_build(void)
{
	lc_etbl_fill(LC_ETBL_TOOLS_TLS, tls_words, LC_ETBL_TOOLS_TLS_WORDS, 1);
	tls_words[1] = (void *)tls_set_current;
	tls_words[2] = (void *)tls_get_current;
}

static const void *etbl_tls(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, tls_build);
	return tls_words;
}

/* ---- GREEN_CONTEXT: 15 words ---- */

static void *green_words[LC_ETBL_GREEN_WORDS];

/*
 * Slot 2: the kind of a context.  vgpu has no green contexts: every one is
 * a plain context (type 0) and has no green parent to report.
 */
static CUresult green_ctx_type(CUcontext ctx, uint32_t *type, CUcontext *primary)
{
	(void)ctx;
	if (!type)
		return CUDA_ERROR_INVALID_VALUE;
	*type = 0;
	if (primary)
		*primary = NULL;
	return CUDA_SUCCESS;
}

/* Slot 3: whether primary contexts are green-context capable; cudart compares with 1. */
static int green_primary_supported(void)
{
	return 0;
}

static void green_build(void)
{
	lc_etbl_fill(LC_ETBL_GREEN, green_words, LC_ETBL_GREEN_WORDS, 1);
	green_words[2] = (void *)green_ctx_type;
	green_words[3] = (void *)green_primary_supported;
}

static const void *etbl_green(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, green_build);
	return green_words;
}

/* ---- The lookup ---- */

static const struct {
	uint8_t id[16];
	const void *(*get)(void);
} etbls[] = {
	{ { 0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a,
	    0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9 }, lc_etbl_cudart },
	{ { 0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74,
	    0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66 }, etbl_hooks },
	{ { 0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47,
	    0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc }, etbl_tls },
	{ { 0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11,
	    0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93 }, lc_etbl_cls },
	{ { 0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43,
	    0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e }, etbl_green },
	{ { 0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b,
	    0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2 }, lc_etbl_integrity },
	{ { 0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48,
	    0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2 }, lc_etbl_tools_context },
	{ { 0x6e, 0x16, 0x3f, 0xbe, 0xb9, 0x58, 0x44, 0x4d,
	    0x83, 0x5c, 0xe1, 0x82, 0xaf, 0xf1, 0x99, 0x1e }, lc_etbl_tools_module },
	{ { 0x17, 0x34, 0xdc, 0x26, 0x80, 0x0d, 0x47, 0x45,
	    0x87, 0x26, 0xc0, 0xf1, 0xe7, 0xdd, 0x8b, 0xca }, lc_etbl_cluster },
};

/*
 * Tables the real driver also serves but we refuse, among them the one
 * cudart asks for before cuInit (f8cff951..., its error-log bridge) whose
 * absence it tolerates, are "unknown": INVALID_VALUE and NULL, logged at
 * info level since every cudart start asks.
 */
LC_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId)
{
	char hex[33];
	unsigned i;

	if (!ppExportTable)
		return CUDA_ERROR_INVALID_VALUE;
	*ppExportTable = NULL;
	if (!pExportTableId)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < sizeof(etbls) / sizeof(etbls[0]); i++) {
		if (memcmp(etbls[i].id, pExportTableId->bytes, 16))
			continue;
		if (!etbls[i].get)
			break;
		*ppExportTable = etbls[i].get();
		return CUDA_SUCCESS;
	}
	for (i = 0; i < 16; i++)
		snprintf(hex + 2 * i, 3, "%02x", (uint8_t)pExportTableId->bytes[i]);
	VG_INFO("cuGetExportTable: table %s is not served", hex);
	return CUDA_ERROR_INVALID_VALUE;
}
