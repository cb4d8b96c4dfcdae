/* SPDX-License-Identifier: MIT */
/*
 * The cudart probe: an ordinary CUDA runtime program (built twice, with the
 * default static cudart and with -cudart shared), so the suite proves that
 * NVIDIA's runtime initialises and works on top of vgpu's libcuda.so.1:
 * devices, memory, copies, a kernel launched with <<<>>>, streams, events,
 * a host function, and a device reset.
 */
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "gcase.h"
}

extern "C" __global__ void vg_vadd(const float *a, const float *b, float *c, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;

	if (i < n)
		c[i] = a[i] + b[i];
}

static void rt(const char *key, cudaError_t e)
{
	gc_result(key, "%d", (int)e);
	if (e != cudaSuccess)
		gc_fail(key, "%s", cudaGetErrorName(e));
}

static void CUDART_CB host_fn(void *p)
{
	*(int *)p += 1;
}

int main(void)
{
	const int n = 1 << 16;
	float *ha = (float *)malloc(n * sizeof(float)), *hb = (float *)malloc(n * sizeof(float));
	float *hc = (float *)malloc(n * sizeof(float)), *da, *db, *dc, ms = 0;
	cudaStream_t s;
	cudaEvent_t e0, e1;
	int count = -1, i, bad = 0, calls = 0;

	gc_begin("cudart");
	rt("get_device_count", cudaGetDeviceCount(&count));
	gc_result("device_count.positive", "%s", count > 0 ? "yes" : "no");
	rt("set_device", cudaSetDevice(0));
	rt("malloc.a", cudaMalloc((void **)&da, n * sizeof(float)));
	rt("malloc.b", cudaMalloc((void **)&db, n * sizeof(float)));
	rt("malloc.c", cudaMalloc((void **)&dc, n * sizeof(float)));
	for (i = 0; i < n; i++) {
		ha[i] = (float)i;
		hb[i] = (float)(3 * i);
	}
	rt("memcpy.htod.a", cudaMemcpy(da, ha, n * sizeof(float), cudaMemcpyHostToDevice));
	rt("memcpy.htod.b", cudaMemcpy(db, hb, n * sizeof(float), cudaMemcpyHostToDevice));
	vg_vadd<<<(n + 255) / 256, 256>>>(da, db, dc, n);
	rt("launch", cudaGetLastError());
	rt("device_synchronize", cudaDeviceSynchronize());
	rt("memcpy.dtoh.c", cudaMemcpy(hc, dc, n * sizeof(float), cudaMemcpyDeviceToHost));
	for (i = 0; i < n; i++)
		bad += hc[i] != ha[i] + hb[i];
	gc_check("vadd.values", bad == 0);

	rt("stream_create", cudaStreamCreate(&s));
	rt("event_create.0", cudaEventCreate(&e0));
	rt("event_create.1", cudaEventCreate(&e1));
	rt("event_record.0", cudaEventRecord(e0, s));
	rt("memset_async", cudaMemsetAsync(dc, 0, n * sizeof(float), s));
	vg_vadd<<<(n + 255) / 256, 256, 0, s>>>(dc, da, dc, n);
	rt("launch.stream", cudaGetLastError());
	rt("launch_host_func", cudaLaunchHostFunc(s, host_fn, &calls));
	rt("event_record.1", cudaEventRecord(e1, s));
	rt("stream_synchronize", cudaStreamSynchronize(s));
	rt("event_elapsed", cudaEventElapsedTime(&ms, e0, e1));
	gc_check("host_func.ran", calls == 1);
	rt("memcpy_async.dtoh", cudaMemcpyAsync(hc, dc, n * sizeof(float), cudaMemcpyDeviceToHost, s));
	rt("stream_synchronize.2", cudaStreamSynchronize(s));
	bad = 0;
	for (i = 0; i < n; i++)
		bad += hc[i] != ha[i];
	gc_check("stream.values", bad == 0);
	rt("event_destroy.0", cudaEventDestroy(e0));
	rt("event_destroy.1", cudaEventDestroy(e1));
	rt("stream_destroy", cudaStreamDestroy(s));
	rt("free.a", cudaFree(da));
	rt("free.b", cudaFree(db));
	rt("free.c", cudaFree(dc));
	rt("device_reset", cudaDeviceReset());
	free(ha);
	free(hb);
	free(hc);
	return gc_end();
}
