/* SPDX-License-Identifier: MIT */
/*
 * Streams: each one is a FIFO of operations run by its own thread, so work
 * really is asynchronous to the caller.  Ordering between streams is
 * expressed with fences: an operation waits for the fences it depends on
 * before it runs.  The legacy default stream of a context depends on the
 * newest operation of every blocking stream of the context, and every
 * operation on a blocking stream depends on the newest one of the legacy
 * stream, which is CUDA's legacy-stream rule.
 */
#include <errno.h>
#include <stdlib.h>

#include "td.h"

static struct td_fence *td_fence_new(void)
{
	struct td_fence *f = calloc(1, sizeof(*f));

	if (f)
		f->refs = 1;
	return f;
}

void td_fence_put_locked(struct td_fence *f)
{
	if (f && --f->refs == 0)
		free(f);
}

void td_fence_wait_locked(struct td_fence *f)
{
	while (f && !f->done)
		pthread_cond_wait(&td.cond, &td.lock);
}

struct td_op *td_op_new(td_op_fn run)
{
	struct td_op *op = calloc(1, sizeof(*op));

	if (op)
		op->run = run;
	return op;
}

void td_op_free(struct td_op *op)
{
	if (!op)
		return;
	free(op->deps);
	free(op->staging);
	free(op);
}

static void *td_stream_main(void *arg)
{
	struct td_stream *s = arg;
	struct td_op *op;
	int i, skip;

	td_lock();
	for (;;) {
		while (!s->head && !s->quit)
			pthread_cond_wait(&td.cond, &td.lock);
		op = s->head;
		if (!op)
			break;
		for (i = 0; i < op->ndeps; i++)
			td_fence_wait_locked(op->deps[i]);
		/* After a sticky error the device runs nothing more. */
		skip = op->ctx->sticky != CUDA_SUCCESS && !op->host;
		td_unlock();
		if (op->run && !skip)
			op->run(op);
		td_lock();
		s->head = op->next;
		if (!s->head)
			s->tail = NULL;
		op->fence->ns = td_now_ns();
		op->fence->done = 1;
		for (i = 0; i < op->ndeps; i++)
			td_fence_put_locked(op->deps[i]);
		op->ndeps = 0;
		td_fence_put_locked(op->fence);
		pthread_cond_broadcast(&td.cond);
		td_unlock();
		td_op_free(op);
		td_lock();
	}
	td_unlock();
	return NULL;
}

static struct td_stream *td_stream_new_locked(struct td_ctx *c, unsigned flags, int priority,
					      int legacy)
{
	struct td_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->magic = TD_MAGIC_STREAM;
	s->ctx = c;
	s->flags = flags;
	s->priority = priority;
	s->legacy = legacy;
	s->id = td.next_id++;
	return s;
}

int td_stream_live_locked(const struct td_stream *s)
{
	const struct td_ctx *c;
	const struct td_stream *x;

	for (c = td.ctxs; c; c = c->next)
		for (x = c->streams; x; x = x->next)
			if (x == s)
				return 1;
	return 0;
}

/*
 * NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD name the current
 * context's legacy stream (the per-thread stream is served by the legacy
 * one: stricter ordering, same results); anything else must be a live
 * stream, whose own context is used.
 */
CUresult td_stream_resolve(CUstream h, struct td_ctx **ctx, struct td_stream **out)
{
	struct td_ctx *c;
	CUresult res;

	if (h == NULL || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
		res = td_ctx_get(&c);
		if (res != CUDA_SUCCESS)
			return res;
		td_lock();
		if (!td_ctx_live_locked(c)) {
			td_unlock();
			return CUDA_ERROR_CONTEXT_IS_DESTROYED;
		}
		if (!c->legacy)
			c->legacy = td_stream_new_locked(c, 0, 0, 1);
		*out = c->legacy;
		td_unlock();
		*ctx = c;
		return *out ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
	}
	res = td_check_init();
	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (!td_stream_live_locked((struct td_stream *)h)) {
		res = CUDA_ERROR_INVALID_HANDLE;
	} else {
		*out = (struct td_stream *)h;
		*ctx = (*out)->ctx;
		res = (*ctx)->sticky;
	}
	td_unlock();
	return res;
}

