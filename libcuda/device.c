/*
 * Devices: one snapshot at cuInit (VG_OP_SNAPSHOT), then every device query
 * is answered from it, exactly as the host answered.
 *
 * SNAPSHOT reply payload:
 *   u32 ndev (<= LC_DEV_MAX), then per device:
 *     u32 host ordinal
 *     blob name (NUL-terminated, <= LC_NAME_MAX)
 *     16 bytes UUID
 *     blob PCI bus id (NUL-terminated, <= LC_BUSID_MAX)
 *     u64 total memory
 *     u32 nattr (== LC_ATTR_MAX), nattr x (i32 status, i32 value) for attributes 0..nattr-1
 *     i32 LUID status, 8 bytes LUID, u32 node mask
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lc.h"


const struct lc_device *lc_device(int ordinal)
{
	if (ordinal < 0 || ordinal >= lc.ndev)
		return NULL;
	return &lc.dev[ordinal];
}

static int get_cstr(struct vg_rd *r, char *dst, size_t max)
{
	uint32_t n = 0;
	int is_null = 0;
	const char *p = vg_get_blob(r, (uint32_t)max, &n, &is_null);

	if (!p || n == 0 || p[n - 1] != '\0')
		return -1;
	memcpy(dst, p, n);
	return 0;
}

/*
 * CUDA_VISIBLE_DEVICES is applied here, by the driver, as NVIDIA's does:
 * a comma-separated list of indices or GPU-<uuid prefix> tokens; the list
 * stops at the first token that names no device; repeats end it too.
 */
static int uuid_matches(const struct lc_device *d, const char *tok, size_t n)
{
	char s[64];
	const uint8_t *u = d->uuid;
	size_t i, j;

	snprintf(s, sizeof(s), "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
	if (n < 5 || n > strlen(s))
		return 0;
	for (i = 0, j = 0; i < n; i++, j++)
		if (tolower((unsigned char)tok[i]) != tolower((unsigned char)s[j]))
			return 0;
	return 1;
}

static void apply_visible_devices(struct lc_device *all, int nall)
{
	const char *env = getenv("CUDA_VISIBLE_DEVICES");
	int used[LC_DEV_MAX] = { 0 };
	int n = 0;

	if (!env) {
		memcpy(lc.dev, all, sizeof(*all) * (size_t)nall);
		lc.ndev = nall;
		return;
	}
	while (*env) {
		const char *end = env + strcspn(env, ",");
		size_t len;
		int pick = -1, i, matches = 0;

		while (env < end && isspace((unsigned char)*env))
			env++;
		len = (size_t)(end - env);
		while (len && isspace((unsigned char)env[len - 1]))
			len--;
		if (len && isdigit((unsigned char)env[0])) {
			char *e;
			long v = strtol(env, &e, 10);

			if ((size_t)(e - env) == len && v >= 0 && v < nall)
				pick = (int)v;
		} else if (len > 4 && !strncasecmp(env, "GPU-", 4)) {
			for (i = 0; i < nall; i++)
				if (uuid_matches(&all[i], env, len)) {
					pick = i;
					matches++;
				}
			if (matches != 1)
				pick = -1;
		}
		if (pick < 0 || used[pick])
			break;
		used[pick] = 1;
		lc.dev[n++] = all[pick];
		if (!*end)
			break;
		env = end + 1;
	}
	lc.ndev = n;
}

CUresult lc_snapshot(void);
CUresult lc_snapshot(void)
{
	static struct lc_device all[LC_DEV_MAX];
	struct vg_buf *b = lc_scratch(), rep;
	struct vg_rd r;
	CUresult res;
	uint32_t n, i, k;

	if (!b)
		return CUDA_ERROR_NO_DEVICE;
	vg_buf_init(&rep);
	res = lc_rpc(VG_OP_SNAPSHOT, b, &rep);
	if (res != CUDA_SUCCESS)
		goto out;
	vg_rd_init(&r, rep.p, rep.len);
	n = vg_get_u32(&r);
	if (n > LC_DEV_MAX) {
		res = CUDA_ERROR_UNKNOWN;
		goto out;
	}
	memset(all, 0, sizeof(all));
	for (i = 0; i < n; i++) {
		struct lc_device *d = &all[i];
		const void *u;

		d->host_ordinal = (int)vg_get_u32(&r);
		if (get_cstr(&r, d->name, sizeof(d->name)) < 0)
			goto bad;
		u = vg_get_bytes(&r, 16);
		if (!u)
			goto bad;
		memcpy(d->uuid, u, 16);
		if (get_cstr(&r, d->busid, sizeof(d->busid)) < 0)
			goto bad;
		d->total_mem = vg_get_u64(&r);
		if (vg_get_u32(&r) != LC_ATTR_MAX)
			goto bad;
		for (k = 0; k < LC_ATTR_MAX; k++) {
			d->attr_status[k] = (int32_t)vg_get_u32(&r);
			d->attr_value[k] = (int32_t)vg_get_u32(&r);
		}
		d->luid_status = (int32_t)vg_get_u32(&r);
		u = vg_get_bytes(&r, 8);
		if (!u)
			goto bad;
		memcpy(d->luid, u, 8);
		d->luid_mask = vg_get_u32(&r);
	}
	if (r.err)
		goto bad;
	apply_visible_devices(all, (int)n);
	goto out;
bad:
	VG_ERR("malformed device snapshot from the worker");
	res = CUDA_ERROR_UNKNOWN;
out:
	vg_buf_fini(&rep);
	return res;
}

VG_EXPORT CUresult cuDriverGetVersion(int *driverVersion)
{
	if (!driverVersion)
		return CUDA_ERROR_INVALID_VALUE;
	*driverVersion = VGPU_DRIVER_VERSION;
	return CUDA_SUCCESS;
}

/* The common prologue of device queries: session up, pointer and ordinal valid. */
static CUresult dev_lookup(CUdevice dev, const struct lc_device **out)
{
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	*out = lc_device(dev);
	return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

VG_EXPORT CUresult cuDeviceGetCount(int *count)
{
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = lc.ndev;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
	CUresult res = lc_check();

	if (res != CUDA_SUCCESS)
		return res;
	if (!device)
		return CUDA_ERROR_INVALID_VALUE;
	if (ordinal < 0 || ordinal >= lc.ndev)
		return CUDA_ERROR_INVALID_DEVICE;
	*device = ordinal;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!name || len <= 0)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(name, (size_t)len, "%s", d->name);
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!uuid)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(uuid, d->uuid, 16);
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
	return cuDeviceGetUuid(uuid, dev);
}

