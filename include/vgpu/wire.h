/* SPDX-License-Identifier: MIT */
/*
 * vgpu wire protocol, version 1.
 *
 * Every message is a fixed 32-byte little-endian header followed by a
 * payload of (len - 32) bytes.  All integers are little-endian; payload
 * fields are packed with no implicit padding, in the order documented
 * below.  Every length read off the wire is checked against a named
 * maximum before it is used.
 *
 * Connections:
 *  - The guest opens a *control channel* to the daemon and sends HELLO.
 *    The daemon fork+execs a worker and hands it the connection; the worker
 *    answers WELCOME.  The control channel lives as long as the client
 *    process; when it closes, the worker frees everything and exits.
 *  - Each guest thread that makes driver calls gets its own *thread channel*:
 *    it sends THREAD_OPEN on the control channel and receives THREAD_OPENED
 *    with one end of a new socket pair attached (SCM_RIGHTS).  The worker
 *    serves each thread channel with one host thread, so per-thread driver
 *    state (current context, per-thread default stream) lives in that host
 *    thread.  Closing the thread channel ends that host thread.
 *  - CALL / REPLY travel on thread channels.  HOST_CALL / HOST_RETURN are
 *    host->guest calls made while a CALL runs (callbacks, VG_HC_* in
 *    include/vgpu/ops.h), on the same channel.
 *  - STATS / STATS_REPLY travel on the control channel.  ERROR may travel
 *    on any channel, either way, just before its sender closes it.
 *
 * Transports that cannot pass descriptors (TCP, vsock, a VMM's hybrid vsock
 * socket) have no VG_CAP_SHM, and a thread channel is a new connection:
 *  - The worker answers THREAD_OPEN with ATTACH (its session id, the new
 *    channel's id and a random single-use token) instead of THREAD_OPENED.
 *  - The guest opens a new connection to the same server address and sends
 *    that ATTACH back as its first message (after AUTH, where used).
 *  - The daemon starts a fresh worker for it, as for any connection; that
 *    worker sees ATTACH first, hands the connection and the ATTACH to the
 *    owning worker over a rendezvous socket (abstract unix socket
 *    "@vgpu-rv-<session id in hex>", SCM_RIGHTS) and exits.
 *  - The owning worker checks the peer's uid and the token (constant time,
 *    consumed), answers THREAD_OPENED (no fd) on the new connection and
 *    serves it as the thread channel; else ERROR, and closes it.
 *
 * Authentication (AUTH, optional; required by a daemon with a secret): the
 * first messages of every connection, control and attach alike, before
 * HELLO or ATTACH.  Both sides prove they know the shared secret K without
 * sending it: HMAC-SHA256 over both sides' fresh nonces (see struct
 * vg_auth).  A failed proof ends the connection (the worker sends ERROR
 * with code EACCES first).
 */
#ifndef VGPU_WIRE_H
#define VGPU_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define VG_WIRE_MAGIC        0x55504756u   /* "VGPU" as little-endian bytes */
#define VG_WIRE_VERSION      1u

/* Named maxima for every length that crosses the wire. */
#define VG_HDR_SIZE          32u
#define VG_MSG_MAX           (256u << 20)  /* whole message, header included */
#define VG_ENV_MAX           64u           /* forwarded environment entries */
#define VG_ENV_ENTRY_MAX     4096u         /* one "KEY=VALUE" entry, bytes */
#define VG_TEXT_MAX          1024u         /* a human-readable message */
#define VG_ARGS_MAX          32u           /* arguments of one driver call */
#define VG_ARRAY_MAX         (1u << 20)    /* elements of one array argument */

