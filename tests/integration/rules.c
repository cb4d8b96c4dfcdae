/*
 * Guest-side rules of the driver, checked through vgpu and the CPU test
 * driver (two devices):
 *
 *   rules fork           a forked child's CUDA calls fail with NOT_INITIALIZED
 *                        and leave the parent's session working
 *   rules visible N NAME...  with CUDA_VISIBLE_DEVICES set by the caller: N
 *                        devices, named NAME... in order ("-" for none)
 *   rules uuid-prefix    CUDA_VISIBLE_DEVICES=GPU-<device 1's UUID less its
 *                        last digit> re-executes and sees only device 1
 *   rules deferred       an asynchronous call's error is reported once, by the
 *                        next synchronising call (immediately with VGPU_SYNC=1)
 *   rules local-queries  100 000 each of the queries answered in the guest (the
 *                        runner checks the worker's call counts stayed small)
 *   rules capture-info   cuStreamGetCaptureInfo answered in the guest while no
 *                        capture is open (10 000 each; the runner checks the
 *                        worker's counts), by the host while one is, after a
 *                        failed end that did or did not end it, and for
 *                        streams made before a context ended
 *   rules idle-sync      repeated synchronisations with nothing sent between
 *                        (1000 each of a stream's, the per-thread stream's,
 *                        the context's) return CUDA_SUCCESS; work queued in
 *                        between, by this thread or another, is waited for
 *                        and its data is there (the runner checks how many
 *                        reached the worker, with VGPU_LOCAL_SYNC=0 too)
 *   rules kernel-facts   a kernel's function and parameter layouts, asked
 *                        10 000 times each, give the host's first answers
 *                        (the runner checks how many reached the worker);
 *                        errors, a call with no current context and a kernel
 *                        of an unloaded library still get the host's answer
 *   rules null-sweep     every export of libcuda.so.1, called with zero
 *                        arguments before and after cuInit, returns a known
 *                        CUresult and nothing crashes; the session survives
 *
 * Prints FAIL lines and exits 1 on any failure.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vgpu/cuda_types.h"

typedef CUresult (*init_fn)(unsigned int);
typedef CUresult (*count_fn)(int *);
typedef CUresult (*get_fn)(CUdevice *, int);
typedef CUresult (*name_fn)(char *, int, CUdevice);
typedef CUresult (*uuid_fn)(CUuuid *, CUdevice);
typedef CUresult (*errname_fn)(CUresult, const char **);
typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*retain_fn)(CUcontext *, CUdevice);
typedef CUresult (*setcur_fn)(CUcontext);
/* Any export, called with zeros: extra arguments are harmless in this ABI. */
typedef CUresult (*any_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
			   uint64_t, uint64_t, uint64_t, uint64_t);

static void *lib;
static int failed;

static void *sym(const char *name)
{
	void *p = dlsym(lib, name);

	if (!p) {
		printf("FAIL no symbol %s\n", name);
		exit(1);
	}
	return p;
}

static void check(int ok, const char *what, int got)
{
	if (!ok) {
		printf("FAIL %s (got %d)\n", what, got);
		failed = 1;
	}
}

/* A context on device 0 and one allocation: "real work". */
static CUresult work(void)
{
	CUcontext c;
	CUdeviceptr p;
	CUresult r = ((retain_fn)sym("cuDevicePrimaryCtxRetain"))(&c, 0);

	if (r == CUDA_SUCCESS)
		r = ((setcur_fn)sym("cuCtxSetCurrent"))(c);
	if (r == CUDA_SUCCESS)
		r = ((alloc_fn)sym("cuMemAlloc_v2"))(&p, 4096);
	return r;
}

