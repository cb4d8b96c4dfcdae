/*
 * The tools tables cuBLAS, cuBLASLt and cuFFT use (ToolsContext,
 * ToolsModule, ClusterPrototype), with their real lengths; the slots those
 * libraries call are implemented, the others log once.
 *
 * Context and stream ids come from our cuCtxGetId and cuStreamGetId, once
 * per context and stream, then from the cache here: cuBLAS asks for the
 * context id on every call.  cuBLASLt keys its per-context module cache by
 * that id, so two live contexts never share one, and a context that ended
 * (cuCtxDestroy, primary reset) is forgotten: the next query asks again.
 */
#include <pthread.h>
#include <stdlib.h>

#include "vgpu/log.h"
#include "darkapi.h"

/* ---- Context ids ---- */

struct tools_ctx {
	struct tools_ctx *next;
	CUcontext ctx;
	uint64_t id;
};

/*
 * The record ToolsContext slot 51 hands out for a (context, stream) pair;
 * the per-thread default stream gets one per thread.  Only slot 39 reads
 * it.  Valid until its context ends or its stream is destroyed.
 */
struct tools_stream {
	struct tools_stream *next;
	CUcontext ctx;
	CUstream stream;	/* CU_STREAM_LEGACY for the legacy NULL stream */
	pthread_t thread;	/* for CU_STREAM_PER_THREAD */
	int have_id;
	uint64_t id;
};

static pthread_mutex_t tools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tools_ctx *tools_ctxs;
static struct tools_stream *tools_streams;

static CUresult tools_resolve_ctx(CUcontext *ctx)
{
	CUresult res;

	if (*ctx)
		return CUDA_SUCCESS;
	res = cuCtxGetCurrent(ctx);
	if (res != CUDA_SUCCESS)
		return res;
	return *ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult lc_tools_ctx_id(CUcontext ctx, uint64_t *id)
{
	unsigned long long v;
	struct tools_ctx *c;
	CUresult res;

	if (!id)
		return CUDA_ERROR_INVALID_VALUE;
	res = tools_resolve_ctx(&ctx);
	if (res != CUDA_SUCCESS)
		return res;
	pthread_mutex_lock(&tools_lock);
	for (c = tools_ctxs; c; c = c->next) {
		if (c->ctx == ctx) {
			*id = c->id;
			pthread_mutex_unlock(&tools_lock);
			return CUDA_SUCCESS;
		}
	}
	pthread_mutex_unlock(&tools_lock);

	res = cuCtxGetId(ctx, &v);
	if (res != CUDA_SUCCESS)
		return res;
	c = malloc(sizeof(*c));
	if (!c)
		return CUDA_ERROR_OUT_OF_MEMORY;
	c->ctx = ctx;
	c->id = v;
	/* Two threads may both have asked: the id is the same, keep one. */
	pthread_mutex_lock(&tools_lock);
	c->next = tools_ctxs;
	tools_ctxs = c;
	pthread_mutex_unlock(&tools_lock);
	*id = v;
	return CUDA_SUCCESS;
}

void lc_tools_context_destroyed(CUcontext ctx)
{
	struct tools_ctx **pc, *c;
	struct tools_stream **ps, *s;

	pthread_mutex_lock(&tools_lock);
	for (pc = &tools_ctxs; (c = *pc);) {
		if (c->ctx == ctx) {
			*pc = c->next;
			free(c);
		} else {
			pc = &c->next;
		}
	}
	for (ps = &tools_streams; (s = *ps);) {
		if (s->ctx == ctx) {
			*ps = s->next;
			free(s);
		} else {
			ps = &s->next;
		}
	}
	pthread_mutex_unlock(&tools_lock);
}

void lc_tools_stream_destroyed(CUstream stream)
{
	struct tools_stream **ps, *s;

	if (stream == NULL || stream == CU_STREAM_LEGACY || stream == CU_STREAM_PER_THREAD)
		return;
	pthread_mutex_lock(&tools_lock);
	for (ps = &tools_streams; (s = *ps);) {
		if (s->stream == stream) {
			*ps = s->next;
			free(s);
		} else {
			ps = &s->next;
		}
	}
	pthread_mutex_unlock(&tools_lock);
}

/* ---- ToolsContext: 93 words, slot 91 NULL ---- */

static void *tctx_words[LC_ETBL_TOOLS_CONTEXT_WORDS];

/* Slot 4: CtxGetId. */
static CUresult tctx_ctx_id(CUcontext ctx, uint64_t *id)
{
	return lc_tools_ctx_id(ctx, id);
}

/* Slot 51: StreamGetToolsHandleEx(ctx, stream, &handle, perThread). */
static CUresult tctx_stream_handle(CUcontext ctx, CUstream stream, void **out,
				   uint8_t per_thread)
{
	struct tools_stream *s;
	pthread_t self = pthread_self();
	CUresult res;

	if (!out)
		return CUDA_ERROR_INVALID_VALUE;
	res = tools_resolve_ctx(&ctx);
	if (res != CUDA_SUCCESS)
		return res;
	if (stream == NULL)
		stream = per_thread ? CU_STREAM_PER_THREAD : CU_STREAM_LEGACY;
	pthread_mutex_lock(&tools_lock);
	for (s = tools_streams; s; s = s->next)
		if (s->ctx == ctx && s->stream == stream &&
		    (stream != CU_STREAM_PER_THREAD || pthread_equal(s->thread, self)))
			break;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			pthread_mutex_unlock(&tools_lock);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		s->ctx = ctx;
		s->stream = stream;
		s->thread = self;
		s->next = tools_streams;
		tools_streams = s;
	}
	pthread_mutex_unlock(&tools_lock);
	*out = s;
	return CUDA_SUCCESS;
}