static int td_dep_add(struct td_fence **deps, int n, struct td_fence *f)
{
	if (f && !f->done) {
		f->refs++;
		deps[n++] = f;
	}
	return n;
}

/*
 * Queues op on s.  extra_dep: a fence op must also wait for (an event).
 * wait: return only when op has run (and report the context's sticky
 * error).  out: the op's fence, referenced, for an event to hold.
 */
CUresult td_submit(struct td_stream *s, struct td_op *op, struct td_fence *extra_dep,
		   int wait, struct td_fence **out)
{
	struct td_ctx *c = s->ctx;
	struct td_stream *t;
	struct td_fence *f;
	CUresult res = CUDA_SUCCESS;
	int max = 2;

	td_lock();
	/* The context or the stream went away since the caller looked it up. */
	if (s->quit || !td_ctx_live_locked(c)) {
		td_unlock();
		td_op_free(op);
		return s->legacy ? CUDA_ERROR_CONTEXT_IS_DESTROYED : CUDA_ERROR_INVALID_HANDLE;
	}
	/* Nothing is recorded into a graph here: work on a capturing stream spoils the capture. */
	if (s->capture != CU_STREAM_CAPTURE_STATUS_NONE) {
		s->capture = CU_STREAM_CAPTURE_STATUS_INVALIDATED;
		td_unlock();
		td_op_free(op);
		return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	}
	for (t = c->streams; t; t = t->next)
		max++;
	op->deps = calloc((size_t)max, sizeof(*op->deps));
	f = td_fence_new();
	if (!op->deps || !f) {
		free(f);
		td_unlock();
		td_op_free(op);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (!s->started) {
		if (pthread_create(&s->thread, NULL, td_stream_main, s) != 0) {
			free(f);
			td_unlock();
			td_op_free(op);
			return CUDA_ERROR_OUT_OF_MEMORY;
		}
		s->started = 1;
	}
	if (s->legacy) {
		for (t = c->streams; t; t = t->next)
			if (!(t->flags & CU_STREAM_NON_BLOCKING))
				op->ndeps = td_dep_add(op->deps, op->ndeps, t->last);
	} else if (!(s->flags & CU_STREAM_NON_BLOCKING) && c->legacy) {
		op->ndeps = td_dep_add(op->deps, op->ndeps, c->legacy->last);
	}
	op->ndeps = td_dep_add(op->deps, op->ndeps, extra_dep);
	op->ctx = c;
	op->stream = s;
	op->fence = f;
	f->refs++;		/* the stream's tail */
	td_fence_put_locked(s->last);
	s->last = f;
	if (s->tail)
		s->tail->next = op;
	else
		s->head = op;
	s->tail = op;
	pthread_cond_broadcast(&td.cond);
	if (out) {
		f->refs++;
		*out = f;
	}
	if (wait) {
		f->refs++;
		td_fence_wait_locked(f);
		td_fence_put_locked(f);
		res = c->sticky;
	}
	td_unlock();
	return res;
}

/* Waits for all work of c; its sticky error, if any. */
CUresult td_ctx_sync(struct td_ctx *c)
{
	struct td_stream *t;
	CUresult res;
	int again = 1;

	td_lock();
	/* Waiting drops the lock: look again until nothing is pending. */
	while (again) {
		again = 0;
		if (c->legacy && c->legacy->last && !c->legacy->last->done) {
			struct td_fence *f = c->legacy->last;

			f->refs++;
			td_fence_wait_locked(f);
			td_fence_put_locked(f);
			again = 1;
		}
		for (t = c->streams; t && !again; t = t->next) {
			struct td_fence *f = t->last;

			if (f && !f->done) {
				f->refs++;
				td_fence_wait_locked(f);
				td_fence_put_locked(f);
				again = 1;
			}
		}
	}
	res = c->sticky;
	td_unlock();
	return res;
}

/* Stops s's thread after its queue drains; s is already unreachable. */
static void td_stream_stop(struct td_stream *s)
{
	int started;

	td_lock();
	s->quit = 1;
	started = s->started;
	pthread_cond_broadcast(&td.cond);
	td_unlock();
	if (!started)
		return;
	/* A host function destroying its own stream cannot wait for itself. */
	if (pthread_equal(pthread_self(), s->thread))
		pthread_detach(s->thread);
	else
		pthread_join(s->thread, NULL);
}

static void td_stream_bury_locked(struct td_stream *s)
{
	td_fence_put_locked(s->last);
	s->last = NULL;
	s->magic = 0;
	s->next = td.dead_streams;
	td.dead_streams = s;
}

/* Context teardown: every stream finishes, then streams and events go. */
void td_streams_teardown(struct td_ctx *c)
{
	struct td_stream *s, *next, *legacy;
	struct td_event *e, *enext;

	td_lock();
	s = c->streams;
	legacy = c->legacy;
	td_unlock();
	for (; s; s = s->next)
		td_stream_stop(s);
	if (legacy)
		td_stream_stop(legacy);
	td_lock();
	for (s = c->streams; s; s = next) {
		next = s->next;
		td_stream_bury_locked(s);
		td.live_streams--;
	}
	c->streams = NULL;
	if (legacy)
		td_stream_bury_locked(legacy);
	c->legacy = NULL;
	for (e = c->events; e; e = enext) {
		enext = e->next;
		td_event_bury_locked(e);
	}
	c->events = NULL;
	td_unlock();
}

/* ---- stream entry points ----------------------------------------------- */

static CUresult td_stream_create(CUstream *phStream, unsigned int Flags, int priority)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!phStream || (Flags & ~(unsigned)CU_STREAM_NON_BLOCKING))
		return CUDA_ERROR_INVALID_VALUE;
	/* Priorities outside [-5, 0] are clamped, as the driver does. */
	if (priority > 0)
		priority = 0;
	if (priority < -5)
		priority = -5;
	td_lock();
	s = td_stream_new_locked(c, Flags, priority, 0);
	if (s) {
		s->next = c->streams;
		c->streams = s;
		td.live_streams++;
	}
	td_unlock();
	if (!s)
		return CUDA_ERROR_OUT_OF_MEMORY;
	*phStream = (CUstream)s;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
	return td_stream_create(phStream, Flags, 0);
}

