/*
 * vgpu-bench: the same workloads natively and through vgpu, as separate
 * processes in one invocation, with ratios from that one run.
 *
 *   vgpu-bench --native PATH --vgpu PATH [--server ADDRESS] [--transport ADDRESS]... [--reps N]
 *              [--rounds R] [--size-mib N] [--settle-ms N]
 *              [--rt PROGRAM] [--python PYTHON] [--llama DIR --model GGUF [--llama-drive PROGRAM]]
 *
 * PATH is a libcuda.so.1 (NVIDIA's, ours).  Legs alternate, native then
 * vgpu, R rounds (default 5), so a drift of the machine touches both.  Each
 * leg is a process that prints one line per workload, "name median p10 p90
 * unit": this program again with --leg LIB (driver-API workloads, LIB
 * dlopen'ed), the runtime-API program (--rt, built with nvcc), PyTorch (when
 * `import torch` works and sees a GPU natively) and llama.cpp (with --llama:
 * tests/gpu/llama's llama-drive, 64 prompt tokens and 128 decoded, its
 * RESULT line read; the CUDA runtime and cuBLAS must be in LD_LIBRARY_PATH).
 * The legs of the other programs run with LIB's directory first in
 * LD_LIBRARY_PATH, and VGPU_SERVER set for the vgpu leg only.  A per-call
 * figure is (N calls + the final synchronisation) / N unless its name says
 * otherwise.  The table gives the median of the rounds' medians and the
 * lowest p10 / highest p90 over all rounds.  --transport ADDRESS (up to
 * three): another way to the same daemon (tcp:, vsock-uds:, ivshmem:...);
 * the driver-API leg runs over each, and a second table sets round trips
 * and bandwidth over --server and each transport beside native.
 *
 * Every leg waits --settle-ms (default 1000) after its set-up and before
 * its first timed figure, natively as through vgpu.  A daemon starts its
 * next warm worker (driver start, primary context) when the client that
 * took the last one ends, that is as the next leg starts, and the worker of
 * the leg before tears its context down then too: for a few hundred
 * milliseconds the driver and the GPU are shared with that work, and a
 * figure taken then is not vgpu's own.  Before the launch figures each leg
 * also launches untimed for LAUNCH_WARM_MS, so that both legs time their
 * launches at the GPU clocks that launching brings.
 */
#include <dlfcn.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/cuda_types.h"

struct drv {
	CUresult (*Init)(unsigned int);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*PrimaryCtxRetain)(CUcontext *, CUdevice);
	CUresult (*CtxSetCurrent)(CUcontext);
	CUresult (*CtxGetCurrent)(CUcontext *);
	CUresult (*CtxSynchronize)(void);
	CUresult (*CtxGetDevice)(CUdevice *);
	CUresult (*DeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*MemGetInfo)(size_t *, size_t *);
	CUresult (*ModuleLoadData)(CUmodule *, const void *);
	CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
	CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
				 unsigned, CUstream, void **, void **);
	CUresult (*MemAlloc)(CUdeviceptr *, size_t);
	CUresult (*MemFree)(CUdeviceptr);
	CUresult (*MemAllocHost)(void **, size_t);
	CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
	CUresult (*MemcpyDtoH)(void *, CUdeviceptr, size_t);
	CUresult (*StreamCreate)(CUstream *, unsigned int);
	CUresult (*StreamSynchronize)(CUstream);
	/* Optional: graph replay is left out where these are missing or fail. */
	CUresult (*StreamBeginCapture)(CUstream, CUstreamCaptureMode);
	CUresult (*StreamEndCapture)(CUstream, CUgraph *);
	CUresult (*GraphInstantiate)(CUgraphExec *, CUgraph, unsigned long long);
	CUresult (*GraphLaunch)(CUgraphExec, CUstream);
};

/* An empty kernel; its name and parameter are the CPU test driver's vg_sleep (0 us), so the tool runs there too. */
static const char empty_ptx[] =
	".version 7.0\n.target sm_50\n.address_size 64\n"
	".visible .entry vg_sleep(.param .u32 p)\n{\n\tret;\n}\n";

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define MAXREPS 64
#define MAXROWS 64
#define MAXROUNDS 9
#define MAXSERVERS 4

