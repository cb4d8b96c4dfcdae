/*
 * INTEGRITY_CHECK: three words, the size, check(version, seconds, out[2])
 * and a second function whose role is unknown.  cudart calls check with
 * versions 13000, 13001 and 13002, compares the last answer with its own
 * HMAC-MD2 over the same inputs and, on a mismatch, fails every runtime
 * call with error 103.  Versions ending in 0 and 1 answer constants (as the
 * real driver does, test vectors in tests/procaddr/data).
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "vgpu/log.h"
#include "darkapi.h"
#include "integrity.h"
#include "md2.h"

static const uint8_t integrity_key[LC_MD2_BLOCK] = {
	0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
	0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f,
};

/* The message: 48 bytes of header, then 28 bytes per device, no padding. */
#define MSG_HEAD	48
#define MSG_DEV		28

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);	/* native (little-endian) order, as hashed */
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
	return p + 8;
}

void lc_integrity_hash(const struct lc_integrity_in *in, uint64_t out[2])
{
	uint8_t msg[MSG_HEAD + MSG_DEV * LC_INTEGRITY_DEV_MAX], *p = msg;
	uint8_t d[LC_MD2_DIGEST];
	unsigned i, ndev = in->ndev;

	if (in->version % 10 == 0) {
		out[0] = 0x3341181c03cb675cULL;
		out[1] = 0x8ed383aa1f4cd1e8ULL;
		return;
	}
	if (in->version % 10 == 1) {
		out[0] = 0x1841181c03cb675cULL;
		out[1] = 0x8ed383aa1f4cd1e8ULL;
		return;
	}
	if (ndev > LC_INTEGRITY_DEV_MAX)
		ndev = LC_INTEGRITY_DEV_MAX;
	p = put32(p, in->driver_version);
	p = put32(p, in->version);
	p = put32(p, in->pid);
	p = put32(p, in->thread);
	p = put64(p, in->cudart_table);
	p = put64(p, in->integrity_table);
	p = put64(p, in->check_fn);
	p = put64(p, in->unix_seconds);
	for (i = 0; i < ndev; i++) {
		memcpy(p, in->dev[i].uuid, 16);
		p += 16;
		p = put32(p, (uint32_t)in->dev[i].pci_domain);
		p = put32(p, (uint32_t)in->dev[i].pci_bus);
		p = put32(p, (uint32_t)in->dev[i].pci_device);
	}
	lc_hmac_md2(integrity_key, msg, (size_t)(p - msg), d);
	memcpy(&out[0], d, 8);
	memcpy(&out[1], d + 8, 8);
}

static void *integrity_words[LC_ETBL_INTEGRITY_WORDS];

/*
 * The devices as cudart saw them: the same calls, answered from the same
 * snapshot, so both sides hash the same bytes.
 */
static CUresult gather_devices(struct lc_integrity_in *in)
{
	CUuuid uuid;
	CUresult res;
	int n, i;

	res = cuDeviceGetCount(&n);
	if (res != CUDA_SUCCESS)
		return res;
	if (n < 0 || n > LC_INTEGRITY_DEV_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < n; i++) {
		struct lc_integrity_dev *d = &in->dev[i];

		res = cuDeviceGetUuid(&uuid, i);
		if (res == CUDA_SUCCESS)
			res = cuDeviceGetAttribute(&d->pci_domain,
						   CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, i);
		if (res == CUDA_SUCCESS)
			res = cuDeviceGetAttribute(&d->pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, i);
		if (res == CUDA_SUCCESS)
			res = cuDeviceGetAttribute(&d->pci_device,
						   CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, i);
		if (res != CUDA_SUCCESS)
			return res;
		memcpy(d->uuid, uuid.bytes, 16);
	}
	in->ndev = (unsigned)n;
	return CUDA_SUCCESS;
}

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t *out)
{
	struct lc_integrity_in in;
	int drv = 0;
	CUresult res;

	if (!out)
		return CUDA_ERROR_INVALID_VALUE;
	memset(&in, 0, sizeof(in));
	in.version = version;
	in.unix_seconds = unix_seconds;
	if (version % 10 > 1) {
		res = cuDriverGetVersion(&drv);
		if (res == CUDA_SUCCESS)
			res = gather_devices(&in);
		if (res != CUDA_SUCCESS) {
			VG_WARN("INTEGRITY_CHECK: device data unavailable (%d)", (int)res);
			return res;
		}
		in.driver_version = (uint32_t)drv;
		in.pid = (uint32_t)getpid();
		in.thread = (uint32_t)(uintptr_t)pthread_self();
		in.cudart_table = (uint64_t)(uintptr_t)lc_etbl_cudart();
		in.integrity_table = (uint64_t)(uintptr_t)integrity_words;
		in.check_fn = (uint64_t)(uintptr_t)integrity_words[1];
	}
	lc_integrity_hash(&in, out);
	return CUDA_SUCCESS;
}

static void integrity_build(void)
{
	lc_etbl_fill(LC_ETBL_INTEGRITY, integrity_words, LC_ETBL_INTEGRITY_WORDS, 1);
	integrity_words[1] = (void *)integrity_check;
}

const void *lc_etbl_integrity(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, integrity_build);
	return integrity_words;
}
