/* SPDX-License-Identifier: MIT */
/*
 * Events: an event holds the fence of the operation that recorded it
 * (stream.c), so querying, waiting and timing are questions about that
 * fence.  An event never recorded is complete.
 */
#include <stdlib.h>

#include "td.h"

/* A live event: one of a live context's. */
int td_event_live_locked(const struct td_event *e)
{
	const struct td_ctx *c;
	const struct td_event *x;

	for (c = td.ctxs; c; c = c->next)
		for (x = c->events; x; x = x->next)
			if (x == e)
				return 1;
	return 0;
}

CUresult td_event_get(CUevent h, struct td_event **out)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (!h || !td_event_live_locked((struct td_event *)h))
		res = CUDA_ERROR_INVALID_HANDLE;
	td_unlock();
	if (res == CUDA_SUCCESS)
		*out = (struct td_event *)h;
	return res;
}

/* Out of its context's list already; kept, never freed (td.h). */
void td_event_bury_locked(struct td_event *e)
{
	td_fence_put_locked(e->fence);
	e->fence = NULL;
	e->magic = 0;
	e->next = td.dead_events;
	td.dead_events = e;
	td.live_events--;
}

TD_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
	struct td_ctx *c;
	struct td_event *e;
	CUresult res = td_ctx_get(&c);
	const unsigned all = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;

	if (res != CUDA_SUCCESS)
		return res;
	if (!phEvent || (Flags & ~all))
		return CUDA_ERROR_INVALID_VALUE;
	/* Interprocess events cannot carry timing. */
	if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING))
		return CUDA_ERROR_INVALID_VALUE;
	e = calloc(1, sizeof(*e));
	if (!e)
		return CUDA_ERROR_OUT_OF_MEMORY;
	e->magic = TD_MAGIC_EVENT;
	e->ctx = c;
	e->flags = Flags;
	td_lock();
	e->next = c->events;
	c->events = e;
	td.live_events++;
	td_unlock();
	*phEvent = (CUevent)e;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags)
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
	if (flags & ~(unsigned)CU_EVENT_RECORD_EXTERNAL)
		return CUDA_ERROR_INVALID_VALUE;
	if (e->ctx != c)
		return CUDA_ERROR_INVALID_HANDLE;
	op = td_op_new(NULL);
	if (!op)
		return CUDA_ERROR_OUT_OF_MEMORY;
	res = td_submit(s, op, NULL, 0, &f);
	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (td_event_live_locked(e)) {
		td_fence_put_locked(e->fence);
		e->fence = f;
	} else {
		td_fence_put_locked(f);
	}
	td_unlock();
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
	return cuEventRecordWithFlags(hEvent, hStream, 0);
}

TD_EXPORT CUresult cuEventQuery(CUevent hEvent)
{
	struct td_event *e;
	CUresult res = td_event_get(hEvent, &e);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (e->fence && !e->fence->done)
		res = CUDA_ERROR_NOT_READY;
	else
		res = e->ctx->sticky;
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuEventSynchronize(CUevent hEvent)
{
	struct td_event *e;
	struct td_fence *f;
	CUresult res = td_event_get(hEvent, &e);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	f = e->fence;
	if (f) {
		f->refs++;
		td_fence_wait_locked(f);
		td_fence_put_locked(f);
	}
	res = e->ctx->sticky;
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
	struct td_event *a, *b;
	CUresult res = td_event_get(hStart, &a);

	if (res == CUDA_SUCCESS)
		res = td_event_get(hEnd, &b);
	if (res != CUDA_SUCCESS)
		return res;
	if (!pMilliseconds)
		return CUDA_ERROR_INVALID_VALUE;
	td_lock();
	if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING || !a->fence || !b->fence)
		res = CUDA_ERROR_INVALID_HANDLE;
	else if (!a->fence->done || !b->fence->done)
		res = CUDA_ERROR_NOT_READY;
	else
		*pMilliseconds = (float)(((double)b->fence->ns - (double)a->fence->ns) / 1e6);
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
	return cuEventElapsedTime_v2(pMilliseconds, hStart, hEnd);
}

TD_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent)
{
	struct td_event *e, **pp;
	CUresult res = td_event_get(hEvent, &e);

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (td_event_live_locked(e)) {
		for (pp = &e->ctx->events; *pp; pp = &(*pp)->next) {
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		}
		td_event_bury_locked(e);
	} else {
		res = CUDA_ERROR_INVALID_HANDLE;
	}
	td_unlock();
	return res;
}


/* The unversioned name: same arguments, same behaviour here. */
TD_EXPORT CUresult cuEventDestroy(CUevent hEvent)
{
	return cuEventDestroy_v2(hEvent);
}