/* The stream's id as our cuStreamGetId gives it, in the record's context. */
static CUresult tools_query_stream_id(CUcontext ctx, CUstream stream, uint64_t *id)
{
	unsigned long long v = 0;
	CUcontext cur = NULL, popped;
	CUresult res, res2;
	int pushed = 0;

	res = cuCtxGetCurrent(&cur);
	if (res != CUDA_SUCCESS)
		return res;
	if (cur != ctx) {
		res = cuCtxPushCurrent_v2(ctx);
		if (res != CUDA_SUCCESS)
			return res;
		pushed = 1;
	}
	res = cuStreamGetId(stream, &v);
	if (pushed) {
		res2 = cuCtxPopCurrent_v2(&popped);
		if (res == CUDA_SUCCESS)
			res = res2;
	}
	if (res == CUDA_SUCCESS)
		*id = v;
	return res;
}

/* Slot 39: StreamGetIdEx(ctx, handle, &id). */
static CUresult tctx_stream_id(CUcontext ctx, void *handle, uint64_t *id)
{
	struct tools_stream *s;
	CUcontext sctx;
	CUstream stream;
	uint64_t v;
	CUresult res;

	if (!handle || !id)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_mutex_lock(&tools_lock);
	for (s = tools_streams; s; s = s->next)
		if (s == handle)
			break;
	if (s && s->have_id) {
		*id = s->id;
		pthread_mutex_unlock(&tools_lock);
		return CUDA_SUCCESS;
	}
	sctx = s ? s->ctx : NULL;
	stream = s ? s->stream : NULL;
	pthread_mutex_unlock(&tools_lock);
	if (!s)
		return CUDA_ERROR_INVALID_HANDLE;
	(void)ctx;	/* the handle already names its context */

	res = tools_query_stream_id(sctx, stream, &v);
	if (res != CUDA_SUCCESS)
		return res;
	pthread_mutex_lock(&tools_lock);
	for (s = tools_streams; s; s = s->next) {
		if (s == handle) {
			s->id = v;
			s->have_id = 1;
		}
	}
	pthread_mutex_unlock(&tools_lock);
	*id = v;
	return CUDA_SUCCESS;
}

static void tctx_build(void)
{
	lc_etbl_fill(LC_ETBL_TOOLS_CONTEXT, tctx_words, LC_ETBL_TOOLS_CONTEXT_WORDS, 1);
	tctx_words[4] = (void *)tctx_ctx_id;
	tctx_words[39] = (void *)tctx_stream_id;
	tctx_words[51] = (void *)tctx_stream_handle;
	tctx_words[91] = NULL;
}

const void *lc_etbl_tools_context(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, tctx_build);
	return tctx_words;
}

/* ---- ToolsModule: 99 words, slot 93 NULL ---- */

static void *tmod_words[LC_ETBL_TOOLS_MODULE_WORDS];

typedef void (*tmod_fn_cb)(void *user, CUfunction f, uint64_t unknown);

/*
 * Slot 7: calls cb for every function of the module and returns how many
 * (not a CUresult: cuFFT checks for 1, its modules hold one kernel); 0 on
 * any error.  The third callback argument's meaning is unknown; cuFFT
 * ignores it.
 */
static unsigned tmod_enumerate(CUcontext ctx, CUmodule mod, tmod_fn_cb cb, void *user)
{
	CUfunction *fns;
	unsigned n = 0, i;

	(void)ctx;
	if (!cb || cuModuleGetFunctionCount(&n, mod) != CUDA_SUCCESS || !n)
		return 0;
	fns = calloc(n, sizeof(*fns));
	if (!fns)
		return 0;
	if (cuModuleEnumerateFunctions(fns, n, mod) != CUDA_SUCCESS) {
		free(fns);
		return 0;
	}
	for (i = 0; i < n; i++)
		cb(user, fns[i], 0);
	free(fns);
	return n;
}

static void tmod_build(void)
{
	lc_etbl_fill(LC_ETBL_TOOLS_MODULE, tmod_words, LC_ETBL_TOOLS_MODULE_WORDS, 1);
	tmod_words[7] = (void *)tmod_enumerate;
	tmod_words[93] = NULL;
}

const void *lc_etbl_tools_module(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, tmod_build);
	return tmod_words;
}

/* ---- ClusterPrototype: 17 words ---- */

static void *cluster_words[LC_ETBL_CLUSTER_WORDS];

/*
 * Slot 4: the TPC -> vGPC/mTPC map behind cuBLASLt's cluster heuristics.
 * Declined: cuBLASLt then runs without it (an error or a NULL map is its
 * documented fallback), where an invented map could steer it wrongly.
 */
static CUresult cluster_tpc_map(uint8_t **vgpc, uint8_t **mtpc)
{
	static int logged;

	if (vgpc)
		*vgpc = NULL;
	if (mtpc)
		*mtpc = NULL;
	if (!__atomic_exchange_n(&logged, 1, __ATOMIC_RELAXED))
		VG_INFO("ClusterPrototype: no TPC map; cuBLASLt uses its fallback");
	return CUDA_ERROR_NOT_SUPPORTED;
}

/* Slot 13: frees what slot 4 returned. */
static CUresult cluster_tpc_map_free(uint8_t *vgpc, uint8_t *mtpc)
{
	free(vgpc);
	free(mtpc);
	return CUDA_SUCCESS;
}

static void cluster_build(void)
{
	lc_etbl_fill(LC_ETBL_CLUSTER, cluster_words, LC_ETBL_CLUSTER_WORDS, 1);
	cluster_words[4] = (void *)cluster_tpc_map;
	cluster_words[13] = (void *)cluster_tpc_map_free;
}

const void *lc_etbl_cluster(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, cluster_build);
	return cluster_words;
}