static void report(const char *name, double *v, int n, const char *unit)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%s %.3f %.3f %.3f %s\n", name, v[n / 2], v[n / 10], v[n - 1 - n / 10], unit);
	fflush(stdout);
}

#define SYM(field, name) \
	do { \
		*(void **)&d.field = dlsym(h, name); \
		if (!d.field) { \
			fprintf(stderr, "vgpu-bench: %s lacks %s\n", lib, name); \
			return 1; \
		} \
	} while (0)
#define SYM_OPT(field, name) (*(void **)&d.field = dlsym(h, name))

/* Per-call time of n calls of `call` plus the final `sync`, reps times. */
#define PER_CALL(name, n_, call, sync) \
	do { \
		for (r = 0; r < reps; r++) { \
			double t0 = now_us(); \
			for (i = 0; i < (n_); i++) \
				call; \
			sync; \
			v[r] = (now_us() - t0) / (n_); \
		} \
		report(name, v, reps, "us/call"); \
	} while (0)

#define BANDWIDTH(name, call) \
	do { \
		for (r = 0; r < reps; r++) { \
			double t0 = now_us(); \
			call; \
			v[r] = (double)bytes / (now_us() - t0) / 1e3; \
		} \
		report(name, v, reps, "GB/s"); \
	} while (0)

/* Ten empty launches captured once, the graph replayed. */
static void graph_replay(struct drv *d, CUfunction fn, void **params, int reps)
{
	CUstream s;
	CUgraph g;
	CUgraphExec ge;
	double v[MAXREPS];
	int r, i;

	if (!d->StreamBeginCapture || !d->StreamEndCapture || !d->GraphInstantiate || !d->GraphLaunch ||
	    d->StreamCreate(&s, CU_STREAM_NON_BLOCKING))
		return;
	if (d->StreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL))
		return;
	for (i = 0; i < 10; i++)
		d->LaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
	if (d->StreamEndCapture(s, &g) || d->GraphInstantiate(&ge, g, 0))
		return;
	for (r = 0; r < reps; r++) {
		double t0 = now_us();

		for (i = 0; i < 500; i++)
			d->GraphLaunch(ge, s);
		d->StreamSynchronize(s);
		v[r] = (now_us() - t0) / 500;
	}
	report("graph_replay_10_kernels", v, reps, "us/call");
}

#define LAUNCH_WARM_MS 300

