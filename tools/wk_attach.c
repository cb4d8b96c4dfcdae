/*
 * Thread channels on transports that cannot pass descriptors (TCP, vsock,
 * hybrid vsock): each one is a new connection of the guest's, handed to this
 * worker by the fresh worker the daemon started for it.  The protocol is in
 * include/vgpu/wire.h (ATTACH).
 *
 * The owning worker listens on an abstract unix socket named after a random
 * session id and remembers one random single-use token per channel it
 * offered.  A fresh worker whose first message is ATTACH connects there,
 * passes the guest's connection and the ATTACH with SCM_RIGHTS, and exits
 * without loading the driver.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth.h"
#include "tp.h"
#include "vgpu/log.h"
#include "wk_attach.h"

/* Channels offered and not attached yet; the oldest offer goes first. */
#define WK_PENDING_MAX 64
/* The ATTACH payload's size (include/vgpu/wire.h); a rendezvous message
 * that is longer carries an ivshmem slot reference after it. */
#define WK_ATTACH_BYTES 36
/* How long a rendezvous peer may take to send its one message. */
#define WK_RV_TIMEOUT_S 2

static struct {
	int fd;				/* the rendezvous listener, or -1 */
	uint8_t session[VG_SESSION_ID_SIZE];
	struct {
		uint32_t tid;		/* 0: free */
		uint8_t token[VG_TOKEN_SIZE];
		uint64_t age;
	} pend[WK_PENDING_MAX];
	uint64_t clock;
} rv = { .fd = -1 };

static void rv_name(const uint8_t session[VG_SESSION_ID_SIZE], char *out, size_t n)
{
	size_t i, k;

	k = (size_t)snprintf(out, n, "@vgpu-rv-");
	for (i = 0; i < VG_SESSION_ID_SIZE && k + 2 < n; i++, k += 2)
		snprintf(out + k, n - k, "%02x", session[i]);
}

int wk_attach_listen(void)
{
	char name[64];
	int ret;

	ret = tp_random(rv.session, sizeof(rv.session));
	if (ret < 0)
		return ret;
	rv_name(rv.session, name, sizeof(name));
	return tp_unix_listen(name, &rv.fd);
}

int wk_attach_fd(void)
{
	return rv.fd;
}

void wk_attach_close(void)
{
	if (rv.fd >= 0)
		close(rv.fd);
	rv.fd = -1;
}

int wk_attach_offer(uint32_t tid, struct vg_attach *a)
{
	int i, slot = 0, ret;

	for (i = 0; i < WK_PENDING_MAX; i++) {
		if (!rv.pend[i].tid) {
			slot = i;
			break;
		}
		if (rv.pend[i].age < rv.pend[slot].age)
			slot = i;
	}
	if (rv.pend[slot].tid)
		VG_WARN("channel %u was never attached; its offer is withdrawn", rv.pend[slot].tid);
	ret = tp_random(rv.pend[slot].token, VG_TOKEN_SIZE);
	if (ret < 0) {
		rv.pend[slot].tid = 0;
		return ret;
	}
	rv.pend[slot].tid = tid;
	rv.pend[slot].age = ++rv.clock;
	memcpy(a->session, rv.session, VG_SESSION_ID_SIZE);
	a->tid = tid;
	memcpy(a->token, rv.pend[slot].token, VG_TOKEN_SIZE);
	return 0;
}

/* 1 when a offers a channel we offered and nobody took yet; it is taken. */
static int token_take(const struct vg_attach *a)
{
	int i, hit = 0;

	if (!tp_mem_equal(a->session, rv.session, VG_SESSION_ID_SIZE))
		return 0;
	for (i = 0; i < WK_PENDING_MAX; i++) {
		/* Every slot is compared, so the time says nothing about which. */
		int same = rv.pend[i].tid != 0 && rv.pend[i].tid == a->tid &&
			   tp_mem_equal(rv.pend[i].token, a->token, VG_TOKEN_SIZE);

		if (same && !hit) {
			hit = 1;
			rv.pend[i].tid = 0;
			memset(rv.pend[i].token, 0, VG_TOKEN_SIZE);
		}
	}
	return hit;
}