static int rules_fork(void)
{
	int n = -1, status = 0;
	pid_t pid;
	CUresult r;

	r = ((init_fn)sym("cuInit"))(0);
	check(r == CUDA_SUCCESS, "parent cuInit", r);
	pid = fork();
	if (pid == 0) {
		int bad = 0;

		/* The child's CUDA state is invalid, as with NVIDIA's driver. */
		if (((count_fn)sym("cuDeviceGetCount"))(&n) != CUDA_ERROR_NOT_INITIALIZED)
			bad = 1;
		if (((init_fn)sym("cuInit"))(0) != CUDA_ERROR_NOT_INITIALIZED)
			bad = 1;
		if (work() != CUDA_ERROR_NOT_INITIALIZED)
			bad = 1;
		_exit(bad);
	}
	waitpid(pid, &status, 0);
	check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: calls after fork must fail with NOT_INITIALIZED",
	      status);
	r = work();
	check(r == CUDA_SUCCESS, "parent works after the child's attempts", r);
	r = ((count_fn)sym("cuDeviceGetCount"))(&n);
	check(r == CUDA_SUCCESS && n == 2, "parent still sees two devices", n);
	return failed;
}

static int rules_visible(int argc, char **argv)
{
	int want = atoi(argv[0]), n = -1, i;
	CUresult r = ((init_fn)sym("cuInit"))(0);

	check(r == CUDA_SUCCESS, "cuInit", r);
	r = ((count_fn)sym("cuDeviceGetCount"))(&n);
	check(r == CUDA_SUCCESS && n == want, "device count", n);
	for (i = 0; i < n && i + 1 < argc; i++) {
		char name[128] = "";
		CUdevice d;

		r = ((get_fn)sym("cuDeviceGet"))(&d, i);
		if (r == CUDA_SUCCESS)
			r = ((name_fn)sym("cuDeviceGetName"))(name, sizeof(name), d);
		if (r != CUDA_SUCCESS || strcmp(name, argv[i + 1]) != 0) {
			printf("FAIL device %d is '%s', want '%s'\n", i, name, argv[i + 1]);
			failed = 1;
		}
	}
	if (n > 0) {
		CUdevice d;

		r = ((get_fn)sym("cuDeviceGet"))(&d, n);
		check(r == CUDA_ERROR_INVALID_DEVICE, "an ordinal past the visible devices", r);
	}
	return failed;
}

static int rules_uuid_prefix(char *self)
{
	CUuuid u;
	char env[64];
	const unsigned char *b = (const unsigned char *)u.bytes;
	CUresult r = ((init_fn)sym("cuInit"))(0);

	check(r == CUDA_SUCCESS, "cuInit", r);
	r = ((uuid_fn)sym("cuDeviceGetUuid_v2"))(&u, 1);
	check(r == CUDA_SUCCESS, "uuid of device 1", r);
	if (failed)
		return 1;
	/* The whole UUID but its last digit: a prefix, and unique (the test devices' UUIDs share a start). */
	snprintf(env, sizeof(env), "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15] >> 4);
	setenv("CUDA_VISIBLE_DEVICES", env, 1);
	execl("/proc/self/exe", self, "visible", "1", "vgpu CPU test device 1", (char *)NULL);
	perror("exec");
	return 1;
}

typedef CUresult (*memset_async_fn)(CUdeviceptr, unsigned char, size_t, CUstream);
typedef CUresult (*sync_fn)(CUstream);

static int rules_deferred(void)
{
	const char *e = getenv("VGPU_SYNC");
	int sync = e && *e && strcmp(e, "0") != 0;
	memset_async_fn ms = (memset_async_fn)sym("cuMemsetD8Async");
	sync_fn ss = (sync_fn)sym("cuStreamSynchronize");
	CUresult r = ((init_fn)sym("cuInit"))(0);

	check(r == CUDA_SUCCESS, "cuInit", r);
	check(work() == CUDA_SUCCESS, "a context", 0);
	/* An address no allocation covers: the driver refuses the memset. */
	r = ms((CUdeviceptr)0xdead0000ull, 0, 16, NULL);
	check(r == (sync ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS), "the asynchronous memset itself", r);
	r = ss(NULL);
	check(r == (sync ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE), "the next synchronising call reports it", r);
	r = ss(NULL);
	check(r == CUDA_SUCCESS, "reported once only", r);
	check(work() == CUDA_SUCCESS, "real work afterwards", 0);
	return failed;
}

typedef CUresult (*getcur_fn)(CUcontext *);
typedef CUresult (*getdev_fn)(CUdevice *);
typedef CUresult (*attr_fn)(int *, CUdevice_attribute, CUdevice);
typedef CUresult (*pstate_fn)(CUdevice, unsigned int *, int *);

static int rules_local_queries(void)
{
	getcur_fn gc = (getcur_fn)sym("cuCtxGetCurrent");
	getdev_fn gd = (getdev_fn)sym("cuCtxGetDevice");
	attr_fn ga = (attr_fn)sym("cuDeviceGetAttribute");
	pstate_fn ps = (pstate_fn)sym("cuDevicePrimaryCtxGetState");
	CUresult r = ((init_fn)sym("cuInit"))(0);
	int i, bad = 0, v, active;
	unsigned int flags;
	CUcontext c;
	CUdevice d;

	check(r == CUDA_SUCCESS, "cuInit", r);
	check(work() == CUDA_SUCCESS, "a context", 0);
	for (i = 0; i < 100000; i++) {
		bad |= gc(&c) != CUDA_SUCCESS || !c;
		bad |= gd(&d) != CUDA_SUCCESS || d != 0;
		bad |= ga(&v, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 0) != CUDA_SUCCESS || v != 32;
		bad |= ps(0, &flags, &active) != CUDA_SUCCESS || !active;
	}
	check(!bad, "every local answer right", bad);
	printf("local queries done\n");
	return failed;
}

typedef CUresult (*info_fn)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *, const CUgraphNode **,
			   size_t *);
