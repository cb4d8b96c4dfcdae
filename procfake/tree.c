/*
 * The fake nodes: every path procfake answers for, with its type, content and
 * metadata, built once from the identity.  Contents follow the formats of
 * NVIDIA's kernel module and of Linux's PCI sysfs (research/ollama-gpu.md §2),
 * tabs included.  Directories that also exist for real (/dev, /sys/module…)
 * are listed here too: dir.c merges their real entries with the fake ones.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "pf.h"

#if defined(__x86_64__)
#define PF_ARCH "x86_64"
#elif defined(__aarch64__)
#define PF_ARCH "aarch64"
#else
#define PF_ARCH "unknown"
#endif

int pf_path_canon(const char *in, char *out, size_t size)
{
	size_t o = 0;
	const char *p = in;

	if (!in || in[0] != '/' || size < 2)
		return -EINVAL;
	while (*p) {
		const char *s;
		size_t l;

		while (*p == '/')
			p++;
		s = p;
		while (*p && *p != '/')
			p++;
		l = (size_t)(p - s);
		if (l == 0 || (l == 1 && s[0] == '.'))
			continue;
		if (l == 2 && s[0] == '.' && s[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
			continue;
		}
		if (o + 1 + l + 1 > size)
			return -ENAMETOOLONG;
		out[o++] = '/';
		memcpy(out + o, s, l);
		o += l;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return 0;
}

__attribute__((format(printf, 3, 4)))
static const char *pf_arena_printf(struct pf_tree *t, unsigned *len, const char *fmt, ...)
{
	size_t room = sizeof(t->arena) - t->used;
	char *s = t->arena + t->used;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(s, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return NULL;
	t->used += (unsigned)n + 1;
	if (len)
		*len = (unsigned)n;
	return s;
}

static const char *pf_arena_copy(struct pf_tree *t, const void *data, unsigned len)
{
	char *s = t->arena + t->used;

	if (len + 1 > sizeof(t->arena) - t->used)
		return NULL;
	memcpy(s, data, len);
	s[len] = '\0';
	t->used += len + 1;
	return s;
}

/* FNV-1a: stable, distinct inode numbers without a counter. */
static unsigned long pf_ino(const char *path)
{
	unsigned long long h = 1469598103934665603ull;

	while (*path) {
		h ^= (unsigned char)*path++;
		h *= 1099511628211ull;
	}
	return (unsigned long)(h | (1ull << 62));
}

static const struct pf_node *pf_tree_find(const struct pf_tree *t, const char *canon)
{
	unsigned i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->node[i].path, canon) == 0)
			return &t->node[i];
	return NULL;
}

static struct pf_node *pf_add(struct pf_tree *t, unsigned char type, unsigned short mode,
			      const char *path)
{
	struct pf_node *n;
	char canon[PF_PATH_MAX];

	if (pf_path_canon(path, canon, sizeof(canon)))
		return NULL;
	n = (struct pf_node *)pf_tree_find(t, canon);
	if (n)
		return n->type == type ? n : NULL;
	if (t->n == PF_NODE_MAX)
		return NULL;
	n = &t->node[t->n++];
	memset(n, 0, sizeof(*n));
	memcpy(n->path, canon, strlen(canon) + 1);
	n->type = type;
	n->mode = mode;
	n->ino = pf_ino(canon);
	return n;
}

static int pf_add_dir(struct pf_tree *t, const char *path)
{
	return pf_add(t, PF_DIR, 0555, path) ? 0 : -ENOSPC;
}

static int pf_add_file(struct pf_tree *t, const char *path, const char *data, unsigned len)
{
	struct pf_node *n;

	if (!data)
		return -ENOSPC;
	n = pf_add(t, PF_FILE, 0444, path);
	if (!n)
		return -ENOSPC;
	n->data = data;
	n->len = len;
	/* proc files report no size; sysfs attributes report a page */
	n->size = strncmp(path, "/proc/", 6) == 0 ? 0 : 4096;
	return 0;
}

static int pf_add_chr(struct pf_tree *t, const char *path, unsigned major, unsigned minor)
{
	struct pf_node *n = pf_add(t, PF_CHR, 0666, path);

	if (!n)
		return -ENOSPC;
	n->major = major;
	n->minor = minor;
	return 0;
}

