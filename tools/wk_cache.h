/*
 * The worker's module image cache (tools/wk_cache.c): files named by the
 * SHA-256 of their bytes in a directory every worker of a daemon shares.
 */
#ifndef VGPU_WK_CACHE_H
#define VGPU_WK_CACHE_H

#include <stdint.h>

#include "tp.h"
#include "vgpu/log.h"
#include "vgpu/ops.h"

/* The directory's budget unless vgpud says otherwise. */
#define WK_CACHE_MAX_DEFAULT (4ull << 30)

struct wk_cache_stats {
	uint64_t hits, misses, stored, evicted;
	uint64_t inline_bytes;		/* image bytes clients sent */
};
extern struct wk_cache_stats wk_cache_stats;

/* 1: the cache is on; 0: none asked for; < 0: the directory is unusable (logged). */
int wk_cache_open(const char *dir, uint64_t max_bytes);
int wk_cache_enabled(void);
/*
 * The bytes named hash if the cache has exactly len of them: a read-only
 * mapping (*mapped = 1, munmap it) or an aligned copy with zero bytes after
 * it (free it); NULL when absent.
 */
void *wk_cache_get(const uint8_t hash[TP_SHA256_LEN], uint32_t len, int *mapped);
/* Files bytes a client sent (VG_IMG_CACHE_MIN or more) under their hash. */
void wk_cache_put(const void *p, uint32_t len);

#endif
