/*
 * The INTEGRITY_CHECK export table's hash, factored so that tests can feed
 * the inputs recorded from NVIDIA's driver (prefix lc_integrity_).
 */
#ifndef VGPU_LC_INTEGRITY_H
#define VGPU_LC_INTEGRITY_H

#include <stdint.h>

#define LC_INTEGRITY_DEV_MAX 64

struct lc_integrity_dev {
	uint8_t uuid[16];	/* cuDeviceGetUuid (the 9020 export) */
	int32_t pci_domain;	/* attribute 50 */
	int32_t pci_bus;	/* attribute 33 */
	int32_t pci_device;	/* attribute 34 */
};

struct lc_integrity_in {
	uint32_t driver_version;	/* what cuDriverGetVersion returns */
	uint32_t version;		/* the slot's first argument */
	uint32_t pid;
	uint32_t thread;		/* (uint32_t)pthread_self() of the caller */
	uint64_t cudart_table;		/* address of CUDART_INTERFACE */
	uint64_t integrity_table;	/* address of INTEGRITY_CHECK */
	uint64_t check_fn;		/* INTEGRITY_CHECK slot 1 */
	uint64_t unix_seconds;		/* the slot's second argument */
	unsigned ndev;
	struct lc_integrity_dev dev[LC_INTEGRITY_DEV_MAX];
};

/* The slot's answer for these inputs. */
void lc_integrity_hash(const struct lc_integrity_in *in, uint64_t out[2]);

#endif