typedef CUresult (*stream_create_fn)(CUstream *, unsigned int);
typedef CUresult (*begin_fn)(CUstream, CUstreamCaptureMode);
typedef CUresult (*end_fn)(CUstream, CUgraph *);
typedef CUresult (*gdestroy_fn)(CUgraph);
typedef CUresult (*memset_fn)(CUdeviceptr, unsigned char, size_t, CUstream);
typedef CUresult (*ctx_create_fn)(CUcontext *, unsigned int, CUdevice);
typedef CUresult (*ctx_destroy_fn)(CUcontext);
typedef CUresult (*ctx_sync_fn)(void);

/*
 * n queries of s, outputs preset: all must say NONE and leave the other
 * outputs alone (what NVIDIA's driver does for a stream not capturing).
 */
static int idle_info(info_fn info, CUstream s, int n)
{
	int i, bad = 0;

	for (i = 0; i < n; i++) {
		CUstreamCaptureStatus st = (CUstreamCaptureStatus)77;
		cuuint64_t id = 0x5151;
		CUgraph g = (CUgraph)(uintptr_t)0x7070;
		const CUgraphNode *deps = (const CUgraphNode *)(uintptr_t)0x9090;
		size_t nd = 1234;

		bad |= info(s, &st, &id, &g, &deps, &nd) != CUDA_SUCCESS || st != CU_STREAM_CAPTURE_STATUS_NONE ||
		       id != 0x5151 || g != (CUgraph)(uintptr_t)0x7070 ||
		       deps != (const CUgraphNode *)(uintptr_t)0x9090 || nd != 1234;
	}
	return bad;
}

static CUstreamCaptureStatus status_of(info_fn info, CUstream s, cuuint64_t *id)
{
	CUstreamCaptureStatus st = (CUstreamCaptureStatus)77;
	CUresult r = info(s, &st, id, NULL, NULL, NULL);

	return r == CUDA_SUCCESS ? st : (CUstreamCaptureStatus)(1000 + r);
}