TD_EXPORT CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
	return td_stream_create(phStream, flags, priority);
}

/*
 * The stream's queued work still runs; unlike NVIDIA's driver this call
 * waits for it, so that nothing of the stream outlives its context.
 */
TD_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream)
{
	struct td_stream *s = (struct td_stream *)hStream, **pp;
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!s || hStream == CU_STREAM_LEGACY || hStream == CU_STREAM_PER_THREAD)
		return CUDA_ERROR_INVALID_HANDLE;
	td_lock();
	if (!td_stream_live_locked(s)) {
		td_unlock();
		return CUDA_ERROR_INVALID_HANDLE;
	}
	for (pp = &s->ctx->streams; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	td.live_streams--;
	td_unlock();
	td_stream_stop(s);
	td_lock();
	td_stream_bury_locked(s);
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamSynchronize(CUstream hStream)
{
	struct td_ctx *c;
	struct td_stream *s;
	struct td_fence *f;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	f = s->last;
	if (f) {
		f->refs++;
		td_fence_wait_locked(f);
		td_fence_put_locked(f);
	}
	res = c->sticky;
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuStreamQuery(CUstream hStream)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (s->last && !s->last->done)
		res = CUDA_ERROR_NOT_READY;
	else
		res = c->sticky;
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
	struct td_ctx *c;
	struct td_stream *s;
	struct td_event *e;
	struct td_fence *f = NULL;
	struct td_op *op;
	CUresult res = td_event_get(hEvent, &e);

	if (res != CUDA_SUCCESS)
		return res;
	res = td_stream_resolve(hStream, &c, &s);
	if (res != CUDA_SUCCESS)
		return res;
	if (Flags & ~(unsigned)CU_EVENT_WAIT_EXTERNAL)
		return CUDA_ERROR_INVALID_VALUE;
	op = td_op_new(NULL);
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	/* The fence recorded now is the one waited for, as in CUDA. */
	td_lock();
	f = e->fence;
	if (f)
		f->refs++;
	td_unlock();
	res = td_submit(s, op, f, 0, NULL);
	td_lock();
	td_fence_put_locked(f);
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!flags)
		return CUDA_ERROR_INVALID_VALUE;
	*flags = s->flags;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamGetPriority(CUstream hStream, int *priority)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!priority)
		return CUDA_ERROR_INVALID_VALUE;
	*priority = s->priority;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pctx)
		return CUDA_ERROR_INVALID_VALUE;
	*pctx = (CUcontext)c;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!streamId)
		return CUDA_ERROR_INVALID_VALUE;
	*streamId = s->id;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamGetDevice(CUstream hStream, CUdevice *device)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	*device = c->dev;
	return CUDA_SUCCESS;
}

