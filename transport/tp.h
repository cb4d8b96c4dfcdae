/* SPDX-License-Identifier: MIT */
/*
 * Channels: a message-oriented, bidirectional link between the guest library
 * and the host worker.  A channel carries whole messages (vg_hdr + payload)
 * and, where the kind of channel allows it, one file descriptor alongside a
 * message.  The unix-socket channel is the first kind; shared-memory rings,
 * vsock and TCP plug in behind the same operations table.
 *
 * Error idiom: 0 or a negative errno.  -EPIPE (sending) and -ECONNRESET
 * (receiving, also on an orderly EOF) mean the peer is gone.
 * All sockets and received descriptors are O_CLOEXEC; sends use MSG_NOSIGNAL
 * (a dead peer never raises SIGPIPE); EINTR is retried.
 *
 * Threads: a channel is used by one thread at a time (one sender and one
 * receiver may not overlap either); callers that share one serialise.
 * There is no global state.
 */
#ifndef VGPU_TP_H
#define VGPU_TP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

#include "vgpu/wire.h"

struct tp_chan;

struct tp_chan_ops {
	const char *name;
	/* Send one message: iov[] concatenated (at most 8) is header +
	 * payload, all of it or an error.  fd >= 0 is passed along, attached
	 * to the first byte (if the channel kind cannot, -ENOTSUP); the
	 * caller keeps its own copy. */
	int (*send)(struct tp_chan *c, const struct iovec *iov, int iovcnt, int fd);
	/* Receive exactly n bytes; -ECONNRESET on EOF before n.  When fd is
	 * not NULL and *fd < 0, *fd gets the first descriptor that arrives;
	 * every other one is closed. */
	int (*recv)(struct tp_chan *c, void *p, size_t n, int *fd);
	void (*destroy)(struct tp_chan *c);
};

struct tp_chan {
	const struct tp_chan_ops *ops;
	int fd;                    /* the OS handle, where there is one */
	uint64_t bytes_sent;       /* statistics */
	uint64_t bytes_received;
};

/* Parse VGPU_SERVER-style addresses: "unix:PATH" ("unix:@NAME" is an
 * abstract socket), "ivshmem:BDF", "ivshmem:file:PATH"; others give
 * -EPROTONOSUPPORT. */
/*
 * Connects to a VGPU_SERVER-style address:
 *   unix:PATH          unix socket, descriptors pass ("unix:@NAME": abstract)
 *   unix-nofd:PATH     unix socket used like vsock: no descriptors (the
 *                      host end of a VMM's hybrid vsock; tests)
 *   tcp:HOST:PORT      TCP ("[V6ADDR]:PORT" too); TCP_NODELAY, keepalive
 *   vsock:CID:PORT     AF_VSOCK
 * Anything else: -EPROTONOSUPPORT; a malformed address: -EINVAL.
 */
int tp_connect(const char *address, struct tp_chan **out);
/* 1 when descriptors can travel on c (unix sockets and rings on them). */
int tp_chan_passes_fds(const struct tp_chan *c);
/* A channel on a connected stream socket that passes no descriptors
 * (sending one is -ENOTSUP); takes ownership of fd. */
int tp_stream_wrap(int fd, struct tp_chan **out);
int tp_unix_connect_nofd(const char *path, struct tp_chan **out);

/*
 * TCP (transport/tcp.c).  Addresses are "HOST:PORT" or "[V6ADDR]:PORT".
 * tp_tcp_tune sets TCP_NODELAY, SO_KEEPALIVE and keepalive timings that
 * notice a dead peer within seconds (both sides call it).
 * tp_tcp_listen: *loopback = 1 when every bound address is a loopback one.
 */
int tp_tcp_connect(const char *hostport, struct tp_chan **out);
int tp_tcp_listen(const char *hostport, int *listen_fd, int *loopback);
void tp_tcp_tune(int fd);

/* AF_VSOCK (transport/vsock.c): "CID:PORT" to connect; listen on a port of
 * every CID (VMADDR_CID_ANY). */
int tp_vsock_connect(const char *cidport, struct tp_chan **out);
int tp_vsock_listen(unsigned int port, int *listen_fd);

/* Unix-socket channels. */
int tp_unix_connect(const char *path, struct tp_chan **out);
/* Removes a stale socket file (one nobody accepts on) first; a live one is
 * -EADDRINUSE, a path that is no socket -EEXIST (left alone). */
int tp_unix_listen(const char *path, int *listen_fd);
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
 * Shared-memory channels (transport/ring.c): two single-producer rings in a
 * sealed memfd, beside a socket that carries descriptors and tells when the
 * peer is gone.  The guest creates the memfd and sends it on the socket; both
 * sides then wrap their socket channel with tp_ring_wrap (the creator sends on
 * the first ring).  A message with a descriptor sets VG_F_FD; the descriptor
 * travels on the socket and tp_recv_msg collects it.
 */