static int pf_add_link(struct pf_tree *t, const char *path, const char *text)
{
	char joined[PF_PATH_MAX * 2], canon[PF_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct pf_node *n;
	unsigned len;

	if (!slash || snprintf(joined, sizeof(joined), "%.*s/%s",
			       (int)(slash - path), path, text) >= (int)sizeof(joined))
		return -ENAMETOOLONG;
	if (pf_path_canon(joined, canon, sizeof(canon)))
		return -ENAMETOOLONG;
	n = pf_add(t, PF_LINK, 0777, path);
	if (!n)
		return -ENOSPC;
	n->data = pf_arena_printf(t, &len, "%s", text);
	n->target = pf_arena_printf(t, NULL, "%s", canon);
	if (!n->data || !n->target)
		return -ENOSPC;
	n->len = len;
	n->size = 0;	/* sysfs links report no size */
	return 0;
}

static void pf_bdf(const struct pf_gpu *g, char *out, size_t size)
{
	snprintf(out, size, "%04x:%02x:%02x.%x", g->domain, g->bus, g->dev, g->fn);
}

/*
 * A fake address must not shadow a real device: move the GPU to the next free
 * bus number of its domain (free of real devices and of the other fake GPUs).
 */
static int pf_gpu_place(struct pf_identity *id, unsigned i, pf_exists_fn exists)
{
	struct pf_gpu *g = &id->gpu[i];
	unsigned tries, j;

	for (tries = 0; tries < 256; tries++) {
		char path[PF_PATH_MAX], bdf[32];
		int clash = 0;

		for (j = 0; j < i; j++) {
			const struct pf_gpu *h = &id->gpu[j];

			if (h->domain == g->domain && h->bus == g->bus && h->dev == g->dev &&
			    h->fn == g->fn)
				clash = 1;
		}
		pf_bdf(g, bdf, sizeof(bdf));
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
		if (!clash && !exists(path))
			return 0;
		g->bus = (g->bus + 1) & 0xff;
	}
	return -EBUSY;
}

static int pf_build_proc(struct pf_tree *t, const struct pf_identity *id)
{
	const char *s;
	unsigned len, i;
	int rc = 0;

	rc |= pf_add_dir(t, "/proc/driver");
	rc |= pf_add_dir(t, "/proc/driver/nvidia");
	rc |= pf_add_dir(t, "/proc/driver/nvidia/gpus");
	s = pf_arena_printf(t, &len,
		"NVRM version: NVIDIA UNIX Open Kernel Module for %s  %s  Release Build  "
		"(vgpu)  Thu Jan  1 00:00:00 UTC 2026\n"
		"GCC version:  gcc version 12.2.0 (GCC)\n", PF_ARCH, id->driver_version);
	rc |= pf_add_file(t, "/proc/driver/nvidia/version", s, len);
	/* ModifyDeviceFiles: 0 keeps a real NVIDIA userspace from creating /dev nodes. */
	s = pf_arena_printf(t, &len,
		"ResmanDebugLevel: 4294967295\n"
		"RmLogonRC: 1\n"
		"ModifyDeviceFiles: 0\n"
		"DeviceFileUID: 0\n"
		"DeviceFileGID: 0\n"
		"DeviceFileMode: 438\n"
		"InitializeSystemMemoryAllocations: 1\n"
		"UsePageAttributeTable: 4294967295\n"
		"EnableMSI: 1\n"
		"EnableStreamMemOPs: 0\n"
		"EnableUserNUMAManagement: 1\n"
		"NvLinkDisable: 0\n"
		"RmProfilingAdminOnly: 1\n"
		"PreserveVideoMemoryAllocations: 0\n"
		"DynamicPowerManagement: 3\n"
		"RegisterPCIDriver: 1\n"
		"EnableGpuFirmware: 18\n"
		"EnableGpuFirmwareLogs: 2\n"
		"OpenRmEnableUnsupportedGpus: 1\n"
		"RegistryDwords: \"\"\n"
		"RegistryDwordsPerDevice: \"\"\n"
		"RmMsg: \"\"\n"
		"GpuBlacklist: \"\"\n"
		"TemporaryFilePath: \"\"\n"
		"ExcludedGpus: \"\"\n");
	rc |= pf_add_file(t, "/proc/driver/nvidia/params", s, len);

	for (i = 0; i < id->ngpus; i++) {
		const struct pf_gpu *g = &id->gpu[i];
		char bdf[32], path[PF_PATH_MAX];

		pf_bdf(g, bdf, sizeof(bdf));
		snprintf(path, sizeof(path), "/proc/driver/nvidia/gpus/%s", bdf);
		rc |= pf_add_dir(t, path);
		s = pf_arena_printf(t, &len,
			"Model: \t\t %s\n"
			"IRQ:   \t\t %u\n"
			"GPU UUID: \t %s\n"
			"Video BIOS: \t %s\n"
			"Bus Type: \t PCIe\n"
			"DMA Size: \t 52 bits\n"
			"DMA Mask: \t 0xfffffffffffff\n"
			"Bus Location: \t %s\n"
			"Device Minor: \t %u\n"
			"GPU Firmware: \t %s\n"
			"GPU Excluded:\t No\n",
			g->name, g->irq, g->uuid, g->vbios, bdf, i, id->driver_version);
		snprintf(path, sizeof(path), "/proc/driver/nvidia/gpus/%s/information", bdf);
		rc |= pf_add_file(t, path, s, len);
	}
	return rc ? -ENOSPC : 0;
}

/* The first 64 bytes of configuration space: a type 0 header, little-endian. */
static void pf_config_space(const struct pf_gpu *g, unsigned char *c)
{
	memset(c, 0, 64);
	c[0x00] = 0xde;
	c[0x01] = 0x10;
	c[0x02] = (unsigned char)g->pci_device_id;
	c[0x03] = (unsigned char)(g->pci_device_id >> 8);
	c[0x04] = 0x06;		/* memory space, bus master */
	c[0x06] = 0x10;		/* capability list present */
	c[0x08] = 0xa1;		/* revision */
	c[0x0a] = 0x02;		/* subclass: 3D controller */
	c[0x0b] = 0x03;		/* class: display */
	c[0x2c] = (unsigned char)g->subsys_vendor_id;
	c[0x2d] = (unsigned char)(g->subsys_vendor_id >> 8);
	c[0x2e] = (unsigned char)g->subsys_device_id;
	c[0x2f] = (unsigned char)(g->subsys_device_id >> 8);
	c[0x3d] = 0x01;		/* interrupt pin A */
}

static int pf_build_pci(struct pf_tree *t, const struct pf_gpu *g)
{
	char bdf[32], dir[PF_PATH_MAX], path[PF_PATH_MAX], text[PF_PATH_MAX];
	unsigned char config[64];
	const char *s;
	unsigned len;
	int rc = 0;

	pf_bdf(g, bdf, sizeof(bdf));
	rc |= pf_add_dir(t, "/sys/bus/pci/devices");
	rc |= pf_add_dir(t, "/sys/devices");
	snprintf(dir, sizeof(dir), "/sys/devices/pci%04x:%02x", g->domain, g->bus);
	rc |= pf_add_dir(t, dir);
	snprintf(dir, sizeof(dir), "/sys/devices/pci%04x:%02x/%s", g->domain, g->bus, bdf);
	rc |= pf_add_dir(t, dir);
	/* sysfs lists devices as links into /sys/devices, as the kernel does */
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	snprintf(text, sizeof(text), "../../../devices/pci%04x:%02x/%s", g->domain, g->bus, bdf);
	rc |= pf_add_link(t, path, text);

	/* the driver binding, which lspci -k and udev-like tools read */
	snprintf(path, sizeof(path), "%s/driver", dir);
	rc |= pf_add_link(t, path, "../../../bus/pci/drivers/nvidia");
	rc |= pf_add_dir(t, "/sys/bus/pci/drivers");
	rc |= pf_add_dir(t, "/sys/bus/pci/drivers/nvidia");
	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/nvidia/%s", bdf);
	snprintf(text, sizeof(text), "../../../../devices/pci%04x:%02x/%s", g->domain, g->bus, bdf);
	rc |= pf_add_link(t, path, text);

#define PF_ATTR(name, ...) do {						\
		s = pf_arena_printf(t, &len, __VA_ARGS__);		\
		snprintf(path, sizeof(path), "%s/%s", dir, name);	\
		rc |= pf_add_file(t, path, s, len);			\
	} while (0)
	PF_ATTR("vendor", "0x10de\n");
	PF_ATTR("device", "0x%04x\n", g->pci_device_id);
	PF_ATTR("class", "0x030200\n");
	PF_ATTR("subsystem_vendor", "0x%04x\n", g->subsys_vendor_id);
	PF_ATTR("subsystem_device", "0x%04x\n", g->subsys_device_id);
	PF_ATTR("revision", "0xa1\n");
	PF_ATTR("irq", "%u\n", g->irq);
	PF_ATTR("numa_node", "-1\n");
	PF_ATTR("enable", "1\n");
	PF_ATTR("uevent", "DRIVER=nvidia\nPCI_CLASS=30200\nPCI_ID=10DE:%04X\n"
		"PCI_SUBSYS_ID=%04X:%04X\nPCI_SLOT_NAME=%s\nMODALIAS=pci:v000010DEd0000%04X"
		"sv0000%04Xsd0000%04Xbc03sc02i00\n",
		g->pci_device_id, g->subsys_vendor_id, g->subsys_device_id, bdf,
		g->pci_device_id, g->subsys_vendor_id, g->subsys_device_id);
#undef PF_ATTR
	pf_config_space(g, config);
	snprintf(path, sizeof(path), "%s/config", dir);
	rc |= pf_add_file(t, path, pf_arena_copy(t, config, sizeof(config)), sizeof(config));
	return rc ? -ENOSPC : 0;
}

