/*
 * The identity file (/run/vgpu/identity): key=value lines, described in
 * the README ("The identity file").  Parsed without the heap or stdio, because it runs in
 * a constructor of arbitrary programs; anything malformed rejects the whole
 * file, so a half-understood identity is never shown.
 */
#include <errno.h>
#include <string.h>

#include "pf.h"

enum {
	PF_K_NAME = 1u << 0,
	PF_K_UUID = 1u << 1,
	PF_K_BUSID = 1u << 2,
	PF_K_MEMORY = 1u << 3,
	PF_K_DEVID = 1u << 4,
	PF_K_SUBVEN = 1u << 5,
	PF_K_SUBDEV = 1u << 6,
	PF_K_VBIOS = 1u << 7,
	PF_K_IRQ = 1u << 8,
	PF_K_DRIVER = 1u << 16,
	PF_K_CUDA = 1u << 17,
};

#define PF_K_GPU_REQUIRED (PF_K_NAME | PF_K_UUID | PF_K_BUSID)

static int pf_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Unsigned number: decimal, or hexadecimal with 0x; the whole value must be used. */
static int pf_parse_ull(const char *v, size_t len, unsigned long long max,
			unsigned long long *out)
{
	unsigned long long x = 0;
	unsigned base = 10;
	size_t i = 0;

	if (len > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == len)
		return -EINVAL;
	for (; i < len; i++) {
		int d = pf_hex(v[i]);

		if (d < 0 || (unsigned)d >= base)
			return -EINVAL;
		if (x > (max - (unsigned)d) / base)
			return -EINVAL;
		x = x * base + (unsigned)d;
	}
	*out = x;
	return 0;
}

static int pf_parse_uint(const char *v, size_t len, unsigned max, unsigned *out)
{
	unsigned long long x;
	int rc = pf_parse_ull(v, len, max, &x);

	if (rc == 0)
		*out = (unsigned)x;
	return rc;
}

/* Exactly n hex digits. */
static int pf_parse_hexn(const char *v, size_t n, unsigned *out)
{
	unsigned x = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		int d = pf_hex(v[i]);

		if (d < 0)
			return -EINVAL;
		x = x * 16 + (unsigned)d;
	}
	*out = x;
	return 0;
}

/* CUDA's "%08x:%02x:%02x.%x" or sysfs's "%04x:%02x:%02x.%x". */
static int pf_parse_busid(const char *v, size_t len, struct pf_gpu *g)
{
	size_t dl;

	if (len == 16)
		dl = 8;
	else if (len == 12)
		dl = 4;
	else
		return -EINVAL;
	if (v[dl] != ':' || v[dl + 3] != ':' || v[dl + 6] != '.')
		return -EINVAL;
	if (pf_parse_hexn(v, dl, &g->domain) || pf_parse_hexn(v + dl + 1, 2, &g->bus) ||
	    pf_parse_hexn(v + dl + 4, 2, &g->dev) || pf_parse_hexn(v + dl + 7, 1, &g->fn))
		return -EINVAL;
	/* sysfs names have four domain digits; device numbers have five bits, functions three. */
	if (g->domain > 0xffff || g->dev > 0x1f || g->fn > 7)
		return -EINVAL;
	return 0;
}

static int pf_parse_uuid(const char *v, size_t len, char *out)
{
	static const char shape[] = "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	if (len != PF_UUID_LEN)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (shape[i] == 'x') {
			if (pf_hex(v[i]) < 0)
				return -EINVAL;
			/* NVIDIA prints UUIDs in lower case. */
			out[i] = (v[i] >= 'A' && v[i] <= 'F') ? (char)(v[i] - 'A' + 'a') : v[i];
		} else if (v[i] != shape[i]) {
			return -EINVAL;
		} else {
			out[i] = v[i];
		}
	}
	out[len] = '\0';
	return 0;
}

/* Printable text without tabs (they would break the information file's layout). */
static int pf_parse_text(const char *v, size_t len, char *out, size_t size)
{
	size_t i;

	if (len == 0 || len >= size)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return -EINVAL;
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

/* Digits and dots, starting with a digit: "580.159.04". */
static int pf_parse_version(const char *v, size_t len, char *out, size_t size)
{
	size_t i;

	if (len == 0 || len >= size || v[0] < '0' || v[0] > '9')
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || v[i] == '.'))
			return -EINVAL;
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

static int pf_key_is(const char *k, size_t kl, const char *name)
{
	return strlen(name) == kl && memcmp(k, name, kl) == 0;
}