#define TP_RING_BYTES_MAX (64u << 20)
size_t tp_ring_map_size(uint32_t ring_bytes);
int tp_ring_create_fd(uint32_t ring_bytes);
int tp_ring_wrap(struct tp_chan *sock, int memfd, uint32_t ring_bytes, int creator, struct tp_chan **out);
int tp_chan_is_ring(const struct tp_chan *c);
/*
 * How long a waiter on c spins before it yields and then sleeps (0 at wrap:
 * a few microseconds of polling only).  Waking a sleeping thread costs tens
 * of microseconds, so a side that expects its peer soon spins longer.
 */
#define TP_RING_SPIN_MAX_US 1000000u
void tp_ring_set_spin(struct tp_chan *c, unsigned int usec);
/*
 * A spin time from the environment variable var (microseconds, 0..100000),
 * else many_cpus_us on a machine with four CPUs or more and 50 on a smaller
 * one, where spinning would take the CPU the peer needs.  Called once per
 * channel, when it moves to rings.
 */
unsigned int tp_ring_spin_setting(const char *var, unsigned int many_cpus_us);
/*
 * Copies the next n unread bytes without consuming them: 1, or 0 when they
 * are not all there in the record being read (a message's header always
 * is).  Another thread may peek while it holds what serialises it with the
 * channel's reader.
 */
int tp_ring_peek(struct tp_chan *c, void *p, size_t n);
/* A received message's payload of n bytes in buf (emptied first): 0, -EMSGSIZE over max_len, or -ENOMEM. */
int tp_msg_space(struct vg_buf *buf, size_t n, size_t max_len, void **p);
/* tp_recv_msg's one-pass path for a message that is one record; -EAGAIN: use the general one. */
int tp_ring_recv_msg(struct tp_chan *c, struct vg_hdr *h, struct vg_buf *buf, size_t max_len);
int tp_ring_readable(struct tp_chan *c);
/* Waits (spin, yield, futex) until there is something to read: 0, or -ECONNRESET. */
int tp_ring_wait_readable(struct tp_chan *c);
/* Receives the descriptor announced by VG_F_FD from the socket. */
int tp_ring_take_fd(struct tp_chan *c, int *fd);
/* Tests only: called inside the wake-up handshake to widen its races. */
extern void (*tp_ring_delay_hook)(void);
/*
 * Sleeps that ran their whole nap although the peer had moved: lost
 * wake-ups, 0 unless the handshake is broken.
 */
extern unsigned long tp_ring_missed_wakeups;
/* 1 when c's sleeps issue membarrier(2) and its peer may publish without a fence. */
int tp_ring_uses_membarrier(const struct tp_chan *c);
/*
 * Whether this process is registered for membarrier(2); the first ring
 * starts the registration in a thread of its own.  wait: until it is done.
 */
int tp_ring_membarrier_ready(int wait);

/*
 * ivshmem channels (transport/ivshmem.c): connections through a memory
 * region shared by a VM and its host, laid out as a header and slots of two
 * rings each (the layout is documented in ivshmem.c).  No descriptors cross
 * (send with fd >= 0 is -ENOTSUP); c->fd is -1; a dead peer is noticed by
 * its heartbeat (VGPU_IVSHMEM_DEAD_MS, default 10 s).
 *
 * Guest: tp_ivshmem_connect("0000:00:04.0" | "file:PATH") maps BAR2 of that
 * PCI device (or the file), claims a free slot and waits until the daemon
 * accepts it: -ECONNREFUSED when no daemon serves the region, -EAGAIN when
 * every slot is taken, -ENODEV when the region was never initialised.
 *
 * Host: the daemon creates the region (size 0: keep a file's size, else
 * 64 MiB; an existing file of another size is -EFBIG: a VM may map it; a
 * second daemon on it gets -EADDRINUSE) and calls tp_ivshmem_poll
 * from a timer: it bumps the daemon's heartbeat, recycles slots whose both
 * sides are gone, and returns a slot a guest wants served (now accepted),
 * or -EAGAIN.  The worker for slot k opens it with tp_ivshmem_open_slot
 * (same ring size as the daemon's); when the worker is gone the daemon
 * calls tp_ivshmem_slot_release.
 */
#define TP_IVSHMEM_SIZE_DEFAULT (64ull << 20)
#define TP_IVSHMEM_SIZE_MAX     (16ull << 30)
#define TP_IVSHMEM_RING_DEFAULT (256u << 10)
#define TP_IVSHMEM_RING_MIN     4096u
#define TP_IVSHMEM_RING_MAX     (16u << 20)
#define TP_IVSHMEM_SLOTS_MAX    1024u
struct tp_ivshmem;
int tp_ivshmem_connect(const char *spec, struct tp_chan **out);
int tp_ivshmem_region_create(const char *path, uint64_t size, uint32_t ring_bytes, struct tp_ivshmem **out);
void tp_ivshmem_region_destroy(struct tp_ivshmem *r);
uint32_t tp_ivshmem_nslots(const struct tp_ivshmem *r);
int tp_ivshmem_poll(struct tp_ivshmem *r);
void tp_ivshmem_slot_release(struct tp_ivshmem *r, uint32_t slot);
int tp_ivshmem_open_slot(const char *path, uint32_t slot, uint32_t ring_bytes, struct tp_chan **out);
/*
 * Handing a connection to another worker (thread channels opened by a new
 * connection): tp_ivshmem_export gives the region's descriptor (still owned
 * by c, which must stay alive until it was sent) and a reference to the slot
 * and where its streams stand; c no longer closes the slot when destroyed.
 * tp_ivshmem_import in the other process takes the descriptor on success.
 * The exporting worker then exits with TP_IVSHMEM_EXIT_HANDED_OFF, and the
 * daemon calls tp_ivshmem_slot_adopted instead of tp_ivshmem_slot_release:
 * it then frees the slot when the new owner closes it or stops beating.
 */
