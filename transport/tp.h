/* SPDX-License-Identifier: MIT */
/*
 * Channels: a message-oriented, bidirectional link between the guest library
 * and the host worker.  A channel carries whole messages (vg_hdr + payload)
 * and, where the kind of channel allows it, one file descriptor alongside a
 * message.  The unix-socket channel is the first kind; shared-memory rings,
 * vsock and TCP plug in behind the same operations table.
 *
 * Error idiom: 0 or a negative errno.  -EPIPE means the peer is gone.
 * All sockets are O_CLOEXEC; sends use MSG_NOSIGNAL; EINTR is retried.
 */
#ifndef VGPU_TP_H
#define VGPU_TP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vgpu/wire.h"

struct tp_chan;

struct tp_chan_ops {
	const char *name;
	/* Send one message: iov[] concatenated is header + payload.  fd >= 0
	 * is passed along (if the channel kind cannot, -ENOTSUP). */
	int (*send)(struct tp_chan *c, const struct iovec *iov, int iovcnt, int fd);
	/* Receive exactly n bytes; *fd gets a passed descriptor or stays -1. */
	int (*recv)(struct tp_chan *c, void *p, size_t n, int *fd);
	void (*destroy)(struct tp_chan *c);
};

struct tp_chan {
	const struct tp_chan_ops *ops;
	int fd;                    /* the OS handle, where there is one */
	uint64_t bytes_sent;       /* statistics */
	uint64_t bytes_received;
};

/* Parse VGPU_SERVER-style addresses.  Only "unix:PATH" is implemented now;
 * others give -EPROTONOSUPPORT. */
int tp_connect(const char *address, struct tp_chan **out);

/* Unix-socket channels. */
int tp_unix_connect(const char *path, struct tp_chan **out);
int tp_unix_listen(const char *path, int *listen_fd);   /* removes a stale socket file */
int tp_unix_accept(int listen_fd, struct tp_chan **out);
int tp_unix_wrap(int fd, struct tp_chan **out);          /* takes ownership of fd */
int tp_unix_pair(struct tp_chan **a, int *b_fd);         /* socketpair: one channel, one raw fd */

void tp_chan_destroy(struct tp_chan *c);

/*
 * Spins up to usec microseconds until the channel has something to read:
 * 1 when it has, 0 when the time ran out.  A reply usually comes within a
 * few microseconds; spinning that long costs less than sleeping and being
 * woken.
 */
int tp_chan_spin(struct tp_chan *c, unsigned int usec);

/*
 * Message helpers on top of the raw operations.
 *
 * tp_send_msg: fills h->len from the payload length, encodes the header and
 * sends header + payload as one message.
 *
 * tp_recv_msg: reads one header, validates it (vg_hdr_decode), and reads the
 * payload into *buf (grown as needed, never beyond max_len).  A message
 * longer than max_len, or a malformed header, gives -EBADMSG: the caller
 * must end the session, the stream is no longer in sync.
 */
int tp_send_msg(struct tp_chan *c, struct vg_hdr *h, const void *payload, size_t n, int fd);
int tp_send_msgv(struct tp_chan *c, struct vg_hdr *h, const struct iovec *iov, int iovcnt, int fd);
int tp_recv_msg(struct tp_chan *c, struct vg_hdr *h, struct vg_buf *buf, size_t max_len, int *fd);

#endif