static void td_run_hostfn(struct td_op *op)
{
	op->u.host.fn(op->u.host.user);
}

static void td_run_callback(struct td_op *op)
{
	CUresult status;

	td_lock();
	status = op->ctx->sticky;
	td_unlock();
	op->u.host.cb(op->u.host.handle, status, op->u.host.user);
}

TD_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, CUhostFn fn, void *userData)
{
	struct td_ctx *c;
	struct td_stream *s;
	struct td_op *op;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!fn)
		return CUDA_ERROR_INVALID_VALUE;
	op = td_op_new(td_run_hostfn);
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	op->host = 1;
	op->u.host.fn = fn;
	op->u.host.user = userData;
	return td_submit(s, op, NULL, 0, NULL);
}

TD_EXPORT CUresult cuStreamAddCallback(CUstream hStream, CUstreamCallback callback, void *userData,
				       unsigned int flags)
{
	struct td_ctx *c;
	struct td_stream *s;
	struct td_op *op;
	CUresult res = td_stream_resolve(hStream, &c, &s);

	if (res != CUDA_SUCCESS)
		return res;
	if (!callback || flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	op = td_op_new(td_run_callback);
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	op->host = 1;
	op->u.host.cb = callback;
	op->u.host.handle = hStream;
	op->u.host.user = userData;
	return td_submit(s, op, NULL, 0, NULL);
}

/* ---- the unversioned names: same arguments, same behaviour here ---------- */

TD_EXPORT CUresult cuStreamDestroy(CUstream hStream)
{
	return cuStreamDestroy_v2(hStream);
}

/* ---- stream capture: the state only ------------------------------------ */

/*
 * A capture records nothing (the test driver has no graphs to put work in):
 * work queued on a capturing stream invalidates the capture and is refused
 * with CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED.  An empty capture ends with an
 * empty graph, whose only use is cuGraphDestroy.  What vgpu needs of it is
 * the state a capture leaves in cuStreamIsCapturing and
 * cuStreamGetCaptureInfo (which, for a stream not capturing, writes the
 * status only, as NVIDIA's driver does).
 */
#define TD_GRAPH_MAGIC 0x74646772u

struct td_graph {
	struct td_graph *next;
	uint32_t magic;
	int dead;		/* destroyed handles are kept: never reused */
};

static struct td_graph *td_graphs;
static unsigned long long td_capture_ids;

static CUresult capture_stream(CUstream h, struct td_stream **out)
{
	struct td_ctx *c;
	CUresult res = td_stream_resolve(h, &c, out);

	if (res == CUDA_SUCCESS && (*out)->legacy)
		res = CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
	return res;
}

static CUresult begin_capture(CUstream h, CUstreamCaptureMode mode)
{
	struct td_stream *s;
	CUresult res;

	if ((unsigned)mode > CU_STREAM_CAPTURE_MODE_RELAXED)
		return CUDA_ERROR_INVALID_VALUE;
	res = capture_stream(h, &s);
	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (s->capture != CU_STREAM_CAPTURE_STATUS_NONE) {
		res = CUDA_ERROR_ILLEGAL_STATE;
	} else {
		s->capture = CU_STREAM_CAPTURE_STATUS_ACTIVE;
		s->capture_id = ++td_capture_ids;
	}
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
{
	return begin_capture(hStream, mode);
}

TD_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode)
{
	return begin_capture(hStream, mode);
}

static CUresult end_capture(CUstream h, CUgraph *phGraph)
{
	struct td_stream *s;
	struct td_graph *g;
	CUresult res;

	if (!phGraph)
		return CUDA_ERROR_INVALID_VALUE;
	res = capture_stream(h, &s);
	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (s->capture == CU_STREAM_CAPTURE_STATUS_NONE) {
		res = CUDA_ERROR_ILLEGAL_STATE;
	} else if (s->capture == CU_STREAM_CAPTURE_STATUS_INVALIDATED) {
		s->capture = CU_STREAM_CAPTURE_STATUS_NONE;
		*phGraph = NULL;
		res = CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
	} else if (!(g = calloc(1, sizeof(*g)))) {
		res = CUDA_ERROR_OUT_OF_MEMORY;
	} else {
		g->magic = TD_GRAPH_MAGIC;
		g->next = td_graphs;
		td_graphs = g;
		s->capture = CU_STREAM_CAPTURE_STATUS_NONE;
		*phGraph = (CUgraph)g;
	}
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph)
{
	return end_capture(hStream, phGraph);
}

TD_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph *phGraph)
{
	return end_capture(hStream, phGraph);
}