void wk_attach_accept(void)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = { WK_RV_TIMEOUT_S, 0 };
	struct tp_chan *peer = NULL, *guest = NULL;
	struct vg_attach a;
	struct vg_hdr h;
	struct vg_buf b;
	struct vg_rd r;
	int fd, gfd = -1, ret;

	vg_buf_init(&b);
	do
		fd = accept4(rv.fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		goto out;
	/* Only our own user's processes (the daemon's workers) may hand us one. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != getuid()) {
		VG_WARN("rendezvous: a process of uid %d was refused", (int)cred.uid);
		close(fd);
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (tp_unix_wrap(fd, &peer) < 0) {
		close(fd);
		goto out;
	}
	ret = tp_recv_msg(peer, &h, &b, 64 + TP_IVSHMEM_REF_SIZE, &gfd);
	if (ret < 0 || h.kind != VG_MSG_ATTACH || gfd < 0) {
		VG_WARN("rendezvous: no valid ATTACH from the peer");
		goto out;
	}
	/* An ivshmem connection comes as its region's descriptor and a slot
	 * reference after the ATTACH; a socket as itself. */
	if (b.len == WK_ATTACH_BYTES + TP_IVSHMEM_REF_SIZE)
		ret = tp_ivshmem_import(gfd, b.p + WK_ATTACH_BYTES, TP_IVSHMEM_REF_SIZE, &guest);
	else
		ret = tp_stream_wrap(gfd, &guest);
	if (ret < 0)
		goto out;
	gfd = -1;
	if (b.len == WK_ATTACH_BYTES + TP_IVSHMEM_REF_SIZE)
		b.len = WK_ATTACH_BYTES;
	vg_rd_init(&r, b.p, b.len);
	if (vg_attach_decode(&r, &a) < 0 || !token_take(&a)) {
		VG_WARN("a channel connection with an unknown or used token was refused");
		tp_send_error(guest, EACCES, "unknown or already used channel token");
		goto out;
	}
	if (wk_thread_start(a.tid, guest, h.seq) == 0)
		guest = NULL;
out:
	if (gfd >= 0)
		close(gfd);
	tp_chan_destroy(guest);
	tp_chan_destroy(peer);
	vg_buf_fini(&b);
}

int wk_attach_forward(struct tp_chan *guest, const struct vg_hdr *in, const void *payload, size_t n)
{
	struct vg_hdr h = *in;
	struct tp_chan *owner;
	struct vg_attach a;
	struct vg_rd r;
	char name[64];
	int ret;

	vg_rd_init(&r, payload, n);
	if (vg_attach_decode(&r, &a) < 0) {
		tp_send_error(guest, EPROTO, "malformed ATTACH");
		return -EPROTO;
	}
	rv_name(a.session, name, sizeof(name));
	ret = tp_unix_connect(name, &owner);
	if (ret < 0) {
		tp_send_error(guest, ENOENT, "no such session (its worker has ended)");
		return ret;
	}
	h.flags = 0;
	if (tp_chan_is_ivshmem(guest)) {
		uint8_t ref[TP_IVSHMEM_REF_SIZE];
		struct iovec v[2] = { { (void *)payload, n }, { ref, sizeof(ref) } };
		int rfd;

		ret = n == WK_ATTACH_BYTES ? tp_ivshmem_export(guest, &rfd, ref) : -EPROTO;
		if (ret == 0)
			ret = tp_send_msgv(owner, &h, v, 2, rfd);
	} else {
		ret = tp_send_msg(owner, &h, payload, n, guest->fd);
	}
	tp_chan_destroy(owner);
	if (ret < 0)
		tp_send_error(guest, EIO, "cannot hand the channel to its session");
	return ret;
}