static int pf_build_module_dev(struct pf_tree *t, const struct pf_identity *id)
{
	char path[PF_PATH_MAX];
	const char *s;
	unsigned len, i;
	int rc = 0;

	rc |= pf_add_dir(t, "/sys/module");
	rc |= pf_add_dir(t, "/sys/module/nvidia");
	s = pf_arena_printf(t, &len, "%s\n", id->driver_version);
	rc |= pf_add_file(t, "/sys/module/nvidia/version", s, len);
	s = pf_arena_printf(t, &len, "live\n");
	rc |= pf_add_file(t, "/sys/module/nvidia/initstate", s, len);

	rc |= pf_add_dir(t, "/dev");
	rc |= pf_add_chr(t, "/dev/nvidiactl", PF_NV_MAJOR, PF_CTL_MINOR);
	rc |= pf_add_chr(t, "/dev/nvidia-uvm", PF_UVM_MAJOR, 0);
	for (i = 0; i < id->ngpus; i++) {
		snprintf(path, sizeof(path), "/dev/nvidia%u", i);
		rc |= pf_add_chr(t, path, PF_NV_MAJOR, i);
	}
	return rc ? -ENOSPC : 0;
}

int pf_tree_build(struct pf_tree *t, struct pf_identity *id, pf_exists_fn exists)
{
	unsigned i;
	int rc;

	t->n = 0;
	t->used = 0;
	for (i = 0; i < id->ngpus; i++) {
		rc = pf_gpu_place(id, i, exists);
		if (rc)
			goto err;
	}
	rc = pf_build_proc(t, id);
	for (i = 0; rc == 0 && i < id->ngpus; i++)
		rc = pf_build_pci(t, &id->gpu[i]);
	if (rc == 0)
		rc = pf_build_module_dev(t, id);
	if (rc)
		goto err;
	return 0;
err:
	t->n = 0;
	t->used = 0;
	return rc;
}

