/* SPDX-License-Identifier: MIT */
/*
 * Device information: count, name, UUID, PCI bus id, total memory and every
 * attribute, for every device.  Through vgpu these come from the snapshot
 * taken at cuInit, so they must equal what NVIDIA's driver says natively.
 */
#include <stdio.h>
#include <string.h>

#include "gcase.h"

/* Every CUdevice_attribute value of CUDA 13.0 (the enum's MAX is one past). */
#define GC_ATTR_LAST ((int)CU_DEVICE_ATTRIBUTE_MAX - 1)

static void gc_device_one(int ordinal)
{
	char key[96], name[256], bus[32], back[32];
	CUdevice dev = -1, again = -1;
	CUuuid uuid;
	size_t mem = 0;
	CUresult r;
	int a, v, major = -1, minor = -1;

#define K(s) (snprintf(key, sizeof(key), "dev%d.%s", ordinal, s), key)
	gc_must(K("get"), cuDeviceGet(&dev, ordinal));
	gc_check(K("get.ordinal"), dev == ordinal);

	memset(name, 0, sizeof(name));
	gc_must(K("name"), cuDeviceGetName(name, sizeof(name), dev));
	gc_check(K("name.nonempty"), name[0] != '\0');
	gc_hw(K("name.value"), "%s", name);

	gc_must(K("uuid"), cuDeviceGetUuid(&uuid, dev));
	snprintf(name, sizeof(name), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 (unsigned char)uuid.bytes[0], (unsigned char)uuid.bytes[1],
		 (unsigned char)uuid.bytes[2], (unsigned char)uuid.bytes[3],
		 (unsigned char)uuid.bytes[4], (unsigned char)uuid.bytes[5],
		 (unsigned char)uuid.bytes[6], (unsigned char)uuid.bytes[7],
		 (unsigned char)uuid.bytes[8], (unsigned char)uuid.bytes[9],
		 (unsigned char)uuid.bytes[10], (unsigned char)uuid.bytes[11],
		 (unsigned char)uuid.bytes[12], (unsigned char)uuid.bytes[13],
		 (unsigned char)uuid.bytes[14], (unsigned char)uuid.bytes[15]);
	gc_hw(K("uuid.value"), "GPU-%s", name);

	memset(bus, 0, sizeof(bus));
	gc_must(K("pci_bus_id"), cuDeviceGetPCIBusId(bus, sizeof(bus), dev));
	gc_hw(K("pci_bus_id.value"), "%s", bus);
	gc_expect(K("by_pci_bus_id"), cuDeviceGetByPCIBusId(&again, bus), CUDA_SUCCESS);
	gc_check(K("by_pci_bus_id.same"), again == dev);
	/* Too small a buffer is the caller's problem: the driver truncates. */
	memset(back, 0, sizeof(back));
	gc_result(K("pci_bus_id.short"), "%d", (int)cuDeviceGetPCIBusId(back, 8, dev));

	gc_must(K("total_mem"), cuDeviceTotalMem(&mem, dev));
	gc_check(K("total_mem.nonzero"), mem > 0);
	gc_hw(K("total_mem.value"), "%zu", mem);

	for (a = 1; a <= GC_ATTR_LAST; a++) {
		char akey[96];

		v = -12345;
		r = cuDeviceGetAttribute(&v, (CUdevice_attribute)a, dev);
		snprintf(akey, sizeof(akey), "dev%d.attr.%d", ordinal, a);
		/* Which attributes exist is the driver's version, not the card. */
		gc_result(akey, "%d", (int)r);
		snprintf(akey, sizeof(akey), "dev%d.attr.%d.value", ordinal, a);
		if (r == CUDA_SUCCESS)
			gc_hw(akey, "%d", v);
	}
	cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
	cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
	gc_hw(K("cc"), "%d.%d", major, minor);
	gc_check(K("cc.sane"), major >= 1);
	gc_expect_err(K("attr.bad"),
		      cuDeviceGetAttribute(&v, (CUdevice_attribute)100000, dev),
		      CUDA_ERROR_INVALID_VALUE);
#undef K
}

int main(void)
{
	int n = -1, i, ver = -1;
	CUdevice dev;

	gc_begin("device");
	/* Both answer before cuInit, as the real driver does. */
	gc_expect("version.before_init", cuDriverGetVersion(&ver), CUDA_SUCCESS);
	gc_expect_err("count.before_init", cuDeviceGetCount(&n),
		      CUDA_ERROR_NOT_INITIALIZED);
	gc_must("init", cuInit(0));
	gc_expect("version", cuDriverGetVersion(&ver), CUDA_SUCCESS);
	/* Ours is a compiled-in constant; the host's driver may be newer. */
	gc_info("version.value", "%d", ver);
	gc_check("version.at_least_13000", ver >= 13000);

	gc_must("count", cuDeviceGetCount(&n));
	gc_hw("count.value", "%d", n);
	gc_check("count.positive", n > 0);
	for (i = 0; i < n && i < 16; i++)
		gc_device_one(i);
	gc_expect_err("get.past_end", cuDeviceGet(&dev, n), CUDA_ERROR_INVALID_DEVICE);
	return gc_end();
}