static void settle(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int leg(const char *lib, int reps, unsigned int mib, unsigned int settle_ms)
{
	struct drv d;
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	CUdevice dev;
	CUcontext ctx, cur;
	CUmodule mod;
	CUfunction fn;
	CUdeviceptr dp, big, tmp;
	void *pinned;
	char *pageable;
	double v[MAXREPS];
	size_t bytes = (size_t)mib << 20, fr, tot;
	char nm[64];
	double warm0;
	int r, i, x;

	if (!h) {
		fprintf(stderr, "vgpu-bench: %s\n", dlerror());
		return 1;
	}
	SYM(Init, "cuInit");
	SYM(DeviceGet, "cuDeviceGet");
	SYM(PrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
	SYM(CtxSetCurrent, "cuCtxSetCurrent");
	SYM(CtxGetCurrent, "cuCtxGetCurrent");
	SYM(CtxSynchronize, "cuCtxSynchronize");
	SYM(CtxGetDevice, "cuCtxGetDevice");
	SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
	SYM(MemGetInfo, "cuMemGetInfo_v2");
	SYM(ModuleLoadData, "cuModuleLoadData");
	SYM(ModuleGetFunction, "cuModuleGetFunction");
	SYM(LaunchKernel, "cuLaunchKernel");
	SYM(MemAlloc, "cuMemAlloc_v2");
	SYM(MemFree, "cuMemFree_v2");
	SYM(MemAllocHost, "cuMemAllocHost_v2");
	SYM(MemcpyHtoD, "cuMemcpyHtoD_v2");
	SYM(MemcpyDtoH, "cuMemcpyDtoH_v2");
	SYM(StreamCreate, "cuStreamCreate");
	SYM(StreamSynchronize, "cuStreamSynchronize");
	SYM_OPT(StreamBeginCapture, "cuStreamBeginCapture_v2");
	SYM_OPT(StreamEndCapture, "cuStreamEndCapture");
	SYM_OPT(GraphInstantiate, "cuGraphInstantiateWithFlags");
	SYM_OPT(GraphLaunch, "cuGraphLaunch");
	if (d.Init(0) || d.DeviceGet(&dev, 0) || d.PrimaryCtxRetain(&ctx, dev) || d.CtxSetCurrent(ctx) ||
	    d.ModuleLoadData(&mod, empty_ptx) || d.ModuleGetFunction(&fn, mod, "vg_sleep") ||
	    d.MemAlloc(&dp, 4096) || d.MemAlloc(&big, bytes) || d.MemAllocHost(&pinned, bytes)) {
		fprintf(stderr, "vgpu-bench: setup failed on %s\n", lib);
		return 1;
	}
	pageable = malloc(bytes);
	if (!pageable)
		return 1;
	memset(pageable, 1, bytes);
	memset(pinned, 1, bytes);
	unsigned int zero = 0;
	void *params[] = { &zero };

	settle(settle_ms);

	/* Answered in the guest: no synchronisation to add. */
	PER_CALL("ctx_get_current", 20000, d.CtxGetCurrent(&cur), (void)0);
	PER_CALL("ctx_get_device", 20000, d.CtxGetDevice(&dev), (void)0);
	PER_CALL("device_get_attribute", 20000,
		 d.DeviceGetAttribute(&x, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev), (void)0);
	/* Round trips. */
	PER_CALL("mem_get_info", 2000, d.MemGetInfo(&fr, &tot), (void)0);
	/* Through vgpu answered in the guest after the first (nothing sent since): not a round trip. */
	PER_CALL("stream_synchronize_idle", 2000, d.StreamSynchronize(NULL), (void)0);
	PER_CALL("memcpy_htod_4B", 2000, d.MemcpyHtoD(dp, &x, sizeof(x)), (void)0);
	PER_CALL("memcpy_dtoh_4B", 2000, d.MemcpyDtoH(&x, dp, sizeof(x)), (void)0);
	PER_CALL("alloc_free_1MiB", 1000, (d.MemAlloc(&tmp, 1u << 20), d.MemFree(tmp)), (void)0);
	/*
	 * Launches.  The GPU idled through the figures above and its clocks
	 * fell: launch untimed for LAUNCH_WARM_MS first, so that each leg
	 * times its launches at the clocks that launching brings, not while
	 * they climb (leg to leg, native too, launches took 2.9 or 4.3 us on
	 * the H100 machine without this; tests/gpu/RESULTS.md, run 16).
	 */
	for (warm0 = now_us(); now_us() - warm0 < LAUNCH_WARM_MS * 1000.0;) {
		for (i = 0; i < 100; i++)
			d.LaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL);
		d.CtxSynchronize();	/* what is queued is what the clock counted */
	}
	PER_CALL("launch_empty_kernel", 2000, d.LaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL),
		 d.CtxSynchronize());
	PER_CALL("launch_and_synchronize", 2000,
		 (d.LaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL), d.CtxSynchronize()), (void)0);
	graph_replay(&d, fn, params, reps);
	/* Bulk copies. */
	snprintf(nm, sizeof(nm), "htod_%uMiB_pageable", mib);
	BANDWIDTH(nm, d.MemcpyHtoD(big, pageable, bytes));
	snprintf(nm, sizeof(nm), "dtoh_%uMiB_pageable", mib);
	BANDWIDTH(nm, d.MemcpyDtoH(pageable, big, bytes));
	snprintf(nm, sizeof(nm), "htod_%uMiB_pinned", mib);
	BANDWIDTH(nm, d.MemcpyHtoD(big, pinned, bytes));
	snprintf(nm, sizeof(nm), "dtoh_%uMiB_pinned", mib);
	BANDWIDTH(nm, d.MemcpyDtoH(pinned, big, bytes));
	free(pageable);
	return 0;
}