const struct pf_node *pf_tree_lookup(const struct pf_tree *t, const char *path, int follow)
{
	char canon[PF_PATH_MAX], next[PF_PATH_MAX];
	unsigned hops, i;

	size_t len = strlen(path);

	if (pf_path_canon(path, canon, sizeof(canon)))
		return NULL;
	/* "link/" and "link/." name the directory the link points to, as in the kernel */
	if ((len > 0 && path[len - 1] == '/') ||
	    (len > 1 && path[len - 1] == '.' && path[len - 2] == '/'))
		follow = 1;
	for (hops = 0; hops < 8; hops++) {
		const struct pf_node *link = NULL;
		size_t pl = 0;

		for (i = 0; i < t->n; i++) {
			const struct pf_node *n = &t->node[i];

			if (n->type != PF_LINK)
				continue;
			pl = strlen(n->path);
			if (strncmp(canon, n->path, pl) == 0 &&
			    (canon[pl] == '/' || (canon[pl] == '\0' && follow))) {
				link = n;
				break;
			}
		}
		if (!link)
			return pf_tree_find(t, canon);
		if (snprintf(next, sizeof(next), "%s%s", link->target, canon + pl) >=
		    (int)sizeof(next))
			return NULL;
		memcpy(canon, next, strlen(next) + 1);
	}
	return NULL;
}

const char *pf_node_name(const struct pf_node *n)
{
	return strrchr(n->path, '/') + 1;
}

const struct pf_node *pf_tree_child(const struct pf_tree *t, const struct pf_node *dir,
				    unsigned idx)
{
	size_t dl = strlen(dir->path);
	unsigned i;

	if (dl == 1)
		dl = 0;	/* the root's children start right after its '/' */
	for (i = 0; i < t->n; i++) {
		const struct pf_node *n = &t->node[i];

		if (strncmp(n->path, dir->path, dl) != 0 || n->path[dl] != '/' ||
		    n->path[dl + 1] == '\0' || strchr(n->path + dl + 1, '/'))
			continue;
		if (idx-- == 0)
			return n;
	}
	return NULL;
}
