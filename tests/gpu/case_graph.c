/* SPDX-License-Identifier: MIT */
/*
 * Stream capture and graphs (issue 3, item 5): capture a memset, a kernel,
 * a host function and a copy into a graph; instantiate; launch it twice
 * (the host function runs on every replay, in the guest); capture info and
 * status during capture; update the executable graph from a second capture.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gcase.h"

#define GC_N 4096

/* The form cudart calls (cuda.h names only _v3 now). */
CUresult CUDAAPI cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus_out,
					   cuuint64_t *id_out, CUgraph *graph_out,
					   const CUgraphNode **dependencies_out, size_t *numDependencies_out);

/* "untouched" when v still holds the sentinel the caller put there, else 0 or "other". */
static const char *outval(uint64_t v, uint64_t sentinel)
{
	return v == sentinel ? "untouched" : v == 0 ? "0" : "other";
}

/*
 * Capture info of a stream that is not capturing, every output preset to a
 * sentinel: what the driver writes there (vgpu answers this in the guest
 * when no capture is active in the process; the native leg is the
 * reference).
 */
static void idle_capture_info(const char *key, CUstream s, int v2)
{
	CUstreamCaptureStatus st = (CUstreamCaptureStatus)77;
	cuuint64_t id = 0x5151;
	CUgraph g = (CUgraph)(uintptr_t)0x7070;
	const CUgraphNode *deps = (const CUgraphNode *)(uintptr_t)0x9090;
	const CUgraphEdgeData *edges = (const CUgraphEdgeData *)(uintptr_t)0xa0a0;
	size_t n = 1234;
	char k[96];
	CUresult r;

	if (v2)
		r = cuStreamGetCaptureInfo_v2(s, &st, &id, &g, &deps, &n);
	else
		r = cuStreamGetCaptureInfo(s, &st, &id, &g, &deps, &edges, &n);
	gc_expect(key, r, CUDA_SUCCESS);
	snprintf(k, sizeof(k), "%s.status", key);
	gc_result(k, "%d", (int)st);
	snprintf(k, sizeof(k), "%s.id", key);
	gc_result(k, "%s", outval(id, 0x5151));
	snprintf(k, sizeof(k), "%s.graph", key);
	gc_result(k, "%s", outval((uint64_t)(uintptr_t)g, 0x7070));
	snprintf(k, sizeof(k), "%s.deps", key);
	gc_result(k, "%s", outval((uint64_t)(uintptr_t)deps, 0x9090));
	if (!v2) {
		snprintf(k, sizeof(k), "%s.edges", key);
		gc_result(k, "%s", outval((uint64_t)(uintptr_t)edges, 0xa0a0));
	}
	snprintf(k, sizeof(k), "%s.n", key);
	gc_result(k, "%s", n == 1234 ? "untouched" : n == 0 ? "0" : "other");
	/* Only the status is required: every other output may be NULL. */
	st = (CUstreamCaptureStatus)77;
	snprintf(k, sizeof(k), "%s.status_only", key);
	gc_expect(k, v2 ? cuStreamGetCaptureInfo_v2(s, &st, NULL, NULL, NULL, NULL) :
			  cuStreamGetCaptureInfo(s, &st, NULL, NULL, NULL, NULL, NULL), CUDA_SUCCESS);
	snprintf(k, sizeof(k), "%s.status_only.status", key);
	gc_result(k, "%d", (int)st);
	snprintf(k, sizeof(k), "%s.no_status", key);
	gc_expect_err(k, v2 ? cuStreamGetCaptureInfo_v2(s, NULL, &id, &g, &deps, &n) :
			      cuStreamGetCaptureInfo(s, NULL, &id, &g, &deps, &edges, &n), CUDA_ERROR_INVALID_VALUE);
}

static void CUDA_CB count_replay(void *p)
{
	(*(int *)p)++;
}