/* ---- PyTorch ------------------------------------------------------------ */

/*
 * A small elementwise op (4096 floats, in place) and a training step of a
 * three-layer MLP (batch 256, 1024 -> 4096 -> 4096 -> 1024, SGD).  Printed
 * in the leg format.  Arguments: reps, settle milliseconds.  Exits 3 when
 * torch or a GPU is not there.
 */
static const char torch_script[] =
	"import sys, time\n"
	"try:\n"
	"    import torch\n"
	"except Exception:\n"
	"    sys.exit(3)\n"
	"if not torch.cuda.is_available():\n"
	"    sys.exit(3)\n"
	"reps = int(sys.argv[1])\n"
	"settle = int(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0\n"
	"def rep(name, v, unit):\n"
	"    v = sorted(v); n = len(v)\n"
	"    print('%s %.3f %.3f %.3f %s' % (name, v[n // 2], v[n // 10], v[n - 1 - n // 10], unit), flush=True)\n"
	"d = torch.device('cuda')\n"
	"x = torch.ones(4096, device=d)\n"
	"for _ in range(200): x.mul_(1.0001)\n"
	"torch.cuda.synchronize()\n"
	"time.sleep(settle)\n"
	"v = []\n"
	"for r in range(reps):\n"
	"    t = time.perf_counter()\n"
	"    for _ in range(2000): x.mul_(1.0001)\n"
	"    torch.cuda.synchronize()\n"
	"    v.append((time.perf_counter() - t) / 2000 * 1e6)\n"
	"rep('torch_small_op', v, 'us/call')\n"
	"torch.manual_seed(0)\n"
	"m = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 4096),\n"
	"                        torch.nn.ReLU(), torch.nn.Linear(4096, 1024)).to(d)\n"
	"opt = torch.optim.SGD(m.parameters(), lr=1e-3)\n"
	"xb = torch.randn(256, 1024, device=d); yb = torch.randn(256, 1024, device=d)\n"
	"def step():\n"
	"    opt.zero_grad(set_to_none=True)\n"
	"    loss = torch.nn.functional.mse_loss(m(xb), yb)\n"
	"    loss.backward()\n"
	"    opt.step()\n"
	"for _ in range(20): step()\n"
	"torch.cuda.synchronize()\n"
	"v = []\n"
	"for r in range(reps):\n"
	"    t = time.perf_counter()\n"
	"    for _ in range(50): step()\n"
	"    torch.cuda.synchronize()\n"
	"    v.append((time.perf_counter() - t) / 50 * 1e3)\n"
	"rep('torch_mlp_train_step', v, 'ms/call')\n";

/* ---- the legs ----------------------------------------------------------- */

struct row {
	char name[64], unit[16];
	double med[MAXROUNDS], p10, p90;
	int nmed;
};

struct table {
	struct row rows[MAXROWS];
	int n;
};

static struct row *row_get(struct table *t, const char *name, const char *unit)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].name, name))
			return &t->rows[i];
	if (t->n == MAXROWS)
		return NULL;
	memset(&t->rows[t->n], 0, sizeof(t->rows[0]));
	snprintf(t->rows[t->n].name, sizeof(t->rows[0].name), "%s", name);
	snprintf(t->rows[t->n].unit, sizeof(t->rows[0].unit), "%s", unit);
	return &t->rows[t->n++];
}

static void row_add(struct table *t, const char *name, const char *unit, double med, double p10, double p90)
{
	struct row *rw = row_get(t, name, unit);

	if (!rw || rw->nmed == MAXROUNDS)
		return;
	if (!rw->nmed || p10 < rw->p10)
		rw->p10 = p10;
	if (!rw->nmed || p90 > rw->p90)
		rw->p90 = p90;
	rw->med[rw->nmed++] = med;
}

