/* SPDX-License-Identifier: MIT */
/*
 * Ollama's GPU discovery sequences, replayed against whatever libcuda.so.1
 * the dynamic linker finds (NVIDIA's natively, ours through vgpu), as
 * /work/shared/research/ollama-gpu.md describes them:
 *
 *  old: the in-process probe of Ollama <= 0.12.3: dlopen, dlsym of ten
 *       symbols (any one missing rejects the library), cuInit,
 *       cuDriverGetVersion, cuDeviceGetCount, per device cuDeviceGet, the
 *       compute capability (attributes 75, 76), cuDeviceGetUuid,
 *       cuDeviceGetName (96 bytes), cuCtxCreate_v3, cuMemGetInfo_v2,
 *       cuCtxDestroy; then dlclose.  Run twice, the second time as the
 *       free-memory refresh (cuDeviceGet, cuCtxCreate_v3, cuMemGetInfo_v2,
 *       cuCtxDestroy) after a new dlopen, as Ollama repeats it.
 *  new: "ollama gpu-discover" of Ollama >= 0.30: dlopen RTLD_NOW|LOCAL,
 *       cuInit, cuDriverGetVersion, cuDeviceGetCount, per device
 *       cuDeviceGet, attributes 75, 76, 18 (integrated), cuDeviceGetName
 *       (128 bytes), cuDeviceTotalMem_v2, cuDeviceGetPCIBusId (32 bytes,
 *       lower-cased).
 *
 *   gpu-ollama-probe [--lib PATH] [--visible uuid:N|index:N|uuid:last|index:last]
 *   gpu-ollama-probe [--lib PATH] --identity N|last
 *
 * --lib: dlopen PATH instead of "libcuda.so.1" (the CPU test driver called
 * directly).  --visible: find device N's identity in a child process, set
 * CUDA_VISIBLE_DEVICES to its UUID ("GPU-...") or to N, re-execute, and
 * check that exactly that device is seen, as device 0.  --identity: print
 * device N's identity line and exit (used by --visible).
 *
 * Output as the GPU suite's cases (tests/gpu/gcase.h): RESULT lines are
 * the identity, compared between native and vgpu; INFO lines (free
 * memory) are not; FAIL lines and exit 1 when a check fails; PATH/NVML
 * lines prove which libcuda was mapped.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vgpu/cuda_types.h"
#include "pathproof.h"

#define OP_DEV_MAX 64
#define OP_IDENT_MAX 512
#define OP_MAPS_LINE_MAX 4352
#define OP_ATTR_CC_MAJOR 75
#define OP_ATTR_CC_MINOR 76
#define OP_ATTR_INTEGRATED 18
#define OP_EXPECT_ENV "VGPU_OLLAMA_PROBE_EXPECT"

typedef CUresult (*op_init_t)(unsigned int);
typedef CUresult (*op_version_t)(int *);
typedef CUresult (*op_count_t)(int *);
typedef CUresult (*op_get_t)(CUdevice *, int);
typedef CUresult (*op_attr_t)(int *, int, CUdevice);
typedef CUresult (*op_uuid_t)(CUuuid *, CUdevice);
typedef CUresult (*op_name_t)(char *, int, CUdevice);
typedef CUresult (*op_ctx_create_v3_t)(CUcontext *, void *, int, unsigned int, CUdevice);
typedef CUresult (*op_mem_info_t)(size_t *, size_t *);
typedef CUresult (*op_ctx_destroy_t)(CUcontext);
typedef CUresult (*op_total_mem_t)(size_t *, CUdevice);
typedef CUresult (*op_bus_id_t)(char *, int, CUdevice);

/* The ten symbols of Ollama's nvcuda probe, in its order. */
struct op_old {
	op_init_t init;
	op_version_t version;
	op_count_t count;
	op_get_t get;
	op_attr_t attr;
	op_uuid_t uuid;
	op_name_t name;
	op_ctx_create_v3_t ctx_create;
	op_mem_info_t mem_info;
	op_ctx_destroy_t ctx_destroy;
};

static const char *const op_old_names[] = {
	"cuInit", "cuDriverGetVersion", "cuDeviceGetCount", "cuDeviceGet",
	"cuDeviceGetAttribute", "cuDeviceGetUuid", "cuDeviceGetName", "cuCtxCreate_v3",
	"cuMemGetInfo_v2", "cuCtxDestroy",
};