VG_EXPORT CUresult cuDeviceGetLuid(char *luid, unsigned int *deviceNodeMask, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!luid || !deviceNodeMask)
		return CUDA_ERROR_INVALID_VALUE;
	if (d->luid_status != CUDA_SUCCESS)
		return (CUresult)d->luid_status;
	memcpy(luid, d->luid, 8);
	*deviceNodeMask = d->luid_mask;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!bytes)
		return CUDA_ERROR_INVALID_VALUE;
	*bytes = (size_t)d->total_mem;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!bytes)
		return CUDA_ERROR_INVALID_VALUE;
	/* The old 32-bit form saturates, as the original API did. */
	*bytes = d->total_mem > 0xffffffffu ? 0xffffffffu : (unsigned int)d->total_mem;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pi || (int)attrib <= 0 || (int)attrib >= LC_ATTR_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	if (d->attr_status[attrib] != CUDA_SUCCESS)
		return (CUresult)d->attr_status[attrib];
	*pi = d->attr_value[attrib];
	return CUDA_SUCCESS;
}

static int attr(const struct lc_device *d, int a)
{
	return d->attr_status[a] == CUDA_SUCCESS ? d->attr_value[a] : 0;
}

VG_EXPORT CUresult cuDeviceComputeCapability(int *major, int *minor, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!major || !minor)
		return CUDA_ERROR_INVALID_VALUE;
	*major = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
	*minor = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGetProperties(CUdevprop *prop, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	if (!prop)
		return CUDA_ERROR_INVALID_VALUE;
	memset(prop, 0, sizeof(*prop));
	prop->maxThreadsPerBlock = attr(d, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
	prop->maxThreadsDim[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X);
	prop->maxThreadsDim[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y);
	prop->maxThreadsDim[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z);
	prop->maxGridSize[0] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X);
	prop->maxGridSize[1] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y);
	prop->maxGridSize[2] = attr(d, CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z);
	prop->sharedMemPerBlock = attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK);
	prop->totalConstantMemory = attr(d, CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY);
	prop->SIMDWidth = attr(d, CU_DEVICE_ATTRIBUTE_WARP_SIZE);
	prop->memPitch = attr(d, CU_DEVICE_ATTRIBUTE_MAX_PITCH);
	prop->regsPerBlock = attr(d, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK);
	prop->clockRate = attr(d, CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
	prop->textureAlign = attr(d, CU_DEVICE_ATTRIBUTE_TEXTURE_ALIGNMENT);
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
	const struct lc_device *d;
	CUresult res = dev_lookup(dev, &d);

	if (res != CUDA_SUCCESS)
		return res;
	/* The real driver refuses a buffer that cannot hold the whole id. */
	if (!pciBusId || len <= 0 || (size_t)len < strlen(d->busid) + 1)
		return CUDA_ERROR_INVALID_VALUE;
	snprintf(pciBusId, (size_t)len, "%s", d->busid);
	return CUDA_SUCCESS;
}

/* "[domain:]bus:device.function", hex fields. */
static int parse_busid(const char *s, unsigned *dom, unsigned *bus, unsigned *dev, unsigned *fn)
{
	char tail;

	if (sscanf(s, "%x:%x:%x.%x%c", dom, bus, dev, fn, &tail) == 4)
		return 0;
	*dom = 0;
	if (sscanf(s, "%x:%x.%x%c", bus, dev, fn, &tail) == 3)
		return 0;
	return -1;
}

VG_EXPORT CUresult cuDeviceGetByPCIBusId(CUdevice *dev, const char *pciBusId)
{
	unsigned a[4], b[4];
	CUresult res = lc_check();
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!dev || !pciBusId || parse_busid(pciBusId, &a[0], &a[1], &a[2], &a[3]) < 0)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < lc.ndev; i++) {
		if (parse_busid(lc.dev[i].busid, &b[0], &b[1], &b[2], &b[3]) < 0)
			continue;
		if (!memcmp(a, b, sizeof(a))) {
			*dev = i;
			return CUDA_SUCCESS;
		}
	}
	return CUDA_ERROR_INVALID_DEVICE;
}