/* A llama-drive RESULT line (key=value pairs): decode and prompt tokens/s, load time; one sample each. */
static void llama_result(const char *line, struct table *t)
{
	static const struct {
		const char *key, *row, *unit;
	} keys[] = {
		{ " decode_tok_s=", "llama_decode", "tok/s" },
		{ " prompt_tok_s=", "llama_prompt", "tok/s" },
		{ " load_ms=", "llama_model_load", "ms" },
	};
	const char *p;
	double v;
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		p = strstr(line, keys[i].key);
		if (p && sscanf(p + strlen(keys[i].key), "%lf", &v) == 1)
			row_add(t, keys[i].row, keys[i].unit, v, v, v);
	}
}

/*
 * Runs argv with LIB's directory first in LD_LIBRARY_PATH (and VGPU_SERVER
 * set when server) and adds what it prints to t.  Returns its exit status,
 * or -1.
 */
static int run_leg(char *const argv[], const char *lib, const char *server, struct table *t)
{
	char dir[PATH_MAX], line[4096], name[64], unit[16];
	const char *old = getenv("LD_LIBRARY_PATH");
	char *ldp;
	double med, p10, p90;
	int pfd[2], status, cont = 0;
	pid_t pid;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s", lib);
	ldp = malloc(strlen(dir) + (old ? strlen(old) : 0) + 2);
	if (!ldp || pipe(pfd) < 0) {
		free(ldp);
		return -1;
	}
	sprintf(ldp, "%s%s%s", dirname(dir), old && *old ? ":" : "", old ? old : "");
	pid = fork();
	if (pid < 0) {
		free(ldp);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		setenv("LD_LIBRARY_PATH", ldp, 1);
		if (server)
			setenv("VGPU_SERVER", server, 1);
		else
			unsetenv("VGPU_SERVER");
		execvp(argv[0], argv);
		_exit(127);
	}
	free(ldp);
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		/* Only whole lines are figures: the rest of a longer one is not. */
		int whole = strchr(line, '\n') != NULL, part = cont;

		cont = !whole;
		if (part)
			continue;
		if (!strncmp(line, "RESULT ", 7)) {
			llama_result(line, t);
			continue;
		}
		/* llama-drive's generated ids are not a figure. */
		if (!strncmp(line, "IDS ", 4))
			continue;
		if (sscanf(line, "%63s %lf %lf %lf %15s", name, &med, &p10, &p90, unit) != 5)
			continue;
		row_add(t, name, unit, med, p10, p90);
	}
	if (f)
		fclose(f);
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static double row_median(struct row *r)
{
	qsort(r->med, (size_t)r->nmed, sizeof(double), cmp_double);
	return r->med[r->nmed / 2];
}

/* The transport part of an address: "unix", "tcp", "vsock-uds", ... */
static void transport_name(const char *address, char *out, size_t n)
{
	const char *colon = strchr(address, ':');
	size_t len = colon ? (size_t)(colon - address) : strlen(address);

	snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), address);
}

/* A row's name: pattern with its "%s" (if any) standing for the bulk size, "<mib>MiB". */
static void sized_name(char *out, size_t n, const char *pattern, unsigned int mib)
{
	const char *pct = strstr(pattern, "%s");

	if (pct)
		snprintf(out, n, "%.*s%uMiB%s", (int)(pct - pattern), pattern, mib, pct + 2);
	else
		snprintf(out, n, "%s", pattern);
}

/* Round trips and bandwidth over each server's transport, beside native. */
static void transports_print(struct table *native, const char *const *servers, int nservers, struct table *first,
			     struct table *more, unsigned int mib)
{
	static const char *const plain[] = {
		"mem_get_info", "memcpy_htod_4B", "memcpy_dtoh_4B", "launch_and_synchronize",
	};
	static const char *const bulk[] = { "htod_%s_pageable", "dtoh_%s_pageable", "htod_%s_pinned", "dtoh_%s_pinned" };
	char names[9][64];
	size_t r, nn = 0;
	int k, i;

