/* SPDX-License-Identifier: MIT */
/*
 * Process state of the CPU test driver: cuInit, the fork rule, the version,
 * and the test hooks (vgtd_*, the exit report).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "td.h"

struct td_state td = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
	.next_id = 0x100,
};

uint64_t td_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The fork rule.  A child of a process that initialised the driver cannot
 * use it: NVIDIA's driver answers every call there, cuInit included, with
 * code 3 (CUDA_ERROR_NOT_INITIALIZED, "initialization error"), as reported
 * in triton-lang/triton#10443 (cuInit in a forked child returns rc=3, and
 * cuDeviceGetCount too) and inducer/pycuda#137 ("cuInit failed:
 * initialization error").  Calls before cuInit get the same code.
 */
CUresult td_check_init(void)
{
	if (!td.inited || getpid() != td.pid)
		return CUDA_ERROR_NOT_INITIALIZED;
	return CUDA_SUCCESS;
}

/*
 * "Device memory" lives in one reservation of address space, a window of
 * TD_DEV_MEM bytes per device, made accessible page by page as allocations
 * are made.  Device pointers are therefore never addresses of the host
 * heap, and an address is device memory exactly when it is in a window.
 */
static int td_windows_reserve(void)
{
	char *p;
	int i;

	p = mmap(NULL, TD_DEV_MEM * TD_DEV_COUNT, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	for (i = 0; i < TD_DEV_COUNT; i++)
		td.dev[i].window = p + (uint64_t)i * TD_DEV_MEM;
	return 0;
}

TD_EXPORT CUresult cuInit(unsigned int Flags)
{
	CUresult res = CUDA_SUCCESS;

	if (Flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	/* A forked child must not take a lock another thread held at fork. */
	if (td.inited && getpid() != td.pid)
		return CUDA_ERROR_NOT_INITIALIZED;
	td_lock();
	if (td.inited && getpid() != td.pid) {
		res = CUDA_ERROR_NOT_INITIALIZED;
	} else if (!td.inited) {
		/* A slow driver start, as NVIDIA's takes on a GPU (tests of the warm worker). */
		const char *d = getenv("VGPU_TESTDRV_INIT_DELAY_MS");

		if (d && *d)
			usleep((useconds_t)(strtoul(d, NULL, 10) % 10000) * 1000);
		d = getenv("VGPU_TESTDRV_NULL_LAUNCH");
		td.null_launch = d && !strcmp(d, "1");
		if (td_windows_reserve() < 0) {
			res = CUDA_ERROR_OUT_OF_MEMORY;
		} else {
			td.pid = getpid();
			td.inited = 1;
		}
	}
	td_unlock();
	return res;
}

/* The one call that needs no cuInit, as with NVIDIA's driver. */
TD_EXPORT CUresult cuDriverGetVersion(int *driverVersion)
{
	if (!driverVersion)
		return CUDA_ERROR_INVALID_VALUE;
	*driverVersion = TD_DRIVER_VERSION;
	return CUDA_SUCCESS;
}

/* ---- test hooks -------------------------------------------------------- */

TD_EXPORT int vgtd_live_allocations(void);
TD_EXPORT int vgtd_live_objects(void);

TD_EXPORT int vgtd_live_allocations(void)
{
	struct td_alloc *a;
	int n = 0;

	td_lock();
	for (a = td.allocs; a; a = a->next)
		n++;
	td_unlock();
	return n;
}

/* Contexts (primary ones while active), streams, events, modules, libraries. */
TD_EXPORT int vgtd_live_objects(void)
{
	int n;

	td_lock();
	n = td.live_ctxs + td.live_streams + td.live_events + td.live_modules +
	    td.live_libraries;
	td_unlock();
	return n;
}

/*
 * VGPU_TESTDRV_REPORT=DIR: what was still alive when the process ended, so
 * that a test can check a worker freed everything its client left behind.
 */
__attribute__((destructor)) static void td_report(void)
{
	const char *dir = getenv("VGPU_TESTDRV_REPORT");
	char path[4096];
	struct td_alloc *a;
	int nalloc = 0;
	FILE *f;

	if (!dir || !*dir)
		return;
	/* A forked child holds a copy of the parent's state (and maybe its lock). */
	if (td.inited && getpid() != td.pid)
		return;
	snprintf(path, sizeof(path), "%s/testdrv-%d.txt", dir, (int)getpid());
	f = fopen(path, "we");
	if (!f)
		return;
	td_lock();
	for (a = td.allocs; a; a = a->next)
		nalloc++;
	fprintf(f, "live_allocations %d\nlive_contexts %d\nlive_streams %d\n"
		"live_events %d\nlive_modules %d\n", nalloc, td.live_ctxs,
		td.live_streams, td.live_events, td.live_modules);
	td_unlock();
	fclose(f);
}