#define TP_IVSHMEM_REF_SIZE 28
#define TP_IVSHMEM_EXIT_HANDED_OFF 79
int tp_ivshmem_export(struct tp_chan *c, int *fd, uint8_t ref[TP_IVSHMEM_REF_SIZE]);
int tp_ivshmem_import(int fd, const uint8_t *ref, size_t n, struct tp_chan **out);
void tp_ivshmem_slot_adopted(struct tp_ivshmem *r, uint32_t slot);
/* "PATH[,size=N][,ring=N]" (K, M, G suffixes) of `vgpud --listen ivshmem:...`. */
int tp_ivshmem_parse_listen(const char *spec, char *path, size_t pathlen, uint64_t *size, uint32_t *ring);
int tp_chan_is_ivshmem(const struct tp_chan *c);
int tp_ivshmem_readable(struct tp_chan *c);
/* Copies the next n unread bytes without consuming them: 1, or 0 when fewer are there. */
int tp_ivshmem_peek(struct tp_chan *c, void *p, size_t n);
/* Waits (spin, then sleeps) until there is something to read: 0, or -ECONNRESET. */
int tp_ivshmem_wait_readable(struct tp_chan *c);
/* The same for at most timeout_ms (< 0: no limit): -ETIMEDOUT when nothing
 * came; the peer's death is noticed across calls (an event loop may call
 * it with 0 between other work). */
int tp_ivshmem_wait_readable_ms(struct tp_chan *c, int timeout_ms);
/* Like shutdown(2) on a socket: the peer sees the end, and a wait of ours
 * in another thread returns -ECONNRESET within a millisecond. */
void tp_ivshmem_shutdown(struct tp_chan *c);

/*
 * Message helpers on top of the raw operations.
 *
 * tp_send_msg / tp_send_msgv: fill h->len from the payload length (at most
 * 7 iovecs; over VG_MSG_MAX is -EMSGSIZE), encode the header and send
 * header + payload with one send operation, fd attached when >= 0.
 *
 * tp_recv_msg: reads one header, validates it (vg_hdr_decode: -EPROTO or
 * -EMSGSIZE), and reads the payload into *buf (reset, grown as needed).  A
 * payload longer than max_len is -EMSGSIZE and is left unread.  After any
 * error the stream is out of sync: the caller must end the session.  *fd
 * (when fd is not NULL) gets a descriptor sent with the header, or -1.
 */
/*
 * A single byte over a unix socket with a descriptor riding on it (send:
 * fd or -1; receive: *fd set, -1 when none came), outside the message
 * framing: the daemon hands a connection to its warm worker this way.
 * 0 or a negative errno (-ECONNRESET: the peer is gone).
 */
int tp_fd_send(int sock, uint8_t byte, int fd);
int tp_fd_recv(int sock, uint8_t *byte, int *fd);
int tp_send_msg(struct tp_chan *c, struct vg_hdr *h, const void *payload, size_t n, int fd);
int tp_send_msgv(struct tp_chan *c, struct vg_hdr *h, const struct iovec *iov, int iovcnt, int fd);
int tp_recv_msg(struct tp_chan *c, struct vg_hdr *h, struct vg_buf *buf, size_t max_len, int *fd);

/*
 * SHA-256 (transport/sha256.c): module images are cached by it.  Uses the
 * CPU's SHA extensions where present; tp_sha256_force_portable(1) turns
 * them off (tests compare both), and returns the previous setting.
 */
#define TP_SHA256_LEN 32
struct tp_sha256 {
	uint32_t s[8];
	uint64_t n;
	uint8_t buf[64];
	unsigned int fill;
};
void tp_sha256_init(struct tp_sha256 *c);
void tp_sha256_update(struct tp_sha256 *c, const void *data, size_t len);
void tp_sha256_final(struct tp_sha256 *c, uint8_t out[TP_SHA256_LEN]);
void tp_sha256(const void *data, size_t len, uint8_t out[TP_SHA256_LEN]);
int tp_sha256_accelerated(void);
int tp_sha256_force_portable(int on);

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t tp_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A spinning thread's pause: it may share a core with the thread it waits for. */
static inline void tp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield" ::: "memory");
#endif
}

#endif