	for (r = 0; r < sizeof(plain) / sizeof(plain[0]); r++)
		sized_name(names[nn++], sizeof(names[0]), plain[r], mib);
	for (r = 0; r < sizeof(bulk) / sizeof(bulk[0]); r++)
		sized_name(names[nn++], sizeof(names[0]), bulk[r], mib);
	printf("\n%-26s %12s", "transport", "native");
	for (k = 0; k < nservers; k++) {
		char t[16];

		transport_name(servers[k], t, sizeof(t));
		printf(" %14s", t);
	}
	printf("  (median of round medians, ratio to native)\n");
	for (r = 0; r < nn; r++) {
		struct row *a = NULL;

		for (i = 0; i < native->n && !a; i++)
			if (!strcmp(native->rows[i].name, names[r]))
				a = &native->rows[i];
		if (!a)
			continue;
		printf("%-26s %12.3f", a->name, row_median(a));
		for (k = 0; k < nservers; k++) {
			struct table *t = k ? &more[k] : first;
			struct row *b = NULL;

			for (i = 0; i < t->n && !b; i++)
				if (!strcmp(t->rows[i].name, a->name))
					b = &t->rows[i];
			if (b)
				printf(" %7.2f %5.2fx", row_median(b), row_median(b) / row_median(a));
			else
				printf(" %14s", "-");
		}
		printf("  %s\n", a->unit);
	}
}

/* The median of the rounds' medians of t's row name, or -1 when there is none. */
static double figure(struct table *t, const char *name)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->rows[i].name, name) && t->rows[i].nmed)
			return row_median(&t->rows[i]);
	return -1;
}

/*
 * The performance targets (the fast-path issue's table), judged on this
 * run's medians.  A "vgpu at most" target judges the worst of its rows.
 */
enum { T_AT_MOST, T_RATIO_AT_MOST, T_RATIO_AT_LEAST, T_PLUS_AT_MOST };

static void targets_print(struct table *native, struct table *vg, unsigned int mib)
{
	static const struct {
		const char *what, *rows[3];
		int kind;
		double limit;
		const char *unit;	/* of the limit, for T_AT_MOST and T_PLUS_AT_MOST */
		int stretch;
	} tg[] = {
		{ "local queries", { "ctx_get_current", "ctx_get_device", "device_get_attribute" }, T_AT_MOST, 0.050,
		  "us", 0 },
		{ "back-to-back launches", { "launch_empty_kernel" }, T_RATIO_AT_MOST, 1.05, "", 0 },
		{ "launch + synchronize", { "launch_and_synchronize" }, T_PLUS_AT_MOST, 2.0, "us", 0 },
		{ "cuMemGetInfo", { "mem_get_info" }, T_PLUS_AT_MOST, 2.0, "us", 0 },
		{ "pinned, host to device", { "htod_%s_pinned" }, T_RATIO_AT_LEAST, 0.90, "", 0 },
		{ "pinned, device to host", { "dtoh_%s_pinned" }, T_RATIO_AT_LEAST, 0.90, "", 0 },
		{ "PyTorch small op", { "torch_small_op" }, T_RATIO_AT_MOST, 1.10, "", 0 },
		{ "PyTorch MLP training step", { "torch_mlp_train_step" }, T_RATIO_AT_MOST, 1.10, "", 0 },
		{ "first runtime call", { "rt_first_call_ms" }, T_PLUS_AT_MOST, 100.0, "ms", 0 },
		{ "pageable, host to device", { "htod_%s_pageable" }, T_RATIO_AT_LEAST, 1.0, "", 1 },
		{ "pageable, device to host", { "dtoh_%s_pageable" }, T_RATIO_AT_LEAST, 1.0, "", 1 },
	};
	size_t i, j;

	printf("\n%-28s %-22s %-12s %s\n", "target", "gate", "this run", "verdict");
	for (i = 0; i < sizeof(tg) / sizeof(tg[0]); i++) {
		double worst = 0, v, a, b;
		char name[64], gate[32], got[32];
		int measured = 1, ok;

		for (j = 0; j < 3 && tg[i].rows[j]; j++) {
			sized_name(name, sizeof(name), tg[i].rows[j], mib);
			a = figure(native, name);
			b = figure(vg, name);
			if (b < 0 || (tg[i].kind != T_AT_MOST && a <= 0)) {
				measured = 0;
				break;
			}
			v = tg[i].kind == T_AT_MOST ? b : tg[i].kind == T_PLUS_AT_MOST ? b - a : b / a;
			if (j == 0 || (tg[i].kind == T_RATIO_AT_LEAST ? v < worst : v > worst))
				worst = v;
		}
		ok = tg[i].kind == T_RATIO_AT_LEAST ? worst >= tg[i].limit : worst <= tg[i].limit;
		switch (tg[i].kind) {
		case T_AT_MOST:
			snprintf(gate, sizeof(gate), "<= %.3f %s", tg[i].limit, tg[i].unit);
			snprintf(got, sizeof(got), "%.3f %s", worst, tg[i].unit);
			break;
		case T_PLUS_AT_MOST:
			snprintf(gate, sizeof(gate), "<= native + %g %s", tg[i].limit, tg[i].unit);
			snprintf(got, sizeof(got), "%+.2f %s", worst, tg[i].unit);
			break;
		default:
			snprintf(gate, sizeof(gate), "%s %.2fx native", tg[i].kind == T_RATIO_AT_LEAST ? ">=" : "<=",
				 tg[i].limit);
			snprintf(got, sizeof(got), "%.3fx", worst);
			break;
		}
		printf("%-28s %-22s %-12s %s%s\n", tg[i].what, gate, measured ? got : "-",
		       !measured ? "not measured" : ok ? "met" : "MISSED", tg[i].stretch ? " (stretch)" : "");
	}
}

