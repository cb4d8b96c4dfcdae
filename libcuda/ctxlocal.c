/*
 * CONTEXT_LOCAL_STORAGE_V0301: per-context data that client libraries
 * (every cudart copy) attach to a context under a key of theirs, with a
 * destructor that runs when the context's life ends.  Four words and no
 * size word: Register, Unregister, Get, NULL.
 *
 * Entries live here, in the guest: keys and data are addresses in this
 * process.  The list is short (one entry per cudart copy and context).
 */
#include <pthread.h>
#include <stdlib.h>

#include "vgpu/log.h"
#include "darkapi.h"

typedef void (*cls_dtor)(CUcontext ctx, void *key, void *data);

struct cls_entry {
	struct cls_entry *next;		/* newest first */
	CUcontext ctx;
	void *key;
	void *data;
	cls_dtor dtor;
};

static pthread_mutex_t cls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cls_entry *cls_head;
static void *cls_words[LC_ETBL_CLS_WORDS];

/* NULL means the calling thread's current context. */
static CUresult cls_resolve(CUcontext *ctx)
{
	CUresult res;

	if (*ctx)
		return CUDA_SUCCESS;
	res = cuCtxGetCurrent(ctx);
	if (res != CUDA_SUCCESS)
		return res;
	return *ctx ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

static struct cls_entry **cls_find_locked(CUcontext ctx, void *key)
{
	struct cls_entry **pp;

	for (pp = &cls_head; *pp; pp = &(*pp)->next)
		if ((*pp)->ctx == ctx && (*pp)->key == key)
			return pp;
	return NULL;
}

/* Slot 0.  Registering a key again replaces its data and destructor. */
static CUresult cls_register(CUcontext ctx, void *key, void *data, cls_dtor dtor)
{
	struct cls_entry **pp, *e;
	CUresult res = cls_resolve(&ctx);

	if (res != CUDA_SUCCESS)
		return res;
	pthread_mutex_lock(&cls_lock);
	pp = cls_find_locked(ctx, key);
	if (pp) {
		(*pp)->data = data;
		(*pp)->dtor = dtor;
		pthread_mutex_unlock(&cls_lock);
		return CUDA_SUCCESS;
	}
	e = malloc(sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&cls_lock);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	e->ctx = ctx;
	e->key = key;
	e->data = data;
	e->dtor = dtor;
	e->next = cls_head;
	cls_head = e;
	pthread_mutex_unlock(&cls_lock);
	return CUDA_SUCCESS;
}

/* Slot 1: forget a key without running its destructor. */
static CUresult cls_unregister(CUcontext ctx, void *key)
{
	struct cls_entry **pp, *e = NULL;
	CUresult res = cls_resolve(&ctx);

	if (res != CUDA_SUCCESS)
		return res;
	pthread_mutex_lock(&cls_lock);
	pp = cls_find_locked(ctx, key);
	if (pp) {
		e = *pp;
		*pp = e->next;
	}
	pthread_mutex_unlock(&cls_lock);
	if (!e)
		return CUDA_ERROR_INVALID_HANDLE;
	free(e);
	return CUDA_SUCCESS;
}

/* Slot 2: any error means "nothing stored", which cudart takes as "create it". */
static CUresult cls_get(void **data, CUcontext ctx, void *key)
{
	struct cls_entry **pp;
	CUresult res;

	if (!data)
		return CUDA_ERROR_INVALID_VALUE;
	res = cls_resolve(&ctx);
	if (res != CUDA_SUCCESS)
		return res;
	pthread_mutex_lock(&cls_lock);
	pp = cls_find_locked(ctx, key);
	if (pp)
		*data = (*pp)->data;
	pthread_mutex_unlock(&cls_lock);
	return pp ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

void lc_cls_context_destroyed(CUcontext ctx)
{
	struct cls_entry **pp, *e, *mine = NULL, **tail = &mine;

	/*
	 * Detach the context's entries first and run the destructors without
	 * the lock: they are the client's code and may call back in.  The list
	 * is newest first, so they run in reverse order of registration.
	 */
	pthread_mutex_lock(&cls_lock);
	pp = &cls_head;
	while ((e = *pp)) {
		if (e->ctx != ctx) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		e->next = NULL;
		*tail = e;
		tail = &e->next;
	}
	pthread_mutex_unlock(&cls_lock);
	while ((e = mine)) {
		mine = e->next;
		if (e->dtor)
			e->dtor(ctx, e->key, e->data);
		free(e);
	}
	lc_tools_context_destroyed(ctx);
}

static void cls_build(void)
{
	lc_etbl_fill(LC_ETBL_CLS, cls_words, LC_ETBL_CLS_WORDS, 0);
	cls_words[0] = (void *)cls_register;
	cls_words[1] = (void *)cls_unregister;
	cls_words[2] = (void *)cls_get;
	cls_words[3] = NULL;
}

const void *lc_etbl_cls(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, cls_build);
	return cls_words;
}
