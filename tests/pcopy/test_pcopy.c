/*
 * lc_pcopy (libcuda/pcopy.c): copies split over helper threads are the same
 * bytes as memcpy for every size and alignment, the helpers start as
 * VGPU_COPY_THREADS asks, and copies from several threads at once (one with
 * the helpers, the others plain) stay correct.  Run under TSan in CI.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pcopy.h"

#define BIG (9u << 20)

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
}

/* One copy of n bytes at the given offsets, checked with its surroundings. */
static void copy_checked(uint8_t *src, uint8_t *dst, size_t soff, size_t doff, size_t n, uint32_t seed)
{
	fill(src, BIG + 64, seed);
	memset(dst, 0xa5, BIG + 64);
	lc_pcopy(dst + doff, src + soff, n);
	assert_memory_equal(dst + doff, src + soff, n);
	if (doff)
		assert_int_equal(dst[doff - 1], 0xa5);
	assert_int_equal(dst[doff + n], 0xa5);
}

static void t_sizes(void **state)
{
	static const size_t sizes[] = {
		0, 1, 4096, (256u << 10) - 1, 256u << 10, (512u << 10) - 1, 512u << 10,
		(512u << 10) + 1, 1u << 20, (3u << 20) + 777, 8u << 20, BIG,
	};
	uint8_t *src = malloc(BIG + 64), *dst = malloc(BIG + 64);
	size_t i;

	(void)state;
	assert_non_null(src);
	assert_non_null(dst);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];

		copy_checked(src, dst, 0, 0, n, (uint32_t)i);
		if (n + 13 <= BIG)
			copy_checked(src, dst, 7, 13, n, (uint32_t)i + 100);
	}
	/* VGPU_COPY_THREADS=4 (meson.build): the caller and three helpers. */
	assert_int_equal(lc_pcopy_helpers(), 3);
	free(src);
	free(dst);
}

/* Many copies in a row: each job's parts are claimed afresh (generations alternate). */
static void t_many(void **state)
{
	uint8_t *src = malloc(BIG), *dst = malloc(BIG);
	int i;

	(void)state;
	assert_non_null(src);
	assert_non_null(dst);
	for (i = 0; i < 200; i++) {
		size_t n = (size_t)(512u << 10) + (size_t)i * 40961u % (BIG - (512u << 10));

		fill(src, n, (uint32_t)i);
		lc_pcopy(dst, src, n);
		assert_memory_equal(dst, src, n);
	}
	free(src);
	free(dst);
}

struct worker {
	pthread_t th;
	uint32_t seed;
	int bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	size_t n = 3u << 20;
	uint8_t *src = malloc(n), *dst = malloc(n);
	int i;

	if (!src || !dst) {
		w->bad = 1;
		goto out;
	}
	for (i = 0; i < 30; i++) {
		fill(src, n, w->seed + (uint32_t)i);
		lc_pcopy(dst, src, n);
		if (memcmp(dst, src, n)) {
			w->bad = 1;
			break;
		}
	}
out:
	free(src);
	free(dst);
	return NULL;
}

static void t_threads(void **state)
{
	struct worker w[4];
	int i;

	(void)state;
	for (i = 0; i < 4; i++) {
		w[i].seed = (uint32_t)i * 1000u;
		w[i].bad = 0;
		assert_int_equal(pthread_create(&w[i].th, NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(w[i].th, NULL);
		assert_int_equal(w[i].bad, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_sizes),
		cmocka_unit_test(t_many),
		cmocka_unit_test(t_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