static const char *usage_text =
	"usage: vgpu-bench --native LIBCUDA --vgpu LIBCUDA [--server ADDRESS] [--transport ADDRESS]...\n"
	"                  [--reps N] [--rounds R]\n"
	"                  [--size-mib N (bulk copies, default 256)]\n"
	"                  [--settle-ms N (each leg's wait before its figures, default 1000)]\n"
	"                  [--rt PROGRAM] [--python PYTHON]\n"
	"                  [--llama DIR --model GGUF [--llama-drive PROGRAM]]\n";

int main(int argc, char **argv)
{
	const char *native = NULL, *vg = NULL, *server = NULL, *legl = NULL, *rt = NULL;
	const char *python = "python3", *llama = NULL, *model = NULL, *drive = NULL;
	const char *servers[MAXSERVERS];
	static struct table ta, tb, tx[MAXSERVERS];
	int nservers = 0, k;
	int reps = 7, rounds = 5, i, j, round, torch_ok = 1, ret;
	unsigned int mib = 256, settle_ms = 1000;
	char self[4096], reps_s[16], mib_s[16], settle_s[16];
	ssize_t sl;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has = i + 1 < argc;

		if (!strcmp(a, "--native") && has)
			native = argv[++i];
		else if (!strcmp(a, "--vgpu") && has)
			vg = argv[++i];
		else if (!strcmp(a, "--server") && has)
			server = argv[++i];
		else if (!strcmp(a, "--transport") && has && nservers < MAXSERVERS - 1)
			servers[1 + nservers++] = argv[++i];
		else if (!strcmp(a, "--leg") && has)
			legl = argv[++i];
		else if (!strcmp(a, "--reps") && has)
			reps = atoi(argv[++i]);
		else if (!strcmp(a, "--rounds") && has)
			rounds = atoi(argv[++i]);
		else if (!strcmp(a, "--size-mib") && has)
			mib = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(a, "--settle-ms") && has)
			settle_ms = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(a, "--rt") && has)
			rt = argv[++i];
		else if (!strcmp(a, "--python") && has)
			python = argv[++i];
		else if (!strcmp(a, "--llama") && has)
			llama = argv[++i];
		else if (!strcmp(a, "--model") && has)
			model = argv[++i];
		else if (!strcmp(a, "--llama-drive") && has)
			drive = argv[++i];
		else {
			fputs(usage_text, stderr);
			return 2;
		}
	}
	if (reps < 3 || reps > MAXREPS)
		reps = 7;
	if (rounds < 1 || rounds > MAXROUNDS)
		rounds = 5;
	if (mib < 1 || mib > 4096)
		mib = 256;
	if (settle_ms > 60000)
		settle_ms = 1000;
	if (legl)
		return leg(legl, reps, mib, settle_ms);
	if (!native || !vg || (!llama != !model)) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (!server)
		server = getenv("VGPU_SERVER");
	servers[0] = server ? server : "unix:?";
	nservers++;
	sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (sl <= 0)
		return 1;
	self[sl] = '\0';
	snprintf(reps_s, sizeof(reps_s), "%d", reps);
	snprintf(mib_s, sizeof(mib_s), "%u", mib);
	snprintf(settle_s, sizeof(settle_s), "%u", settle_ms);
	for (round = 0; round < rounds; round++) {
		for (j = 0; j < 2; j++) {
			const char *lib = j ? vg : native;
			const char *srv = j ? server : NULL;
			struct table *t = j ? &tb : &ta;
			char *drv_argv[] = { self, "--leg", (char *)lib, "--reps", reps_s, "--size-mib", mib_s,
					     "--settle-ms", settle_s, NULL };
			char *rt_argv[] = { (char *)rt, reps_s, settle_s, NULL };
			char *py_argv[] = { (char *)python, "-c", (char *)torch_script, reps_s, settle_s, NULL };
			char *ll_argv[] = { (char *)drive, "-n", "128", "-P", "64", (char *)llama, (char *)model, NULL };

			ret = run_leg(drv_argv, lib, srv, t);
			if (ret != 0) {
				fprintf(stderr, "vgpu-bench: the %s leg failed (status %d)\n", j ? "vgpu" : "native", ret);
				return 1;
			}
			if (rt && (ret = run_leg(rt_argv, lib, srv, t)) != 0)
				fprintf(stderr, "vgpu-bench: %s: status %d\n", rt, ret);
			if (torch_ok) {
				ret = run_leg(py_argv, lib, srv, t);
				if (ret == 3 && !j)
					torch_ok = 0;	/* no PyTorch or no GPU natively: no rows */
				else if (ret != 0)
					fprintf(stderr, "vgpu-bench: the PyTorch %s leg: status %d\n",
						j ? "vgpu" : "native", ret);
			}
			if (llama && drive && (ret = run_leg(ll_argv, lib, srv, t)) != 0)
				fprintf(stderr, "vgpu-bench: %s: status %d\n", drive, ret);
		}
		/* The other transports: the driver-API leg only. */
		for (k = 1; k < nservers; k++) {
			char *drv_argv[] = { self, "--leg", (char *)vg, "--reps", reps_s, "--size-mib", mib_s,
					     "--settle-ms", settle_s, NULL };

			ret = run_leg(drv_argv, vg, servers[k], &tx[k]);
			if (ret != 0)
				fprintf(stderr, "vgpu-bench: the leg over %s failed (status %d)\n", servers[k], ret);
		}
	}
	printf("%-26s %12s %12s %10s  %s\n", "workload", "native", "vgpu", "vgpu/native",
	       "(median of round medians; vgpu p10..p90 over all)");
	for (i = 0; i < ta.n; i++)
		for (j = 0; j < tb.n; j++)
			if (!strcmp(ta.rows[i].name, tb.rows[j].name)) {
				double a = row_median(&ta.rows[i]), b = row_median(&tb.rows[j]);

				printf("%-26s %12.3f %12.3f %10.2fx  %s; vgpu %.3f..%.3f\n", ta.rows[i].name, a, b,
				       b / a, ta.rows[i].unit, tb.rows[j].p10, tb.rows[j].p90);
			}
	if (nservers > 1)
		transports_print(&ta, servers, nservers, &tb, tx, mib);
	targets_print(&ta, &tb, mib);
	return 0;
}