TD_EXPORT CUresult cuGraphDestroy(CUgraph hGraph)
{
	struct td_graph *g;
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	res = CUDA_ERROR_INVALID_VALUE;
	td_lock();
	for (g = td_graphs; g; g = g->next)
		if ((CUgraph)g == hGraph && g->magic == TD_GRAPH_MAGIC && !g->dead) {
			g->dead = 1;
			res = CUDA_SUCCESS;
		}
	td_unlock();
	return res;
}

static CUresult capture_status(CUstream h, CUstreamCaptureStatus *st, cuuint64_t *id)
{
	struct td_ctx *c;
	struct td_stream *s;
	CUresult res;

	if (!st)
		return CUDA_ERROR_INVALID_VALUE;
	res = td_stream_resolve(h, &c, &s);
	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	*st = (CUstreamCaptureStatus)s->capture;
	if (id)
		*id = s->capture_id;
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
	return capture_status(hStream, captureStatus, NULL);
}

TD_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
	return capture_status(hStream, captureStatus, NULL);
}

static CUresult capture_info(CUstream h, CUstreamCaptureStatus *st, cuuint64_t *id_out, CUgraph *graph_out,
			     const CUgraphNode **deps_out, const CUgraphEdgeData **edges_out, size_t *n_out)
{
	cuuint64_t id = 0;
	CUresult res = capture_status(h, st, &id);

	if (res != CUDA_SUCCESS || *st == CU_STREAM_CAPTURE_STATUS_NONE)
		return res;
	if (id_out)
		*id_out = id;
	if (graph_out)
		*graph_out = NULL;
	if (deps_out)
		*deps_out = NULL;
	if (edges_out)
		*edges_out = NULL;
	if (n_out)
		*n_out = 0;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
					     cuuint64_t *id_out, CUgraph *graph_out,
					     const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
	return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
			    numDependencies_out);
}

TD_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
						  cuuint64_t *id_out, CUgraph *graph_out,
						  const CUgraphNode **dependencies_out, size_t *numDependencies_out)
{
	return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, NULL,
			    numDependencies_out);
}

TD_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
					     cuuint64_t *id_out, CUgraph *graph_out,
					     const CUgraphNode **dependencies_out, const CUgraphEdgeData **edgeData_out,
					     size_t *numDependencies_out)
{
	return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
			    numDependencies_out);
}

TD_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
						  cuuint64_t *id_out, CUgraph *graph_out,
						  const CUgraphNode **dependencies_out,
						  const CUgraphEdgeData **edgeData_out, size_t *numDependencies_out)
{
	return capture_info(hStream, captureStatus_out, id_out, graph_out, dependencies_out, edgeData_out,
			    numDependencies_out);
}