/* Message kinds (vg_hdr.kind). */
enum vg_kind {
	VG_MSG_HELLO         = 1,  /* guest -> host, control channel */
	VG_MSG_WELCOME       = 2,  /* host -> guest, control channel */
	VG_MSG_THREAD_OPEN   = 3,  /* guest -> host, control channel */
	VG_MSG_THREAD_OPENED = 4,  /* host -> guest, control channel, fd attached */
	VG_MSG_CALL          = 5,  /* guest -> host, thread channel */
	VG_MSG_REPLY         = 6,  /* host -> guest, thread channel */
	VG_MSG_HOST_CALL     = 7,  /* host -> guest (reserved: callbacks) */
	VG_MSG_HOST_RETURN   = 8,  /* guest -> host (reserved: callbacks) */
	VG_MSG_ERROR         = 9,  /* either way: protocol error, code + text; the sender closes */
	VG_MSG_STATS         = 10, /* guest -> host, control: ask for call counts */
	VG_MSG_STATS_REPLY   = 11, /* host -> guest, control: (function id, count) pairs */
	VG_MSG_ATTACH        = 12, /* channel by a new connection (no fd passing), see below */
	VG_MSG_AUTH          = 13, /* either way, first on a connection: challenge-response */
	VG_MSG_KIND_MAX      = 13,
};

/* Header flags (vg_hdr.flags). */
#define VG_F_NO_REPLY        0x0001u  /* CALL: the guest does not wait; errors are deferred */
/*
 * CALL: before running this call, the host waits until every call with a
 * lower sequence number already sent on the client's other channels has run
 * (the guest sets it when another thread has no-reply calls in flight, so
 * cross-thread happens-before order survives asynchronous sends).
 */
#define VG_F_ORDERED         0x0002u
/*
 * A file descriptor accompanies this message.  On a socket it rides on the
 * message's first byte; on shared-memory rings it travels on the socket
 * beside them, as a one-byte message, sent before the message itself.
 */
#define VG_F_FD              0x0004u
#define VG_F_FLAGS_KNOWN     0x0007u

/*
 * The header, 32 bytes, little-endian:
 *   off  size  field
 *     0     4  len     total message length in bytes, header included; 32 <= len <= VG_MSG_MAX
 *     4     2  kind    enum vg_kind, 1..VG_MSG_KIND_MAX
 *     6     2  flags   VG_F_*; a bit outside VG_F_FLAGS_KNOWN is an error
 *     8     4  op      CALL/REPLY: operation id (generated VG_FN_* or VG_OP_*);
 *                      HOST_CALL/HOST_RETURN: VG_HC_* (include/vgpu/ops.h); else 0
 *    12     4  tid     the id of the thread channel the message travels on (0 on
 *                      the control channel); THREAD_OPENED: the new channel's id
 *    16     8  seq     global sequence number assigned by the guest; REPLY and
 *                      THREAD_OPENED echo the request's, HOST_RETURN the HOST_CALL's
 *    24     4  status  REPLY/HOST_RETURN: CUresult of the call; WELCOME/THREAD_OPENED:
 *                      0 or the CUresult of a refusal; else 0 (signed)
 *    28     4  reserved, must be 0
 * There is no magic in the header: HELLO carries it, and every later
 * header is checked field by field (vg_hdr_decode).
 */
struct vg_hdr {
	uint32_t len;
	uint16_t kind;
	uint16_t flags;
	uint32_t op;
	uint32_t tid;
	uint64_t seq;
	int32_t  status;
	uint32_t reserved;
};

/* Capability bits, exchanged in HELLO/WELCOME; the session uses the AND. */
#define VG_CAP_ASYNC         (1ull << 0)   /* NO_REPLY calls allowed */
#define VG_CAP_SHM           (1ull << 1)   /* shared-memory rings, shared pinned memory */
#define VG_CAP_MODCACHE      (1ull << 2)   /* module images offered by hash (VG_IMG_CACHED) */
#define VG_CAP_RING_RECORDS  (1ull << 3)   /* rings carry stamped records (transport/ring.c); needed for RING_ATTACH */

/*
 * HELLO payload (guest -> host), 28 bytes + the entries:
 *   u32 magic           VG_WIRE_MAGIC
 *   u16 version         the newest VG_WIRE_VERSION the guest speaks
 *   u16 min_version     the oldest version the guest speaks, <= version
 *   u64 caps            VG_CAP_* the guest offers
 *   i32 driver_version  the guest library's compiled-in driver API version (13000)
 *   u32 pid             guest process id (informational)
 *   u32 nenv            forwarded environment entries, <= VG_ENV_MAX
 *   nenv times:
 *     u32 n             bytes, 1 <= n <= VG_ENV_ENTRY_MAX
 *     n bytes           "KEY=VALUE", no NUL
 * Nothing may follow the last entry.  A HELLO whose range excludes this
 * build's VG_WIRE_VERSION still decodes (vg_hello_check_version says so),
 * so the worker can answer it with a WELCOME that explains the refusal.
 */
