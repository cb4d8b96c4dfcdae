/*
 * cuGetProcAddress and cuGetProcAddress_v2: (name, version, flags) -> the
 * address of our export that NVIDIA's driver 580 would hand out.
 *
 * The answers are the real driver's, measured (tests/procaddr/data):
 *  - a version above the driver's: CUDA_ERROR_INVALID_VALUE, status not
 *    written; this is checked before the name, for every name;
 *  - an unknown name (the empty name of cudart's probe included):
 *    CUDA_SUCCESS, NULL, SYMBOL_NOT_FOUND;
 *  - a version older than the symbol: CUDA_SUCCESS, NULL,
 *    VERSION_NOT_SUFFICIENT.
 * cudart calls this before cuInit, so nothing here needs the session.
 */
#include <stdlib.h>
#include <string.h>

#include "vgpu/cuda_types.h"
#include "vgpu/log.h"
#include "procaddr.h"

#ifndef VGPU_DRIVER_VERSION
#define VGPU_DRIVER_VERSION 13000
#endif

#define LC_EXPORT __attribute__((visibility("default")))

/*
 * Weak so that a libcuda built without the generated table still links and
 * loads: every lookup then answers SYMBOL_NOT_FOUND, with an error logged.
 */
extern const struct lc_pa_table lc_procaddr_table __attribute__((weak));

CUresult lc_procaddr_lookup(const char *symbol, void **pfn, int version,
			    cuuint64_t flags, CUdriverProcAddressQueryResult *status);

LC_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
				    cuuint64_t flags);
LC_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
				       cuuint64_t flags,
				       CUdriverProcAddressQueryResult *symbolStatus);

static int sym_cmp(const void *key, const void *ent)
{
	return strcmp(key, ((const struct lc_pa_sym *)ent)->name);
}

static const struct lc_pa_table *table(void)
{
	static int warned;

	if (&lc_procaddr_table)
		return &lc_procaddr_table;
	if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
		VG_ERR("cuGetProcAddress: built without its table; every symbol is not found");
	return NULL;
}

/* Answers without writing anything: 0 found, else the status to report. */
static CUdriverProcAddressQueryResult resolve(const char *symbol, int version,
					      int ptds, void (**fn)(void))
{
	const struct lc_pa_table *t = table();
	const struct lc_pa_sym *s;
	const struct lc_pa_step *st;
	unsigned first, n, i;

	if (!t)
		return CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	s = bsearch(symbol, t->syms, t->nsyms, sizeof(*s), sym_cmp);
	if (!s)
		return CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	first = ptds ? s->ptds : s->legacy;
	n = ptds ? s->nptds : s->nlegacy;
	st = t->steps + first;
	/* Ladders are a handful of steps long: the last one not above wins. */
	for (i = n; i > 0; i--) {
		if (st[i - 1].version <= version) {
			*fn = st[i - 1].fn;
			return CU_GET_PROC_ADDRESS_SUCCESS;
		}
	}
	return CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
}

CUresult lc_procaddr_lookup(const char *symbol, void **pfn, int version,
			    cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
	CUdriverProcAddressQueryResult st;
	void (*fn)(void) = NULL;

	if (!symbol || !pfn)
		return CUDA_ERROR_INVALID_VALUE;
	/*
	 * The driver was measured with flags 0, 1 and 2 only; it treats 0 and 1
	 * alike.  Other values (both stream bits, unknown bits) are refused, as
	 * for any invalid argument.
	 */
	if (version > VGPU_DRIVER_VERSION ||
	    (flags != CU_GET_PROC_ADDRESS_DEFAULT &&
	     flags != CU_GET_PROC_ADDRESS_LEGACY_STREAM &&
	     flags != CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)) {
		*pfn = NULL;
		return CUDA_ERROR_INVALID_VALUE;
	}
	st = resolve(symbol, version,
		     flags == CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &fn);
	if (st != CU_GET_PROC_ADDRESS_SUCCESS && symbol[0])
		VG_DEBUG("cuGetProcAddress(%s, %d, %llu): %s", symbol, version,
			 (unsigned long long)flags,
			 st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND ? "not found" :
			 "version not sufficient");
	/* Function to object pointer: what the interface hands out. */
	*pfn = (void *)fn;
	if (status)
		*status = st;
	return CUDA_SUCCESS;
}

/*
 * The v1 entry point (11030) has no status argument; it answers as v2 does
 * (the real v1 was not measured separately).
 */
LC_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
				    cuuint64_t flags)
{
	return lc_procaddr_lookup(symbol, pfn, cudaVersion, flags, NULL);
}

LC_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
				       cuuint64_t flags,
				       CUdriverProcAddressQueryResult *symbolStatus)
{
	return lc_procaddr_lookup(symbol, pfn, cudaVersion, flags, symbolStatus);
}