int main(void)
{
	CUdevice dev;
	CUmodule mod;
	CUfunction fill, scale;
	CUstream s;
	CUgraph g = NULL, g2 = NULL;
	CUgraphExec ge = NULL;
	CUdeviceptr d = 0;
	CUstreamCaptureStatus st;
	cuuint64_t id = 0;
	CUgraph cg = NULL;
	const CUgraphNode *deps = NULL;
	const CUgraphEdgeData *edges = NULL;
	size_t ndeps = 0;
	CUgraphExecUpdateResultInfo info;
	unsigned *h = NULL, v = 7;
	int n = GC_N, replays = 0, i, bad = 0;
	float two = 2.0f;
	void *pfill[3], *pscale[3];

	gc_begin("graph");
	gc_setup(&dev);
	mod = gc_module("ptx");
	fill = gc_function(mod, "vg_fill");
	scale = gc_function(mod, "vg_scale");
	/* Graphs copy to pinned memory: the copy node keeps the address for every replay. */
	gc_must("alloc_host", cuMemAllocHost((void **)&h, GC_N * sizeof(unsigned)));
	gc_must("stream_create", cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
	gc_must("alloc", cuMemAlloc(&d, GC_N * sizeof(unsigned)));
	pfill[0] = &d;
	pfill[1] = &v;
	pfill[2] = &n;

	idle_capture_info("idle_info.before", s, 0);
	idle_capture_info("idle_info_v2.before", s, 1);
	idle_capture_info("idle_info.null_stream", NULL, 0);
	gc_must("begin_capture", cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
	gc_expect("is_capturing", cuStreamIsCapturing(s, &st), CUDA_SUCCESS);
	gc_result("is_capturing.status", "%d", (int)st);
	gc_must("memset.captured", cuMemsetD32Async(d, 0, GC_N, s));
	gc_must("launch.captured", cuLaunchKernel(fill, gc_blocks(GC_N), 1, 1, 256, 1, 1, 0, s, pfill, NULL));
	gc_must("host_func.captured", cuLaunchHostFunc(s, count_replay, &replays));
	gc_expect("capture_info", cuStreamGetCaptureInfo(s, &st, &id, &cg, &deps, &edges, &ndeps), CUDA_SUCCESS);
	gc_result("capture_info.status", "%d", (int)st);
	gc_result("capture_info.deps", "%zu", ndeps);
	gc_check("capture_info.graph", cg != NULL && id != 0);
	gc_must("dtoh.captured", cuMemcpyDtoHAsync(h, d, GC_N * sizeof(unsigned), s));
	gc_must("end_capture", cuStreamEndCapture(s, &g));
	gc_check("host_func.not_yet_run", replays == 0);
	idle_capture_info("idle_info.after", s, 0);
	idle_capture_info("idle_info_v2.after", s, 1);

	gc_must("instantiate", cuGraphInstantiateWithFlags(&ge, g, 0));
	for (i = 0; i < 2; i++) {
		gc_must("graph_launch", cuGraphLaunch(ge, s));
		gc_must("stream_synchronize", cuStreamSynchronize(s));
	}
	gc_result("host_func.replays", "%d", replays);
	for (i = 0; i < GC_N; i++)
		bad += h[i] != v;
	gc_check("graph.values", bad == 0);

	/* A second capture with another value: the executable graph is updated. */
	v = 9;
	gc_must("begin_capture.2", cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
	gc_must("memset.captured.2", cuMemsetD32Async(d, 0, GC_N, s));
	gc_must("launch.captured.2", cuLaunchKernel(fill, gc_blocks(GC_N), 1, 1, 256, 1, 1, 0, s, pfill, NULL));
	gc_must("host_func.captured.2", cuLaunchHostFunc(s, count_replay, &replays));
	gc_must("dtoh.captured.2", cuMemcpyDtoHAsync(h, d, GC_N * sizeof(unsigned), s));
	gc_must("end_capture.2", cuStreamEndCapture(s, &g2));
	gc_expect("exec_update", cuGraphExecUpdate(ge, g2, &info), CUDA_SUCCESS);
	gc_result("exec_update.result", "%d", (int)info.result);
	gc_must("graph_launch.updated", cuGraphLaunch(ge, s));
	gc_must("stream_synchronize.updated", cuStreamSynchronize(s));
	bad = 0;
	for (i = 0; i < GC_N; i++)
		bad += h[i] != 9;
	gc_check("graph.updated.values", bad == 0);
	gc_result("host_func.replays.after_update", "%d", replays);

	/* The scale kernel on a float view, outside any graph, still works. */
	pscale[0] = &d;
	pscale[1] = &two;
	pscale[2] = &n;
	gc_must("launch.plain", cuLaunchKernel(scale, gc_blocks(GC_N), 1, 1, 256, 1, 1, 0, s, pscale, NULL));
	gc_must("stream_synchronize.plain", cuStreamSynchronize(s));

	gc_expect("exec_destroy", cuGraphExecDestroy(ge), CUDA_SUCCESS);
	gc_expect("graph_destroy", cuGraphDestroy(g), CUDA_SUCCESS);
	gc_expect("graph_destroy.2", cuGraphDestroy(g2), CUDA_SUCCESS);
	gc_expect("free", cuMemFree(d), CUDA_SUCCESS);
	gc_expect("stream_destroy", cuStreamDestroy(s), CUDA_SUCCESS);
	gc_expect("free_host", cuMemFreeHost(h), CUDA_SUCCESS);
	return gc_end();
}