struct vg_hello {
	uint32_t magic;
	uint16_t version;
	uint16_t min_version;
	uint64_t caps;
	int32_t  driver_version;
	uint32_t pid;
	uint32_t nenv;
	const char *env[VG_ENV_MAX];     /* decode: pointers into the message buffer, not NUL-terminated */
	uint32_t env_len[VG_ENV_MAX];
};

/*
 * WELCOME payload (host -> guest), 24 bytes + the text; header status = 0
 * when accepted, else the CUresult the guest's cuInit returns:
 *   u16 version         the version the session speaks
 *   u16 reserved        0
 *   u64 caps            VG_CAP_* granted
 *   i32 driver_version  the host driver's cuDriverGetVersion
 *   u32 worker_pid
 *   u32 ntext           <= VG_TEXT_MAX
 *   ntext bytes         a human-readable reason, no NUL (empty when accepted)
 */
struct vg_welcome {
	uint16_t version;
	uint64_t caps;
	int32_t  driver_version;
	uint32_t worker_pid;
	uint32_t ntext;
	const char *text;                /* decode: points into the message buffer */
};

/*
 * THREAD_OPEN payload (guest -> host, control channel), 4 bytes:
 *   u32 guest_tid       the calling OS thread's id (informational: logs)
 */
struct vg_thread_open {
	uint32_t guest_tid;
};

/*
 * THREAD_OPENED payload (host -> guest, control channel), 8 bytes; when the
 * channel was opened, one end of a new stream socket pair travels with the
 * message (SCM_RIGHTS, attached to its first byte):
 *   u32 tid             the new channel's id: the guest puts it in vg_hdr.tid
 *                       on that channel (also in this message's header tid)
 *   u32 status          0, or the CUresult of a refusal (no fd then); the
 *                       header's status carries the same code
 */
struct vg_thread_opened {
	uint32_t tid;
	uint32_t status;
};

/*
 * ERROR payload (either way, any channel): the sender closes after it.
 *   u32 code            a positive errno value saying what went wrong
 *                       (EPROTO, EPROTONOSUPPORT, EMSGSIZE, ...)
 *   u32 ntext           <= VG_TEXT_MAX (VG_NULL_LEN is refused: never NULL)
 *   ntext bytes         a human-readable explanation, no NUL
 */
struct vg_error {
	uint32_t code;
	uint32_t ntext;
	const char *text;                /* decode: points into the message buffer */
};

/*
 * ATTACH payload, 36 bytes (host -> guest on the control channel, in answer
 * to THREAD_OPEN; guest -> host as the first message of a new connection,
 * echoing it; worker -> worker on the rendezvous socket, with the guest's
 * connection attached).  Header tid: the channel's id; seq: the
 * THREAD_OPEN's; status: 0 or the CUresult of a refusal (host -> guest).
 *   u8[16] session      the owning worker's random session id
 *   u32 tid             the new channel's id
 *   u8[16] token        random, valid for one ATTACH only
 */
#define VG_SESSION_ID_SIZE   16u
#define VG_TOKEN_SIZE        16u
struct vg_attach {
	uint8_t session[VG_SESSION_ID_SIZE];
	uint32_t tid;
	uint8_t token[VG_TOKEN_SIZE];
};

/*
 * AUTH payload: u32 step, then by step:
 *   1 (guest -> host)  u8[32] nonce      the guest's nonce Ng
 *   2 (host -> guest)  u8[32] nonce      the host's nonce Nh
 *                      u8[32] proof      HMAC-SHA256(K, "vgpu-auth-1 host" || Ng || Nh)
 *   3 (guest -> host)  u8[32] proof      HMAC-SHA256(K, "vgpu-auth-1 guest" || Nh || Ng)
 * The labels (16 and 17 bytes, no NUL) keep one side's proof from being
 * replayed as the other's.  The guest checks the host's proof before it
 * sends its own, so a server without the secret learns nothing usable.
 */
