/*
 * The daemon's listeners (tools/vd_listen.c): one per --listen address.
 *
 *   unix:PATH          local clients; descriptors pass (shared memory)
 *   tcp:HOST:PORT      GPU server on the network; a non-loopback address
 *                      needs --secret-file
 *   vsock:PORT         AF_VSOCK on every CID (QEMU vhost-vsock guests)
 *   vsock-uds:PATH     the unix socket a Firecracker / Cloud Hypervisor VMM
 *                      connects to for a guest's vsock port (PATH is
 *                      "<uds>_<port>"); its clients cannot pass descriptors
 *   ivshmem:PATH[,size=N][,ring=N]
 *                      a region file backing a VM's ivshmem device: no socket,
 *                      a timer looks for claimed slots (fd stays -1)
 */
#ifndef VGPU_VD_LISTEN_H
#define VGPU_VD_LISTEN_H

#include <limits.h>
#include <stdint.h>
#include <sys/stat.h>

#define VD_LISTEN_MAX 8

enum vd_listen_kind {
	VD_L_UNIX,
	VD_L_VSOCK_UDS,
	VD_L_TCP,
	VD_L_VSOCK,
	VD_L_IVSHMEM,
};

struct vd_listener {
	const char *address;	/* as given */
	enum vd_listen_kind kind;
	const char *rest;	/* the address after its prefix */
	int fd;			/* -1 until opened */
	struct stat bound;	/* unix kinds: the socket file we made */
	char shown[160];	/* for logs: tcp with the port bound (":0" picks one) */
	struct tp_ivshmem *region;	/* ivshmem: the region, once open */
	char region_path[PATH_MAX];
	uint64_t region_size;
	uint32_t ring_bytes;
};

/* 0, or -EINVAL after a message on stderr. */
int vd_listener_parse(const char *address, struct vd_listener *l);
/* 0, or -errno after a message on stderr.  have_secret: TCP may listen on
 * a non-loopback address. */
int vd_listener_open(struct vd_listener *l, int have_secret);
/* Closes it and removes its socket file if it is still ours. */
void vd_listener_close(struct vd_listener *l);
/* Whether its clients can pass descriptors (the worker's --nofd). */
int vd_listener_passes_fds(const struct vd_listener *l);

#endif