static int rules_capture_info(void)
{
	info_fn info = (info_fn)sym("cuStreamGetCaptureInfo_v2");
	begin_fn begin = (begin_fn)sym("cuStreamBeginCapture_v2");
	end_fn end = (end_fn)sym("cuStreamEndCapture");
	stream_create_fn mk = (stream_create_fn)sym("cuStreamCreate");
	CUresult r = ((init_fn)sym("cuInit"))(0), r2;
	CUstream s, s2, s3;
	CUgraph g = NULL;
	CUcontext c0, c2;
	CUdeviceptr p;
	cuuint64_t id = 0;

	check(r == CUDA_SUCCESS, "cuInit", r);
	check(work() == CUDA_SUCCESS, "a context", 0);
	check(((getcur_fn)sym("cuCtxGetCurrent"))(&c0) == CUDA_SUCCESS, "the current context", 0);
	check(mk(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS, "a stream", 0);
	check(mk(&s2, 0) == CUDA_SUCCESS, "a second stream", 0);
	check(((alloc_fn)sym("cuMemAlloc_v2"))(&p, 4096) == CUDA_SUCCESS, "an allocation", 0);

	/* No capture open: the guest answers (the runner counts what reached the worker). */
	check(!idle_info(info, s, 10000), "idle stream: NONE, other outputs untouched", 0);
	check(!idle_info(info, NULL, 10000), "default stream: NONE, other outputs untouched", 0);
	check(info(s, NULL, &id, NULL, NULL, NULL) == CUDA_ERROR_INVALID_VALUE, "no status pointer", 0);
	check(info((CUstream)(uintptr_t)0xbad0, NULL, NULL, NULL, NULL, NULL) != CUDA_SUCCESS, "unknown stream", 0);

	/* A capture open: the host answers, for every stream. */
	check(begin(s, CU_STREAM_CAPTURE_MODE_RELAXED) == CUDA_SUCCESS, "begin capture", 0);
	check(status_of(info, s, &id) == CU_STREAM_CAPTURE_STATUS_ACTIVE && id != 0, "capturing: ACTIVE", 0);
	check(!idle_info(info, s2, 3), "another stream during the capture: NONE", 0);
	check(end(s, NULL) == CUDA_ERROR_INVALID_VALUE, "end capture without a graph pointer", 0);
	/* That failed end did not end it: the guest must not answer NONE now. */
	check(status_of(info, s, NULL) == CU_STREAM_CAPTURE_STATUS_ACTIVE, "still capturing after a failed end", 0);
	r = end(s, &g);
	check(r == CUDA_SUCCESS && g != NULL, "end capture", r);
	check(((gdestroy_fn)sym("cuGraphDestroy"))(g) == CUDA_SUCCESS, "destroy the captured graph", 0);
	check(!idle_info(info, s, 10000), "after the capture: NONE again", 0);

	/* An invalidated capture: its failed end does end it, and the guest learns so from the host. */
	check(begin(s, CU_STREAM_CAPTURE_MODE_RELAXED) == CUDA_SUCCESS, "begin capture 2", 0);
	/* Work the test driver cannot capture; its error comes with the next synchronising call. */
	r = ((memset_fn)sym("cuMemsetD8Async"))(p, 1, 16, s);
	check(status_of(info, s, NULL) == CU_STREAM_CAPTURE_STATUS_INVALIDATED, "capture invalidated", 0);
	r2 = ((ctx_sync_fn)sym("cuCtxSynchronize"))();
	check((r == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) + (r2 == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED) == 1 &&
	      (r == CUDA_SUCCESS || r2 == CUDA_SUCCESS), "the refused work reported once", (int)r * 10000 + (int)r2);
	r = end(s, &g);
	check(r == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "end of an invalidated capture", r);
	check(!idle_info(info, s, 10000), "after the invalidated capture: NONE", 0);

	/* A context ends: streams made before it are asked of the host from then on. */
	check(((ctx_create_fn)sym("cuCtxCreate_v2"))(&c2, 0, 0) == CUDA_SUCCESS, "a second context", 0);
	check(mk(&s3, 0) == CUDA_SUCCESS, "a stream in it", 0);
	check(((ctx_destroy_fn)sym("cuCtxDestroy_v2"))(c2) == CUDA_SUCCESS, "destroy the second context", 0);
	check(status_of(info, s3, NULL) >= 1000, "a stream of a destroyed context: an error", 0);
	check(((setcur_fn)sym("cuCtxSetCurrent"))(c0) == CUDA_SUCCESS, "back to the first context", 0);
	check(!idle_info(info, s, 3), "an older stream, from the host: NONE", 0);
	printf("capture info done\n");
	return failed;
}

/* The names of our exports, from the library's dynamic symbol table. */
static int null_sweep(const char *exports)
{
	FILE *f = fopen(exports, "r");
	char name[256];
	int calls = 0, n = -1;
	errname_fn errname = (errname_fn)sym("cuGetErrorName");
	int pass;

	if (!f) {
		printf("FAIL cannot read %s\n", exports);
		return 1;
	}
	for (pass = 0; pass < 2; pass++) {
		rewind(f);
		if (pass == 1) {
			CUresult r = ((init_fn)sym("cuInit"))(0);

			check(r == CUDA_SUCCESS, "cuInit", r);
		}
		while (fscanf(f, "%255s", name) == 1) {
			any_fn fn = (any_fn)dlsym(lib, name);
			const char *s = NULL;
			CUresult r;

			if (!fn) {
				printf("FAIL no symbol %s\n", name);
				failed = 1;
				continue;
			}
			/* These end the process or the session by design, or wait forever. */
			if (!strcmp(name, "cuInit") || !strncmp(name, "cuProfiler", 10))
				continue;
			r = fn(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
			calls++;
			if (errname(r, &s) != CUDA_SUCCESS) {
				printf("FAIL %s(0...) returned %d, not a CUresult\n", name, (int)r);
				failed = 1;
			}
			if (pass == 0 && r == CUDA_SUCCESS && strncmp(name, "cuGetErrorString", 16) &&
			    strcmp(name, "cuDriverGetVersion") && strncmp(name, "cuGetProcAddress", 16)) {
				/* Before cuInit only local answers may succeed. */
				printf("INFO %s(0...) succeeded before cuInit\n", name);
			}
		}
	}
	fclose(f);
	/* The session survived everything. */
	check(((count_fn)sym("cuDeviceGetCount"))(&n) == CUDA_SUCCESS && n == 2, "the session survives the sweep", n);
	check(work() == CUDA_SUCCESS, "real work after the sweep", 0);
	printf("swept %d calls\n", calls);
	return failed;
}

typedef CUresult (*dtoh_fn)(void *, CUdeviceptr, size_t);

struct idle_other {
	CUcontext ctx;
	CUstream s;
	CUdeviceptr p;
	CUresult r;
};

/* Another thread queues a memset on the first thread's stream. */
static void *idle_other_thread(void *arg)
{
	struct idle_other *o = arg;

	o->r = ((setcur_fn)sym("cuCtxSetCurrent"))(o->ctx);
	if (o->r == CUDA_SUCCESS)
		o->r = ((memset_fn)sym("cuMemsetD8Async"))(o->p, 0x5a, 1 << 20, o->s);
	return NULL;
}

/* 1 when the first n bytes at p are all v. */
static int all_bytes(CUdeviceptr p, unsigned char v, size_t n)
{
	static unsigned char buf[1 << 20];
	size_t i;

	if (((dtoh_fn)sym("cuMemcpyDtoH_v2"))(buf, p, n) != CUDA_SUCCESS)
		return 0;
	for (i = 0; i < n; i++)
		if (buf[i] != v)
			return 0;
	return 1;
}

static int rules_idle_sync(void)
{
	sync_fn ss = (sync_fn)sym("cuStreamSynchronize");
	sync_fn ss_ptsz = (sync_fn)sym("cuStreamSynchronize_ptsz");
	ctx_sync_fn cs = (ctx_sync_fn)sym("cuCtxSynchronize");
	memset_fn ms = (memset_fn)sym("cuMemsetD8Async");
	struct idle_other o;
	pthread_t th;
	CUresult r = ((init_fn)sym("cuInit"))(0);
	CUstream s;
	CUdeviceptr p;
	int i, bad;

	check(r == CUDA_SUCCESS, "cuInit", r);
	check(work() == CUDA_SUCCESS, "a context", 0);
	check(((getcur_fn)sym("cuCtxGetCurrent"))(&o.ctx) == CUDA_SUCCESS, "the current context", 0);
	check(((stream_create_fn)sym("cuStreamCreate"))(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS, "a stream", 0);
	check(((alloc_fn)sym("cuMemAlloc_v2"))(&p, 1 << 20) == CUDA_SUCCESS, "an allocation", 0);

	/* Work, then 1000 synchronisations of its stream: the first waits for it. */
	check(ms(p, 0x11, 1 << 20, s) == CUDA_SUCCESS, "a memset", 0);
	for (i = 0, bad = 0; i < 1000; i++)
		bad |= ss(s) != CUDA_SUCCESS;
	check(!bad, "1000 synchronisations of the stream", 0);
	check(all_bytes(p, 0x11, 1 << 20), "the memset's bytes", 0);

	/* Work queued between two: the second waits for it. */
	check(ss(s) == CUDA_SUCCESS, "after the copy back", 0);
	check(ms(p, 0x22, 1 << 20, s) == CUDA_SUCCESS, "a second memset", 0);
	check(ss(s) == CUDA_SUCCESS, "its synchronisation", 0);
	check(all_bytes(p, 0x22, 1 << 20), "the second memset's bytes", 0);

	/* Work another thread queued on this stream: waited for. */
	check(ss(s) == CUDA_SUCCESS, "before the other thread", 0);
	o.s = s;
	o.p = p;
	check(pthread_create(&th, NULL, idle_other_thread, &o) == 0, "another thread", 0);
	pthread_join(th, NULL);
	check(o.r == CUDA_SUCCESS, "the other thread's memset", o.r);
	check(ss(s) == CUDA_SUCCESS, "the synchronisation after it", 0);
	check(all_bytes(p, 0x5a, 1 << 20), "the other thread's bytes", 0);

	/* The per-thread stream, then the context: 1000 each. */
	check(ms(p, 0x33, 1 << 20, CU_STREAM_PER_THREAD) == CUDA_SUCCESS, "a memset on the per-thread stream", 0);
	for (i = 0, bad = 0; i < 1000; i++)
		bad |= ss_ptsz(NULL) != CUDA_SUCCESS;
	check(!bad, "1000 synchronisations of the per-thread stream", 0);
	check(ms(p, 0x44, 1 << 20, s) == CUDA_SUCCESS, "a memset before the context's", 0);
	for (i = 0, bad = 0; i < 1000; i++)
		bad |= cs() != CUDA_SUCCESS;
	check(!bad, "1000 synchronisations of the context", 0);
	/* The context's covers its default streams. */
	for (i = 0, bad = 0; i < 1000; i++)
		bad |= ss(NULL) != CUDA_SUCCESS;
	check(!bad, "1000 of the default stream after it", 0);
	check(all_bytes(p, 0x44, 1 << 20), "the last memset's bytes", 0);

	/* An error queued between two is reported by the second, once. */
	check(ss(s) == CUDA_SUCCESS, "before the bad memset", 0);
	r = ms((CUdeviceptr)0xdead0000ull, 0, 16, s);
	if (r == CUDA_SUCCESS)
		r = ss(s);
	check(r == CUDA_ERROR_INVALID_VALUE, "the bad memset reported", r);
	check(ss(s) == CUDA_SUCCESS, "and then success", 0);
	printf("idle sync done\n");
	return failed;
}

typedef CUresult (*libload_fn)(CUlibrary *, const void *, CUjit_option *, void **, unsigned int,
			       CUlibraryOption *, void **, unsigned int);
typedef CUresult (*libkernel_fn)(CUkernel *, CUlibrary, const char *);
typedef CUresult (*libunload_fn)(CUlibrary);
typedef CUresult (*kfunc_fn)(CUfunction *, CUkernel);
typedef CUresult (*kparam_fn)(CUkernel, size_t, size_t *, size_t *);
typedef CUresult (*fparam_fn)(CUfunction, size_t, size_t *, size_t *);

/* The CPU test driver's module text: entry points and their parameters. */
static const char facts_ptx[] = ".version 8.0\n.target sm_90\n"
				".visible .entry vg_fill (.param .u64 p, .param .u32 v, .param .u32 n)\n{ ret; }\n";

static int rules_kernel_facts(void)
{
	libload_fn load = (libload_fn)sym("cuLibraryLoadData");
	libkernel_fn getk = (libkernel_fn)sym("cuLibraryGetKernel");
	libunload_fn unload = (libunload_fn)sym("cuLibraryUnload");
	kfunc_fn kf = (kfunc_fn)sym("cuKernelGetFunction");
	kparam_fn kp = (kparam_fn)sym("cuKernelGetParamInfo");
	fparam_fn fp = (fparam_fn)sym("cuFuncGetParamInfo");
	getcur_fn gc = (getcur_fn)sym("cuCtxGetCurrent");
	setcur_fn sc = (setcur_fn)sym("cuCtxSetCurrent");
	CUresult r = ((init_fn)sym("cuInit"))(0);
	CUlibrary l = NULL, l2 = NULL;
	CUkernel k = NULL, k2 = NULL;
	CUfunction f = NULL, g = NULL;
	CUcontext c = NULL;
	size_t off = 0, size = 0;
	int i, bad = 0;

	check(r == CUDA_SUCCESS, "cuInit", r);
	check(work() == CUDA_SUCCESS, "a context", 0);
	r = load(&l, facts_ptx, NULL, NULL, 0, NULL, NULL, 0);
	check(r == CUDA_SUCCESS, "cuLibraryLoadData", r);
	r = getk(&k, l, "vg_fill");
	check(r == CUDA_SUCCESS, "cuLibraryGetKernel", r);
	r = kf(&f, k);
	check(r == CUDA_SUCCESS && f, "cuKernelGetFunction", r);
	if (failed)
		return failed;
	for (i = 0; i < 10000; i++) {
		g = NULL;
		bad |= kf(&g, k) != CUDA_SUCCESS || g != f;
		off = size = 0;
		bad |= kp(k, 1, &off, &size) != CUDA_SUCCESS || off != 8 || size != 4;
		off = size = 0;
		bad |= fp(f, 2, &off, &size) != CUDA_SUCCESS || off != 12 || size != 4;
	}
	check(!bad, "every kept answer right", bad);
	/* Errors are not kept: each of these reaches the host. */
	for (i = 0; i < 100; i++) {
		r = kp(k, 3, &off, &size);
		check(r == CUDA_ERROR_INVALID_VALUE, "parameter 3 of three", r);
	}
	/* No current context: the host says so, though the answer was kept for one. */
	check(gc(&c) == CUDA_SUCCESS && c, "the current context", 0);
	check(sc(NULL) == CUDA_SUCCESS, "no current context", 0);
	r = kf(&g, k);
	check(r != CUDA_SUCCESS, "a kernel's function without a context fails", r);
	check(sc(c) == CUDA_SUCCESS, "the context again", 0);
	/* An unloaded library's kernel is the host's to judge, and a new one's answers are new. */
	r = unload(l);
	check(r == CUDA_SUCCESS, "cuLibraryUnload", r);
	r = kf(&g, k);
	check(r != CUDA_SUCCESS, "the function of an unloaded library's kernel", r);
	r = load(&l2, facts_ptx, NULL, NULL, 0, NULL, NULL, 0);
	check(r == CUDA_SUCCESS, "cuLibraryLoadData again", r);
	r = getk(&k2, l2, "vg_fill");
	check(r == CUDA_SUCCESS, "cuLibraryGetKernel again", r);
	g = NULL;
	r = kf(&g, k2);
	check(r == CUDA_SUCCESS && g, "the new kernel's function", r);
	off = size = 0;
	r = kp(k2, 2, &off, &size);
	check(r == CUDA_SUCCESS && off == 12 && size == 4, "the new kernel's parameter", r);
	printf("kernel facts done\n");
	return failed;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_DFL);
	lib = dlopen("libcuda.so.1", RTLD_NOW);
	if (!lib) {
		printf("FAIL %s\n", dlerror());
		return 1;
	}
	if (argc == 2 && !strcmp(argv[1], "fork"))
		return rules_fork();
	if (argc >= 3 && !strcmp(argv[1], "visible"))
		return rules_visible(argc - 2, argv + 2);
	if (argc == 2 && !strcmp(argv[1], "uuid-prefix"))
		return rules_uuid_prefix(argv[0]);
	if (argc == 2 && !strcmp(argv[1], "local-queries"))
		return rules_local_queries();
	if (argc == 2 && !strcmp(argv[1], "capture-info"))
		return rules_capture_info();
	if (argc == 2 && !strcmp(argv[1], "deferred"))
		return rules_deferred();
	if (argc == 2 && !strcmp(argv[1], "idle-sync"))
		return rules_idle_sync();
	if (argc == 2 && !strcmp(argv[1], "kernel-facts"))
		return rules_kernel_facts();
	if (argc == 3 && !strcmp(argv[1], "null-sweep"))
		return null_sweep(argv[2]);
	fprintf(stderr, "usage: rules fork | visible N NAME... | uuid-prefix | null-sweep EXPORTS\n");
	return 2;
}