#define VG_AUTH_NONCE_SIZE   32u
#define VG_AUTH_PROOF_SIZE   32u
struct vg_auth {
	uint32_t step;
	uint8_t nonce[VG_AUTH_NONCE_SIZE];   /* steps 1 and 2 */
	uint8_t proof[VG_AUTH_PROOF_SIZE];   /* steps 2 and 3 */
};

/*
 * STATS payload (guest -> host, control channel): empty.
 * STATS_REPLY payload (host -> guest, control channel):
 *   u32 n               entries, <= VG_STATS_MAX
 *   n times (12 bytes each):
 *     u32 fn            a generated VG_FN_* id
 *     u64 count         driver calls of that function made by the worker
 * Functions never called are left out.
 */
#define VG_STATS_MAX         4096u
struct vg_stat {
	uint32_t fn;
	uint64_t count;
};

/*
 * CALL payload: the arguments of operation `op`, encoded in order by the
 * API descriptor (include/vgpu/api.h) or, for VG_OP_* operations, as
 * documented in include/vgpu/ops.h and at their handlers.
 * REPLY payload: the outputs of `op` in order (header status is the CUresult).
 * HOST_CALL / HOST_RETURN: arguments / results of the VG_HC_* call in `op`.
 */

/* Hand-written operations live above the generated function ids. */
#define VG_OP_BASE           0x10000u
enum vg_op {
	VG_OP_SNAPSHOT       = VG_OP_BASE + 1,  /* device snapshot at cuInit */
	VG_OP_MODULE_LOAD    = VG_OP_BASE + 2,  /* module image -> CUmodule + functions */
	VG_OP_FUNC_INFO      = VG_OP_BASE + 3,  /* parameter layout of a CUfunction/CUkernel */
	VG_OP_LAUNCH         = VG_OP_BASE + 4,  /* kernel launch with a packed parameter buffer */
	VG_OP_LIBRARY_LOAD   = VG_OP_BASE + 5,  /* library image -> CUlibrary */
	VG_OP_MAX            = VG_OP_BASE + 64,
};

/*
 * Codec: little-endian writer and bounds-checked reader (transport/wire.c).
 *
 * The writer grows on demand.  When a put fails (no memory, or the buffer
 * would outgrow VG_MSG_MAX) it records the error and every later put is a
 * no-op, so an encoder checks err once, at the end.
 */
struct vg_buf {
	uint8_t *p;         /* the bytes written so far (NULL until the first put) */
	size_t len;         /* bytes written */
	size_t cap;         /* bytes allocated at p */
	int err;            /* sticky: 0, -ENOMEM or -EMSGSIZE; vg_buf_reset clears it */
};

/*
 * The reader never reads outside [p, p + len).  Reading past the end sets
 * err and returns zeros (NULL for pointers); once err is set every get does
 * the same, so a decoder checks err once, after its last get.
 */
struct vg_rd {
	const uint8_t *p;   /* the message bytes (not owned) */
	size_t len;         /* bytes at p */
	size_t off;         /* bytes consumed, <= len */
	int err;            /* sticky: 0, -EBADMSG (overrun) or -EMSGSIZE (blob over its max) */
};

void vg_buf_init(struct vg_buf *b);
void vg_buf_fini(struct vg_buf *b);
void vg_buf_reset(struct vg_buf *b);
void vg_put_u8(struct vg_buf *b, uint8_t v);
void vg_put_u16(struct vg_buf *b, uint16_t v);
void vg_put_u32(struct vg_buf *b, uint32_t v);
void vg_put_u64(struct vg_buf *b, uint64_t v);
void vg_put_bytes(struct vg_buf *b, const void *p, size_t n);
/* u32 length then bytes; a NULL pointer is encoded as length VG_NULL_LEN. */
#define VG_NULL_LEN          0xffffffffu
void vg_put_blob(struct vg_buf *b, const void *p, uint32_t n);
/* Reserve n bytes and return where they go (NULL on error). */
void *vg_put_space(struct vg_buf *b, size_t n);