static int pf_set_gpu_key(struct pf_gpu *g, const char *k, size_t kl, const char *v, size_t vl)
{
	unsigned bit;
	int rc;

	if (pf_key_is(k, kl, "name")) {
		bit = PF_K_NAME;
		rc = pf_parse_text(v, vl, g->name, sizeof(g->name));
	} else if (pf_key_is(k, kl, "uuid")) {
		bit = PF_K_UUID;
		rc = pf_parse_uuid(v, vl, g->uuid);
	} else if (pf_key_is(k, kl, "pci_bus_id")) {
		bit = PF_K_BUSID;
		rc = pf_parse_busid(v, vl, g);
	} else if (pf_key_is(k, kl, "memory_total")) {
		bit = PF_K_MEMORY;
		rc = pf_parse_ull(v, vl, ~0ull, &g->memory_total);
	} else if (pf_key_is(k, kl, "pci_device_id")) {
		bit = PF_K_DEVID;
		rc = pf_parse_uint(v, vl, 0xffff, &g->pci_device_id);
	} else if (pf_key_is(k, kl, "pci_subsystem_vendor_id")) {
		bit = PF_K_SUBVEN;
		rc = pf_parse_uint(v, vl, 0xffff, &g->subsys_vendor_id);
	} else if (pf_key_is(k, kl, "pci_subsystem_device_id")) {
		bit = PF_K_SUBDEV;
		rc = pf_parse_uint(v, vl, 0xffff, &g->subsys_device_id);
	} else if (pf_key_is(k, kl, "vbios_version")) {
		bit = PF_K_VBIOS;
		rc = pf_parse_text(v, vl, g->vbios, sizeof(g->vbios));
	} else if (pf_key_is(k, kl, "irq")) {
		bit = PF_K_IRQ;
		rc = pf_parse_uint(v, vl, 0xffffff, &g->irq);
	} else {
		return 0;	/* unknown keys are left to newer readers */
	}
	if (rc)
		return rc;
	if (g->seen & bit)
		return -EINVAL;	/* a key given twice (or in both forms) */
	g->seen |= bit;
	return 0;
}

static int pf_set_global_key(struct pf_identity *id, unsigned bit, const char *v, size_t vl)
{
	int rc;

	if (bit == PF_K_DRIVER)
		rc = pf_parse_version(v, vl, id->driver_version, sizeof(id->driver_version));
	else
		rc = pf_parse_uint(v, vl, 999999, &id->cuda_version);
	if (rc)
		return rc;
	if (id->seen & bit)
		return -EINVAL;
	id->seen |= bit;
	return 0;
}

/* "gpu.N.key": sets *idx and the key's span; 0 when the key has no such prefix. */
static int pf_split_gpu_key(const char **k, size_t *kl, unsigned *idx)
{
	const char *p = *k;
	size_t n = *kl, i = 4;

	if (n < 4 || memcmp(p, "gpu.", 4) != 0)
		return 0;
	if (i >= n || p[i] < '0' || p[i] > '9')
		return -EINVAL;
	*idx = (unsigned)(p[i] - '0');
	i++;
	if (i < n && p[i] >= '0' && p[i] <= '9')
		return -EINVAL;	/* one digit: PF_GPU_MAX is below ten */
	if (i >= n || p[i] != '.' || i + 1 >= n)
		return -EINVAL;
	if (*idx >= PF_GPU_MAX)
		return -EINVAL;
	*k = p + i + 1;
	*kl = n - i - 1;
	return 1;
}

static int pf_parse_line(struct pf_identity *id, const char *s, size_t len, unsigned *max_idx)
{
	const char *eq = memchr(s, '=', len);
	const char *k = s, *v;
	size_t kl, vl;
	unsigned idx = 0;
	int rc;

	if (!eq || eq == s)
		return -EINVAL;
	kl = (size_t)(eq - s);
	v = eq + 1;
	vl = len - kl - 1;

	if (pf_key_is(k, kl, "driver_version"))
		return pf_set_global_key(id, PF_K_DRIVER, v, vl);
	if (pf_key_is(k, kl, "cuda_version"))
		return pf_set_global_key(id, PF_K_CUDA, v, vl);

	rc = pf_split_gpu_key(&k, &kl, &idx);
	if (rc < 0)
		return rc;
	if (idx + 1 > *max_idx)
		*max_idx = idx + 1;
	return pf_set_gpu_key(&id->gpu[idx], k, kl, v, vl);
}

static int pf_identity_check(struct pf_identity *id, unsigned count)
{
	unsigned i, j;

	if (!(id->seen & PF_K_DRIVER) || count == 0)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		struct pf_gpu *g = &id->gpu[i];

		if ((g->seen & PF_K_GPU_REQUIRED) != PF_K_GPU_REQUIRED)
			return -EINVAL;
		for (j = 0; j < i; j++) {
			const struct pf_gpu *h = &id->gpu[j];

			if (h->domain == g->domain && h->bus == g->bus &&
			    h->dev == g->dev && h->fn == g->fn)
				return -EINVAL;
			if (strcmp(h->uuid, g->uuid) == 0)
				return -EINVAL;
		}
		if (!(g->seen & PF_K_SUBVEN))
			g->subsys_vendor_id = 0x10de;
		if (!(g->seen & PF_K_VBIOS))
			memcpy(g->vbios, "??.??.??.??.??", sizeof("??.??.??.??.??"));
	}
	id->ngpus = count;
	return 0;
}

int pf_identity_parse(const char *buf, size_t len, struct pf_identity *id)
{
	unsigned count = 0;
	size_t pos = 0;

	memset(id, 0, sizeof(*id));
	if (memchr(buf, '\0', len))
		return -EINVAL;
	while (pos < len) {
		const char *s = buf + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - s) : len - pos;
		int rc;

		pos += ll + (nl ? 1 : 0);
		if (ll > 0 && s[ll - 1] == '\r')
			ll--;
		if (ll == 0 || s[0] == '#')
			continue;
		rc = pf_parse_line(id, s, ll, &count);
		if (rc)
			goto err;
	}
	if (pf_identity_check(id, count))
		goto err;
	return 0;
err:
	memset(id, 0, sizeof(*id));
	return -EINVAL;
}