static const char *op_lib = "libcuda.so.1";
static int op_failures;
static int op_quiet; /* --identity: RESULT and INFO lines are not wanted */

static void op_line(const char *kind, const char *key, const char *fmt, va_list ap)
{
	if (op_quiet && kind[0] != 'F')
		return;
	printf("%s %s ", kind, key);
	vprintf(fmt, ap);
	printf("\n");
}

__attribute__((format(printf, 2, 3)))
static void op_result(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_line("RESULT", key, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3)))
static void op_info(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_line("INFO", key, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3)))
static void op_fail(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	op_line("FAIL", key, fmt, ap);
	va_end(ap);
	op_failures++;
}

static void op_uuid_text(const CUuuid *u, char *out, size_t len)
{
	const unsigned char *b = (const unsigned char *)u->bytes;

	snprintf(out, len, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
}

/* dlopen and the ten dlsym's; NULL (and a RESULT line saying why) if any is missing. */
static void *op_old_open(struct op_old *o, const char *tag)
{
	void *slots[10], *h;
	char key[64];
	size_t i;
	int missing = 0;

	h = dlopen(op_lib, RTLD_LAZY);
	snprintf(key, sizeof(key), "%s.dlopen", tag);
	op_result(key, "%s", h ? "ok" : "failed");
	if (!h) {
		op_fail(key, "%s", dlerror());
		return NULL;
	}
	for (i = 0; i < sizeof(op_old_names) / sizeof(op_old_names[0]); i++) {
		slots[i] = dlsym(h, op_old_names[i]);
		if (!slots[i]) {
			snprintf(key, sizeof(key), "%s.symbol", tag);
			op_fail(key, "%s missing: Ollama rejects the library", op_old_names[i]);
			missing++;
		}
	}
	snprintf(key, sizeof(key), "%s.symbols", tag);
	op_result(key, "%d/10", 10 - missing);
	if (missing) {
		dlclose(h);
		return NULL;
	}
	memcpy(&o->init, &slots[0], sizeof(void *));
	memcpy(&o->version, &slots[1], sizeof(void *));
	memcpy(&o->count, &slots[2], sizeof(void *));
	memcpy(&o->get, &slots[3], sizeof(void *));
	memcpy(&o->attr, &slots[4], sizeof(void *));
	memcpy(&o->uuid, &slots[5], sizeof(void *));
	memcpy(&o->name, &slots[6], sizeof(void *));
	memcpy(&o->ctx_create, &slots[7], sizeof(void *));
	memcpy(&o->mem_info, &slots[8], sizeof(void *));
	memcpy(&o->ctx_destroy, &slots[9], sizeof(void *));
	return h;
}

/*
 * The old probe's per-device steps.  ident (may be NULL) receives the
 * canonical identity "uuid|name|cc".  Returns 0 or -1 when the device would
 * be dropped by Ollama.
 */
static int op_old_device(const struct op_old *o, const char *tag, int i, char *ident,
			 size_t ident_len, size_t *total_out)
{
	CUdevice dev = -1;
	CUuuid u;
	CUcontext ctx = NULL;
	char key[64], name[96], uuid[64];
	int major = -1, minor = -1;
	size_t free_b = 0, total = 0;
	CUresult r;

#define K(s) (snprintf(key, sizeof(key), "%s.dev%d.%s", tag, i, s), key)
	r = o->get(&dev, i);
	op_result(K("get"), "%d", (int)r);
	if (r != CUDA_SUCCESS) {
		op_fail(key, "cuDeviceGet %d", (int)r);
		return -1;
	}
	op_result(K("cc.rc"), "%d %d", (int)o->attr(&major, OP_ATTR_CC_MAJOR, dev),
		  (int)o->attr(&minor, OP_ATTR_CC_MINOR, dev));
	op_result(K("cc"), "%d.%d", major, minor);
	if (major < 5)
		op_fail(key, "compute capability %d.%d: Ollama calls it too old", major, minor);
	r = o->uuid(&u, dev);
	op_result(K("uuid.rc"), "%d", (int)r);
	if (r == CUDA_SUCCESS) {
		op_uuid_text(&u, uuid, sizeof(uuid));
	} else {
		/* Ollama then names the device by its ordinal. */
		snprintf(uuid, sizeof(uuid), "%d", i);
		op_fail(key, "cuDeviceGetUuid %d", (int)r);
	}
	op_result(K("id"), "%s", uuid);
	memset(name, 0, sizeof(name));
	r = o->name(name, (int)sizeof(name), dev);
	op_result(K("name"), "%d %s", (int)r, name);
	if (r != CUDA_SUCCESS || !name[0])
		op_fail(key, "cuDeviceGetName %d", (int)r);

	r = o->ctx_create(&ctx, NULL, 0, 0, dev);
	op_result(K("ctx_create_v3"), "%d", (int)r);
	if (r != CUDA_SUCCESS) {
		op_fail(key, "cuCtxCreate_v3 %d: Ollama drops the device", (int)r);
		return -1;
	}
	r = o->mem_info(&free_b, &total);
	op_result(K("mem_info.rc"), "%d", (int)r);
	op_result(K("mem_info.total"), "%zu", total);
	op_info(K("mem_info.free"), "%zu", free_b);
	if (r != CUDA_SUCCESS || total == 0 || free_b > total)
		op_fail(key, "cuMemGetInfo_v2 %d free %zu total %zu", (int)r, free_b, total);
	op_result(K("ctx_destroy"), "%d", (int)o->ctx_destroy(ctx));
#undef K
	if (ident)
		snprintf(ident, ident_len, "%s|%s|%d.%d|%zu", uuid, name, major, minor, total);
	if (total_out)
		*total_out = total;
	return 0;
}

/* Ollama's nvcuda bootstrap, then its refresh after a new dlopen. */
static void op_old_probe(size_t *totals, int *n_out)
{
	struct op_old o;
	void *h = op_old_open(&o, "old");
	int v = -1, n = -1, i;
	CUresult r;

	*n_out = -1;
	if (!h)
		return;
	r = o.init(0);
	op_result("old.init", "%d", (int)r);
	if (r != CUDA_SUCCESS) {
		op_fail("old.init", "cuInit %d", (int)r);
		goto out;
	}
	r = o.version(&v);
	op_result("old.driver", "%d %d.%d", (int)r, v / 1000, (v % 1000) / 10);
	r = o.count(&n);
	op_result("old.count", "%d %d", (int)r, n);
	if (r != CUDA_SUCCESS || n < 0 || n > OP_DEV_MAX) {
		op_fail("old.count", "cuDeviceGetCount %d count %d", (int)r, n);
		goto out;
	}
	for (i = 0; i < n; i++)
		op_old_device(&o, "old", i, NULL, 0, &totals[i]);
	*n_out = n;
out:
	dlclose(h);

	/* The refresh: a new dlopen, cuInit again, a context per device. */
	h = op_old_open(&o, "refresh");
	if (!h)
		return;
	op_result("refresh.init", "%d", (int)o.init(0));
	for (i = 0; i < *n_out; i++) {
		CUdevice dev = -1;
		CUcontext ctx = NULL;
		size_t free_b = 0, total = 0;
		char key[64];

		snprintf(key, sizeof(key), "refresh.dev%d", i);
		r = o.get(&dev, i);
		if (r == CUDA_SUCCESS)
			r = o.ctx_create(&ctx, NULL, 0, 0, dev);
		if (r == CUDA_SUCCESS)
			r = o.mem_info(&free_b, &total);
		if (ctx)
			o.ctx_destroy(ctx);
		op_result(key, "%d total %zu", (int)r, total);
		if (r != CUDA_SUCCESS || total != totals[i])
			op_fail(key, "refresh %d, total %zu (bootstrap said %zu)", (int)r, total,
				totals[i]);
	}
	dlclose(h);
}

/* The newer gpu-discover probe; library left open for the proof of path. */
static void *op_new_probe(const size_t *totals, int n_old)
{
	op_init_t init;
	op_version_t version;
	op_count_t count;
	op_get_t get;
	op_attr_t attr;
	op_name_t name_fn;
	op_total_mem_t total_mem;
	op_bus_id_t bus_id;
	void *h = dlopen(op_lib, RTLD_NOW | RTLD_LOCAL), *p[8];
	int v = -1, n = -1, i;
	CUresult r;

	op_result("new.dlopen", "%s", h ? "ok" : "failed");
	if (!h) {
		op_fail("new.dlopen", "%s", dlerror());
		return NULL;
	}
	p[0] = dlsym(h, "cuInit");
	p[1] = dlsym(h, "cuDriverGetVersion");
	p[2] = dlsym(h, "cuDeviceGetCount");
	p[3] = dlsym(h, "cuDeviceGet");
	p[4] = dlsym(h, "cuDeviceGetAttribute");
	p[5] = dlsym(h, "cuDeviceGetName");
	p[6] = dlsym(h, "cuDeviceTotalMem_v2");
	if (!p[6])
		p[6] = dlsym(h, "cuDeviceTotalMem");
	p[7] = dlsym(h, "cuDeviceGetPCIBusId"); /* optional to Ollama */
	for (i = 0; i < 7; i++) {
		if (!p[i]) {
			op_fail("new.symbols", "a required symbol is missing (#%d)", i);
			return h;
		}
	}
	op_result("new.symbols", "ok pci_bus_id=%s", p[7] ? "yes" : "no");
	memcpy(&init, &p[0], sizeof(void *));
	memcpy(&version, &p[1], sizeof(void *));
	memcpy(&count, &p[2], sizeof(void *));
	memcpy(&get, &p[3], sizeof(void *));
	memcpy(&attr, &p[4], sizeof(void *));
	memcpy(&name_fn, &p[5], sizeof(void *));
	memcpy(&total_mem, &p[6], sizeof(void *));
	memcpy(&bus_id, &p[7], sizeof(void *));

	r = init(0);
	op_result("new.init", "%d", (int)r);
	if (r != CUDA_SUCCESS) {
		op_fail("new.init", "cuInit %d", (int)r);
		return h;
	}
	r = version(&v);
	op_result("new.driver", "%d %d", (int)r, v);
	r = count(&n);
	op_result("new.count", "%d %d", (int)r, n);
	if (r != CUDA_SUCCESS || n < 0 || n > OP_DEV_MAX) {
		op_fail("new.count", "cuDeviceGetCount %d count %d", (int)r, n);
		return h;
	}
	if (n != n_old)
		op_fail("new.count", "%d devices, the old probe saw %d", n, n_old);
	for (i = 0; i < n; i++) {
		CUdevice dev = -1;
		int major = -1, minor = -1, integrated = -1;
		char key[64], name[128], bus[32];
		size_t total = 0;
		char *c;

#define K(s) (snprintf(key, sizeof(key), "new.dev%d.%s", i, s), key)
		r = get(&dev, i);
		op_result(K("get"), "%d", (int)r);
		if (r != CUDA_SUCCESS) {
			op_fail(key, "cuDeviceGet %d", (int)r);
			continue;
		}
		op_result(K("attrs.rc"), "%d %d %d", (int)attr(&major, OP_ATTR_CC_MAJOR, dev),
			  (int)attr(&minor, OP_ATTR_CC_MINOR, dev),
			  (int)attr(&integrated, OP_ATTR_INTEGRATED, dev));
		op_result(K("cc"), "%d.%d", major, minor);
		op_result(K("integrated"), "%d", integrated);
		memset(name, 0, sizeof(name));
		op_result(K("name"), "%d %s", (int)name_fn(name, (int)sizeof(name), dev), name);
		r = total_mem(&total, dev);
		op_result(K("total"), "%d %zu", (int)r, total);
		if (r != CUDA_SUCCESS || total == 0)
			op_fail(key, "cuDeviceTotalMem_v2 %d total %zu: Ollama skips the device",
				(int)r, total);
		/* Whether the two totals agree is the driver's business: compared
		 * with the native leg, not judged here. */
		if (i < n_old)
			op_result(K("total.same_as_mem_info"), "%s", total == totals[i] ? "yes" : "no");
		memset(bus, 0, sizeof(bus));
		r = bus_id ? bus_id(bus, (int)sizeof(bus), dev) : CUDA_ERROR_NOT_SUPPORTED;
		for (c = bus; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		op_result(K("pci"), "%d %s", (int)r, bus);
#undef K
	}
	return h;
}

/* Device "last" or a number. */
static int op_ordinal(const char *s, int count)
{
	char *end;
	long v;

	if (strcmp(s, "last") == 0)
		return count - 1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v >= OP_DEV_MAX)
		return -1;
	return (int)v;
}

/* --identity: "IDENT <ordinal> <uuid|name|cc|total>" for device N or the last. */
static int op_identity(const char *which)
{
	char ident[OP_IDENT_MAX];
	struct op_old o;
	void *h;
	int n = 0, i;

	op_quiet = 1;
	h = op_old_open(&o, "identity");
	if (!h || o.init(0) != CUDA_SUCCESS || o.count(&n) != CUDA_SUCCESS)
		return 1;
	i = op_ordinal(which, n);
	if (i < 0 || i >= n || op_old_device(&o, "identity", i, ident, sizeof(ident), NULL) < 0)
		return 1;
	printf("IDENT %d %s\n", i, ident);
	return 0;
}

/* --visible MODE:N: the device's identity from a child run, then this
 * program again with CUDA_VISIBLE_DEVICES set and that identity expected. */
static int op_visible(const char *argv0, const char *spec)
{
	char cmd[4096], line[OP_IDENT_MAX + 32], ident[OP_IDENT_MAX], value[128];
	const char *colon = strchr(spec, ':');
	int ordinal = -1, by_uuid;
	FILE *p;

	if (!colon || (strncmp(spec, "uuid:", 5) != 0 && strncmp(spec, "index:", 6) != 0)) {
		fprintf(stderr, "--visible wants uuid:N, index:N, uuid:last or index:last\n");
		return 2;
	}
	by_uuid = spec[0] == 'u';
	snprintf(cmd, sizeof(cmd), "'/proc/%d/exe' --lib '%s' --identity '%s'", (int)getpid(),
		 op_lib, colon + 1);
	fflush(stdout);
	p = popen(cmd, "r");
	line[0] = '\0';
	if (!p || !fgets(line, sizeof(line), p) ||
	    sscanf(line, "IDENT %d %511[^\n]", &ordinal, ident) != 2) {
		printf("FAIL visible.identity no identity for device %s\n", colon + 1);
		if (p)
			pclose(p);
		return 1;
	}
	pclose(p);
	if (by_uuid) {
		snprintf(value, sizeof(value), "%.*s", (int)strcspn(ident, "|"), ident);
	} else {
		snprintf(value, sizeof(value), "%d", ordinal);
	}
	setenv("CUDA_VISIBLE_DEVICES", value, 1);
	setenv(OP_EXPECT_ENV, ident, 1);
	execl("/proc/self/exe", argv0, "--lib", op_lib, (char *)NULL);
	printf("FAIL visible.exec %s\n", strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	size_t totals[OP_DEV_MAX] = { 0 };
	const char *visible = NULL, *identity = NULL, *expect;
	void *h;
	int n_old = -1, i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--lib") == 0 && i + 1 < argc)
			op_lib = argv[++i];
		else if (strcmp(argv[i], "--visible") == 0 && i + 1 < argc)
			visible = argv[++i];
		else if (strcmp(argv[i], "--identity") == 0 && i + 1 < argc)
			identity = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--lib PATH] [--visible uuid:N|index:N] "
				"[--identity N]\n", argv[0]);
			return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (identity)
		return op_identity(identity);
	if (visible)
		return op_visible(argv[0], visible);

	expect = getenv("CUDA_VISIBLE_DEVICES");
	op_info("visible", "%s", expect ? expect : "(unset)");
	op_old_probe(totals, &n_old);
	h = op_new_probe(totals, n_old);

	/* Under --visible: exactly the chosen device, as device 0. */
	expect = getenv(OP_EXPECT_ENV);
	if (expect) {
		struct op_old o;
		char ident[OP_IDENT_MAX];
		void *hh = op_old_open(&o, "visible");
		int n = -1;

		if (hh && o.init(0) == CUDA_SUCCESS && o.count(&n) == CUDA_SUCCESS && n == 1 &&
		    op_old_device(&o, "visible", 0, ident, sizeof(ident), NULL) == 0) {
			op_result("visible.device0", "%s", ident);
			if (strcmp(ident, expect) != 0)
				op_fail("visible.device0", "is %s, want %s", ident, expect);
		} else {
			op_fail("visible.count", "%d devices with CUDA_VISIBLE_DEVICES=%s, want 1", n,
				getenv("CUDA_VISIBLE_DEVICES"));
		}
		if (hh)
			dlclose(hh);
	}
	if (vg_print_path_proof() < 0)
		op_failures++;
	if (h)
		dlclose(h);
	printf("INFO failures %d\n", op_failures);
	return op_failures ? 1 : 0;
}