void vg_rd_init(struct vg_rd *r, const void *p, size_t len);
uint8_t vg_get_u8(struct vg_rd *r);
uint16_t vg_get_u16(struct vg_rd *r);

/* The n-byte little-endian integer at p (n <= 8): one load where the host is little-endian. */
static inline uint64_t vg_load_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	__builtin_memcpy(&v, p, n);
#else
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
#endif
	return v;
}

/* An n-byte little-endian integer read (n <= 8); inline: every decode is made of them. */
static inline uint64_t vg_get_le(struct vg_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err || n > r->len - r->off) {
		if (!r->err)
			r->err = -EBADMSG;
		return 0;
	}
	p = r->p + r->off;
	r->off += n;
	return vg_load_le(p, n);
}

static inline uint32_t vg_get_u32(struct vg_rd *r)
{
	return (uint32_t)vg_get_le(r, 4);
}

static inline uint64_t vg_get_u64(struct vg_rd *r)
{
	return vg_get_le(r, 8);
}
/* Returns a pointer into the buffer (no copy), or NULL on overrun. */
const void *vg_get_bytes(struct vg_rd *r, size_t n);
/* Reads a blob: *n gets its length; returns NULL (and *is_null = 1) for a
 * NULL blob; a blob longer than max sets the error. */
const void *vg_get_blob(struct vg_rd *r, uint32_t max, uint32_t *n, int *is_null);

/*
 * Decoders below take a reader over exactly one message's payload and
 * return 0, -EPROTO when the payload breaks a rule (truncated, trailing
 * bytes, bad magic, a reserved field not 0) or -EMSGSIZE when a count or a
 * length is over its named maximum.  Pointers they store point into the
 * reader's buffer.  Encoders append to a vg_buf and return 0 or its error;
 * they refuse (-EMSGSIZE, nothing written) a message that would not decode.
 */

/* Writes h with reserved = 0; h->len must already be set. */
void vg_hdr_encode(const struct vg_hdr *h, uint8_t out[VG_HDR_SIZE]);
/* 0; -EMSGSIZE when len > VG_MSG_MAX; -EPROTO when len < VG_HDR_SIZE, the
 * kind is unknown, a flag is unknown or reserved != 0.  *h is filled in
 * either way (for logs). */
int vg_hdr_decode(const uint8_t in[VG_HDR_SIZE], struct vg_hdr *h);

int vg_hello_encode(const struct vg_hello *m, struct vg_buf *b);
int vg_hello_decode(struct vg_rd *r, struct vg_hello *m);
/* 0 when [min_version, version] includes VG_WIRE_VERSION, else -EPROTONOSUPPORT. */
int vg_hello_check_version(const struct vg_hello *m);
int vg_welcome_encode(const struct vg_welcome *m, struct vg_buf *b);
int vg_welcome_decode(struct vg_rd *r, struct vg_welcome *m);
int vg_thread_open_encode(const struct vg_thread_open *m, struct vg_buf *b);
int vg_thread_open_decode(struct vg_rd *r, struct vg_thread_open *m);
int vg_thread_opened_encode(const struct vg_thread_opened *m, struct vg_buf *b);
int vg_thread_opened_decode(struct vg_rd *r, struct vg_thread_opened *m);
int vg_attach_encode(const struct vg_attach *m, struct vg_buf *b);
int vg_attach_decode(struct vg_rd *r, struct vg_attach *m);
/* A step other than 1..3 is -EPROTO both ways. */
int vg_auth_encode(const struct vg_auth *m, struct vg_buf *b);
int vg_auth_decode(struct vg_rd *r, struct vg_auth *m);
int vg_error_encode(const struct vg_error *m, struct vg_buf *b);
int vg_error_decode(struct vg_rd *r, struct vg_error *m);
int vg_stats_encode(struct vg_buf *b);
int vg_stats_decode(struct vg_rd *r);
int vg_stats_reply_encode(const struct vg_stat *v, uint32_t n, struct vg_buf *b);
/* Stores up to max entries in v; *n gets the count; more than max (or than
 * VG_STATS_MAX) is -EMSGSIZE. */
int vg_stats_reply_decode(struct vg_rd *r, struct vg_stat *v, uint32_t max, uint32_t *n);

#endif
