/*
 * The session with vgpud: cuInit's handshake, one channel per guest thread,
 * round trips, and the process-life rules (fork, transport loss).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "auth.h"
#include "lc.h"
#include "tp.h"

struct lc_state lc = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

#define LC_DEFAULT_SERVER "unix:/run/vgpu/vgpud.sock"
/* Under $HOME: used for tcp: and vsock: servers when VGPU_SECRET_FILE is unset. */
#define LC_DEFAULT_SECRET ".config/vgpu/secret"

/* Where the session's connections go (thread channels too, on transports
 * that cannot pass descriptors), and the secret they prove, if any. */
static char *server_address;
static struct tp_secret *server_secret;

/* The control channel carries THREAD_OPEN requests from any thread. */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static int forked;		/* set in the child of a fork after cuInit */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t chan_key;

struct lc_tchan {
	struct tp_chan *chan;
	uint32_t tid;		/* channel id the worker gave us */
	struct vg_buf buf;	/* request scratch for lc_call */
	/* Bytes the request carries at buf offset ext_at without a copy in buf. */
	const void *ext;
	size_t ext_at, ext_len;
};

static __thread struct lc_tchan *tls_chan;
static __thread size_t (*tls_occ_cb)(int);

static void session_child_after_fork(void)
{
	/*
	 * The child's CUDA state is invalid, as with NVIDIA's driver.  The
	 * inherited sockets belong to the parent's session: never use them.
	 */
	forked = 1;
	tls_chan = NULL;
}

static void chan_destructor(void *p)
{
	struct lc_tchan *t = p;

	if (!t)
		return;
	if (!forked && t->chan)
		tp_chan_destroy(t->chan);
	vg_buf_fini(&t->buf);
	free(t);
}

static void key_init(void)
{
	pthread_key_create(&chan_key, chan_destructor);
	pthread_atfork(NULL, NULL, session_child_after_fork);
}

CUresult lc_check(void)
{
	if (__atomic_load_n(&lc.initialized, __ATOMIC_ACQUIRE) == 0 || forked)
		return CUDA_ERROR_NOT_INITIALIZED;
	if (__atomic_load_n(&lc.lost, __ATOMIC_RELAXED))
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	return CUDA_SUCCESS;
}

static void session_lost(const char *why, int err)
{
	if (!__atomic_exchange_n(&lc.lost, 1, __ATOMIC_RELAXED))
		VG_ERR("connection to vgpud lost (%s: %s); CUDA calls now fail with "
		       "CUDA_ERROR_DEVICE_UNAVAILABLE", why, strerror(err > 0 ? err : -err));
}

static uint64_t next_seq(void)
{
	return __atomic_add_fetch(&lc.seq, 1, __ATOMIC_RELAXED);
}

/*
 * Loads the secret for address: VGPU_SECRET_FILE (empty: none), else the
 * default file when it exists and the address is tcp: or vsock:.  0 or -1
 * (logged: a secret that cannot be used must not be silently skipped).
 */
static int secret_setup(const char *address)
{
	const char *path = getenv("VGPU_SECRET_FILE"), *home = getenv("HOME");
	char buf[4096], why[512];

	if (!path) {
		if (strncmp(address, "tcp:", 4) != 0 && strncmp(address, "vsock:", 6) != 0)
			return 0;
		if (!home || (size_t)snprintf(buf, sizeof(buf), "%s/%s", home, LC_DEFAULT_SECRET) >= sizeof(buf) ||
		    access(buf, F_OK) != 0)
			return 0;
		path = buf;
	}
	if (!*path)
		return 0;
	if (!server_secret)
		server_secret = calloc(1, sizeof(*server_secret));
	if (!server_secret)
		return -1;
	if (tp_secret_load(path, server_secret, why, sizeof(why)) < 0) {
		VG_WARN("%s", why);
		free(server_secret);
		server_secret = NULL;
		return -1;
	}
	return 0;
}

/* A new connection to the server, authenticated when we have a secret. */
static int server_connect(struct tp_chan **out)
{
	char why[VG_TEXT_MAX + 1] = "";
	int ret;

	ret = tp_connect(server_address, out);
	if (ret < 0)
		return ret;
	if (!server_secret)
		return 0;
	ret = tp_auth_client(*out, server_secret, why, sizeof(why));
	if (ret < 0) {
		VG_WARN("vgpud at %s: authentication failed: %s", server_address,
			why[0] ? why : strerror(-ret));
		tp_chan_destroy(*out);
		*out = NULL;
	}
	return ret;
}

/* ERROR's text, for a log line. */
static void error_text(const struct vg_buf *b, char *out, size_t n)
{
	struct vg_error e;
	struct vg_rd r;

	vg_rd_init(&r, b->p, b->len);
	if (vg_error_decode(&r, &e) == 0)
		snprintf(out, n, "%.*s", (int)e.ntext, e.text);
	else
		snprintf(out, n, "malformed ERROR");
}

/*
 * The worker answered THREAD_OPEN with ATTACH: the channel is a new
 * connection that sends the same ATTACH first and gets THREAD_OPENED.
 */
static struct tp_chan *chan_attach(const struct vg_hdr *offer, const struct vg_buf *b)
{
	struct vg_hdr h = *offer;
	struct tp_chan *c = NULL;
	struct vg_attach a;
	struct vg_buf rep;
	struct vg_rd r;
	char why[VG_TEXT_MAX + 1];
	int ret;

	vg_rd_init(&r, b->p, b->len);
	if (vg_attach_decode(&r, &a) < 0 || a.tid != offer->tid || offer->status != 0)
		return NULL;
	vg_buf_init(&rep);
	ret = server_connect(&c);
	if (ret < 0)
		goto fail;
	h.flags = 0;
	h.status = 0;
	ret = tp_send_msg(c, &h, b->p, b->len, -1);
	if (ret == 0)
		ret = tp_recv_msg(c, &h, &rep, VG_TEXT_MAX + 64, NULL);
	if (ret < 0)
		goto fail;
	if (h.kind == VG_MSG_ERROR) {
		error_text(&rep, why, sizeof(why));
		VG_WARN("vgpud refused a thread channel: %s", why);
		goto fail;
	}
	if (h.kind != VG_MSG_THREAD_OPENED || h.status != 0 || h.tid != a.tid)
		goto fail;
	vg_buf_fini(&rep);
	return c;
fail:
	vg_buf_fini(&rep);
	tp_chan_destroy(c);
	return NULL;
}

/* Opens a channel (THREAD_OPEN on the control channel); *tid gets its id. */
struct tp_chan *lc_chan_open_raw(uint32_t *tid);
struct tp_chan *lc_chan_open_raw(uint32_t *tid)
{
	struct vg_hdr h = { .kind = VG_MSG_THREAD_OPEN };
	struct tp_chan *c = NULL;
	struct vg_buf b;
	struct vg_rd r;
	uint32_t os_tid = (uint32_t)syscall(SYS_gettid);
	uint8_t payload[4] = { (uint8_t)os_tid, (uint8_t)(os_tid >> 8), (uint8_t)(os_tid >> 16),
			       (uint8_t)(os_tid >> 24) };
	int fd = -1, ret;

	vg_buf_init(&b);
	pthread_mutex_lock(&ctl_lock);
	h.seq = next_seq();
	ret = tp_send_msg(lc.ctl, &h, payload, sizeof(payload), -1);
	if (ret == 0)
		ret = tp_recv_msg(lc.ctl, &h, &b, VG_TEXT_MAX + 64, &fd);
	pthread_mutex_unlock(&ctl_lock);
	if (ret < 0) {
		session_lost("opening a channel", ret);
		goto out;
	}
	if (h.kind == VG_MSG_ATTACH) {
		c = chan_attach(&h, &b);
		if (c)
			*tid = h.tid;
		goto out;
	}
	if (h.kind != VG_MSG_THREAD_OPENED || h.status != 0 || fd < 0)
		goto out;
	vg_rd_init(&r, b.p, b.len);
	*tid = vg_get_u32(&r);
	if (tp_unix_wrap(fd, &c) < 0)
		c = NULL;
	else
		fd = -1;
out:
	if (fd >= 0)
		close(fd);
	vg_buf_fini(&b);
	return c;
}

static unsigned int ring_spin_us(void);

/*
 * Moves a thread channel to shared-memory rings when the worker shares our
 * kernel (VGPU_RING=0 keeps the socket): RING_ATTACH goes on the socket with
 * the memfd; once answered, both sides use the rings.
 */
static void chan_ring_attach(struct lc_tchan *t)
{
	struct vg_hdr h = { .kind = VG_MSG_CALL, .op = VG_OP_RING_ATTACH, .tid = t->tid };
	const char *e = getenv("VGPU_RING");
	struct tp_chan *ring;
	struct vg_buf b;
	uint8_t payload[4];
	int fd, i;

	if (!(lc.caps & VG_CAP_SHM) || !(lc.caps & VG_CAP_RING_RECORDS) || (e && !strcmp(e, "0")))
		return;
	fd = tp_ring_create_fd(VG_RING_BYTES);
	if (fd < 0)
		return;
	for (i = 0; i < 4; i++)
		payload[i] = (uint8_t)(VG_RING_BYTES >> (8 * i));
	vg_buf_init(&b);
	h.seq = next_seq();
	if (tp_send_msg(t->chan, &h, payload, sizeof(payload), fd) == 0 &&
	    tp_recv_msg(t->chan, &h, &b, 64, NULL) == 0 && h.kind == VG_MSG_REPLY && h.status == 0 &&
	    tp_ring_wrap(t->chan, fd, VG_RING_BYTES, 1, &ring) == 0) {
		tp_ring_set_spin(ring, ring_spin_us());
		t->chan = ring;
	}
	vg_buf_fini(&b);
	close(fd);
}

/* Opens this thread's channel and binds it to the thread. */
static struct lc_tchan *chan_open(void)
{
	struct lc_tchan *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->chan = lc_chan_open_raw(&t->tid);
	if (!t->chan) {
		free(t);
		return NULL;
	}
	chan_ring_attach(t);
	vg_buf_init(&t->buf);
	pthread_setspecific(chan_key, t);
	return t;
}

static struct lc_tchan *chan_get(void)
{
	if (tls_chan)
		return tls_chan;
	tls_chan = chan_open();
	return tls_chan;
}

struct vg_buf *lc_scratch(void)
{
	struct lc_tchan *t = chan_get();

	if (!t)
		return NULL;
	vg_buf_reset(&t->buf);
	t->ext = NULL;
	t->ext_len = 0;
	return &t->buf;
}

int lc_scratch_borrow(struct vg_buf *b, const void *p, size_t n)
{
	struct lc_tchan *t = tls_chan;

	if (!t || b != &t->buf || t->ext || b->err || n > VG_MSG_MAX - b->len)
		return -1;
	t->ext = p;
	t->ext_at = b->len;
	t->ext_len = n;
	return 0;
}

/* Sends a request: the scratch buffer with its borrowed bytes, or req as it is. */
static int send_req(struct lc_tchan *t, struct vg_hdr *h, const struct vg_buf *req, int fd)
{
	struct iovec v[3];

	if (req != &t->buf || !t->ext)
		return tp_send_msg(t->chan, h, req->p, req->len, fd);
	v[0].iov_base = req->p;
	v[0].iov_len = t->ext_at;
	v[1].iov_base = (void *)t->ext;
	v[1].iov_len = t->ext_len;
	v[2].iov_base = req->p + t->ext_at;
	v[2].iov_len = req->len - t->ext_at;
	return tp_send_msgv(t->chan, h, v, v[2].iov_len ? 3 : 2, fd);
}

static int serve_host_call(struct lc_tchan *t, const struct vg_hdr *in, const struct vg_buf *p)
{
	struct vg_hdr h = { .kind = VG_MSG_HOST_RETURN, .op = in->op, .tid = t->tid, .seq = in->seq };
	uint8_t out[8] = { 0 };
	struct vg_rd r;

	vg_rd_init(&r, p->p, p->len);
	switch (in->op) {
	case VG_HC_OCCUPANCY_SMEM: {
		int bs = (int)vg_get_u32(&r);
		uint64_t v = 0;
		int i;

		if (!r.err && tls_occ_cb)
			v = tls_occ_cb(bs);
		for (i = 0; i < 8; i++)
			out[i] = (uint8_t)(v >> (8 * i));
		break;
	}
	default:
		h.status = CUDA_ERROR_NOT_SUPPORTED;
		break;
	}
	return tp_send_msg(t->chan, &h, out, sizeof(out), -1);
}

void lc_set_occupancy_callback(size_t (*cb)(int));
void lc_set_occupancy_callback(size_t (*cb)(int))
{
	tls_occ_cb = cb;
}

/*
 * Asynchronous sends.  A thread that sent no-reply calls records the last
 * one's sequence number; a replied call from a thread other than the last
 * sender asks the host to run it only after those (VG_F_ORDERED).
 */
/* How long a thread spins for a reply on a socket before it sleeps (VGPU_SPIN_US). */
static unsigned int spin_us(void)
{
	static int us = -1;

	if (us < 0) {
		const char *e = getenv("VGPU_SPIN_US");

		us = e && *e ? atoi(e) : 50;
		if (us < 0 || us > 100000)
			us = 50;
	}
	return (unsigned int)us;
}

/*
 * The same on a shared-memory ring.  A thread waiting for a reply is inside
 * a CUDA call, where NVIDIA's driver (CU_CTX_SCHED_AUTO) spins as long as
 * there are more CPUs than contexts; a sleep here would add a futex wake-up
 * (tens of microseconds in a VM) to every long wait, such as a decode
 * step's synchronisation.  So with four CPUs or more a thread spins up to
 * 20 ms before it sleeps; with fewer, 50 us.  VGPU_SPIN_US overrides both.
 */
static unsigned int ring_spin_us(void)
{
	return tp_ring_spin_setting("VGPU_SPIN_US", 20000);
}

static uint64_t last_async_seq;		/* atomic: newest no-reply call, any thread */
static __thread uint64_t my_async_seq;	/* newest no-reply call of this thread */
/*
 * Calls of any thread that took a sequence number and are not finished: a
 * no-reply call until it is sent, a call with a reply until the reply is
 * read.  A call that finds none but itself after taking its number went
 * alone: every call numbered before it was sent before it and, where on
 * another channel, is ordered before it (VG_F_ORDERED, decided after the
 * check), and none was still running in the worker.
 */
static unsigned long calls_busy;
static __thread uint64_t alone_seq;	/* this thread's last call with a reply, if it went alone; else 0 */

static void call_open(void)
{
	__atomic_add_fetch(&calls_busy, 1, __ATOMIC_SEQ_CST);
}

static void call_close(void)
{
	__atomic_sub_fetch(&calls_busy, 1, __ATOMIC_SEQ_CST);
}

static int async_enabled(void)
{
	static int on = -1;

	if (on < 0) {
		const char *e = getenv("VGPU_SYNC");

		on = !(e && *e && strcmp(e, "0") != 0);
	}
	return on;
}

CUresult lc_send_async(uint32_t op, const struct vg_buf *req)
{
	struct vg_hdr h = { .kind = VG_MSG_CALL, .op = op, .flags = VG_F_NO_REPLY };
	struct lc_tchan *t;
	int ret;

	if (!async_enabled())
		return CUDA_ERROR_NOT_SUPPORTED;
	if (req->err)
		return CUDA_ERROR_OUT_OF_MEMORY;
	t = chan_get();
	if (!t)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	h.tid = t->tid;
	call_open();
	h.seq = next_seq();
	if (__atomic_load_n(&last_async_seq, __ATOMIC_RELAXED) != my_async_seq)
		h.flags |= VG_F_ORDERED;
	ret = send_req(t, &h, req, -1);
	if (ret < 0) {
		call_close();
		session_lost("call", ret);
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	}
	my_async_seq = h.seq;
	__atomic_store_n(&last_async_seq, h.seq, __ATOMIC_RELAXED);
	call_close();
	return CUDA_SUCCESS;
}

/*
 * Errors that leave the context unusable: the driver returns them from every
 * later call, launches included, so asynchronous sends must return them too.
 */
static void note_sticky(CUresult r)
{
	switch ((int)r) {
	case CUDA_ERROR_ILLEGAL_ADDRESS:
	case CUDA_ERROR_LAUNCH_TIMEOUT:
	case CUDA_ERROR_ASSERT:
	case CUDA_ERROR_HARDWARE_STACK_ERROR:
	case CUDA_ERROR_ILLEGAL_INSTRUCTION:
	case CUDA_ERROR_MISALIGNED_ADDRESS:
	case CUDA_ERROR_INVALID_ADDRESS_SPACE:
	case CUDA_ERROR_INVALID_PC:
	case CUDA_ERROR_LAUNCH_FAILED:
		__atomic_store_n(&lc.sticky, (int)r, __ATOMIC_RELAXED);
		break;
	default:
		break;
	}
}

CUresult lc_rpc(uint32_t op, const struct vg_buf *req, struct vg_buf *rep)
{
	return lc_rpc_fd(op, req, rep, -1);
}

CUresult lc_rpc_send(uint32_t op, const struct vg_buf *req, int fd, uint64_t *seqp)
{
	struct lc_tchan *t;
	struct vg_hdr h = { .kind = VG_MSG_CALL, .op = op };
	int ret, alone;

	if (req->err)
		return CUDA_ERROR_OUT_OF_MEMORY;
	t = chan_get();
	if (!t)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	h.tid = t->tid;
	call_open();
	h.seq = next_seq();
	alone = __atomic_load_n(&calls_busy, __ATOMIC_SEQ_CST) == 1;
	/* Another thread's no-reply calls may still be queued: keep their order. */
	if (__atomic_load_n(&last_async_seq, __ATOMIC_RELAXED) != my_async_seq)
		h.flags |= VG_F_ORDERED;
	ret = send_req(t, &h, req, fd);
	if (ret < 0) {
		call_close();
		session_lost("call", ret);
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	}
	alone_seq = alone ? h.seq : 0;
	*seqp = h.seq;
	return CUDA_SUCCESS;
}

static CUresult rpc_wait(uint32_t op, uint64_t seq, struct vg_buf *rep);

/* Waits for the reply to seq, serving host calls meanwhile. */
CUresult lc_rpc_wait(uint32_t op, uint64_t seq, struct vg_buf *rep)
{
	CUresult res = rpc_wait(op, seq, rep);

	call_close();
	return res;
}

static CUresult rpc_wait(uint32_t op, uint64_t seq, struct vg_buf *rep)
{
	struct lc_tchan *t = chan_get();
	struct vg_hdr h;
	int ret;

	if (!t)
		return CUDA_ERROR_DEVICE_UNAVAILABLE;
	for (;;) {
		/* Rings spin by themselves; sockets spin here before sleeping. */
		if (!tp_chan_is_ring(t->chan))
			tp_chan_spin(t->chan, spin_us());
		ret = tp_recv_msg(t->chan, &h, rep, VG_MSG_MAX, NULL);
		if (ret < 0)
			goto lost;
		if (h.kind == VG_MSG_HOST_CALL) {
			ret = serve_host_call(t, &h, rep);
			if (ret < 0)
				goto lost;
			continue;
		}
		if (h.kind != VG_MSG_REPLY || h.seq != seq) {
			ret = -EPROTO;
			goto lost;
		}
		note_sticky((CUresult)h.status);
		if (h.status != 0 && vg_log_enabled(VG_LOG_DEBUG))
			VG_DEBUG("op %u (%s) returned %d", op,
				 op < VG_FN_MAX && vg_fn_descs[op].name ? vg_fn_descs[op].name : "manual", h.status);
		return (CUresult)h.status;
	}
lost:
	session_lost("call", ret);
	return CUDA_ERROR_DEVICE_UNAVAILABLE;
}

/*
 * Synchronisations answered here.  A thread whose synchronisation of a
 * stream (or of its context) returned CUDA_SUCCESS, the call having gone
 * alone, would get CUDA_SUCCESS again from the same synchronisation as long
 * as the process has sent nothing since: no work was queued after the one
 * that completed, and a later failure of work queued elsewhere is ordered
 * with this thread's calls only by a call, which would be sent.  llama.cpp
 * synchronises its stream several times a token with nothing in between.
 * The record is the thread's own (the per-thread stream and the current
 * context are properties of the thread).  VGPU_LOCAL_SYNC=0 turns it off.
 */
static __thread struct {
	uint64_t seq, ctx, stream;
	int whole_ctx;
} synced;

static int local_sync_enabled(void)
{
	static int on = -1;

	if (on < 0) {
		const char *e = getenv("VGPU_LOCAL_SYNC");

		on = !(e && !strcmp(e, "0"));
	}
	return on;
}

/* Which synchronisation fn is: 1 a stream's (*stream set), 2 the context's, 0 neither. */
static int sync_kind(int fn, const uint64_t *a, uint64_t *ctx, uint64_t *stream)
{
	uint64_t cur;

	switch (fn) {
	case VG_FN_cuStreamSynchronize:
	case VG_FN_cuStreamSynchronize_ptsz:
		/* In the per-thread build NULL is the thread's own stream. */
		*stream = fn == VG_FN_cuStreamSynchronize_ptsz && !a[0] ? (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD
									  : a[0];
		break;
	case VG_FN_cuCtxSynchronize:
		*stream = 0;
		break;
	case VG_FN_cuCtxSynchronize_v2:
		/* A context named (not NULL: "the current one") is left to the host. */
		if (a[0])
			return 0;
		*stream = 0;
		break;
	default:
		return 0;
	}
	if (!lc_ctx_current_known(&cur) || !cur)
		return 0;
	*ctx = cur;
	return fn == VG_FN_cuCtxSynchronize || fn == VG_FN_cuCtxSynchronize_v2 ? 2 : 1;
}

int lc_sync_local(int fn, const uint64_t *a)
{
	uint64_t ctx, stream;
	int kind;

	if (!synced.seq || !local_sync_enabled())
		return 0;
	kind = sync_kind(fn, a, &ctx, &stream);
	if (!kind || ctx != synced.ctx || __atomic_load_n(&lc.seq, __ATOMIC_SEQ_CST) != synced.seq)
		return 0;
	if (synced.whole_ctx)
		/* Every stream of the context is idle; a stream named by handle may be another context's. */
		return kind == 2 || stream <= (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD;
	return kind == 1 && stream == synced.stream;
}

void lc_sync_done(int fn, const uint64_t *a)
{
	uint64_t ctx, stream;
	int kind = sync_kind(fn, a, &ctx, &stream);

	synced.seq = 0;
	if (!kind || !alone_seq)
		return;
	synced.ctx = ctx;
	synced.stream = stream;
	synced.whole_ctx = kind == 2;
	synced.seq = alone_seq;
}

CUresult lc_rpc_fd(uint32_t op, const struct vg_buf *req, struct vg_buf *rep, int fd)
{
	uint64_t seq;
	CUresult res = lc_rpc_send(op, req, fd, &seq);

	return res == CUDA_SUCCESS ? lc_rpc_wait(op, seq, rep) : res;
}

/* Environment the worker should see: the driver's own settings. */
static int env_forwarded(const char *e)
{
	if (strncmp(e, "CUDA_", 5) != 0)
		return 0;
	/* Applied by the guest library against the snapshot, never by the host. */
	if (!strncmp(e, "CUDA_VISIBLE_DEVICES=", 21))
		return 0;
	return 1;
}

static CUresult session_hello(void)
{
	extern char **environ;
	struct vg_hello m = {
		.magic = VG_WIRE_MAGIC,
		.version = VG_WIRE_VERSION,
		.min_version = VG_WIRE_VERSION,
		.caps = (tp_chan_passes_fds(lc.ctl) ? VG_CAP_SHM | VG_CAP_RING_RECORDS : 0) | VG_CAP_MODCACHE,
		.driver_version = VGPU_DRIVER_VERSION,
		.pid = (uint32_t)getpid(),
	};
	struct vg_hdr h = { .kind = VG_MSG_HELLO };
	struct vg_welcome w;
	struct vg_buf b;
	struct vg_rd r;
	CUresult res = CUDA_ERROR_NO_DEVICE;
	char **e;
	int ret;

	for (e = environ; e && *e && m.nenv < VG_ENV_MAX; e++) {
		size_t n = strlen(*e);

		if (!env_forwarded(*e) || n == 0 || n > VG_ENV_ENTRY_MAX)
			continue;
		m.env[m.nenv] = *e;
		m.env_len[m.nenv] = (uint32_t)n;
		m.nenv++;
	}
	if (getenv("VGPU_MODULE_CACHE") && !strcmp(getenv("VGPU_MODULE_CACHE"), "0"))
		m.caps &= ~VG_CAP_MODCACHE;
	vg_buf_init(&b);
	if (vg_hello_encode(&m, &b) < 0 || b.err)
		goto out;
	h.seq = next_seq();
	ret = tp_send_msg(lc.ctl, &h, b.p, b.len, -1);
	if (ret == 0)
		ret = tp_recv_msg(lc.ctl, &h, &b, VG_TEXT_MAX + 64, NULL);
	if (ret < 0) {
		VG_WARN("vgpud did not answer the handshake: %s", strerror(-ret));
		goto out;
	}
	if (h.kind == VG_MSG_ERROR) {
		char why[VG_TEXT_MAX + 1];

		error_text(&b, why, sizeof(why));
		VG_WARN("vgpud refused the session: %s", why);
		goto out;
	}
	if (h.kind != VG_MSG_WELCOME) {
		VG_WARN("vgpud answered the handshake with message kind %u", h.kind);
		goto out;
	}
	vg_rd_init(&r, b.p, b.len);
	if (vg_welcome_decode(&r, &w) < 0) {
		VG_WARN("malformed WELCOME from vgpud");
		goto out;
	}
	if (h.status != 0) {
		VG_WARN("vgpud refused the session: %.*s", (int)w.ntext, w.text ? w.text : "");
		res = (CUresult)h.status;
		goto out;
	}
	lc.caps = w.caps & m.caps;
	res = CUDA_SUCCESS;
out:
	vg_buf_fini(&b);
	return res;
}

CUresult lc_snapshot(void);

VG_EXPORT CUresult cuInit(unsigned int Flags)
{
	const char *server;
	CUresult res;
	int ret;

	if (Flags != 0)
		return CUDA_ERROR_INVALID_VALUE;
	pthread_once(&key_once, key_init);
	if (forked)
		return CUDA_ERROR_NOT_INITIALIZED;
	pthread_mutex_lock(&lc.lock);
	if (lc.initialized) {
		pthread_mutex_unlock(&lc.lock);
		return lc.lost ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_SUCCESS;
	}
	server = getenv("VGPU_SERVER");
	if (!server || !*server)
		server = LC_DEFAULT_SERVER;
	VG_DEBUG("cuInit: connecting to %s", server);
	free(server_address);
	server_address = strdup(server);
	res = CUDA_ERROR_NO_DEVICE;
	if (!server_address || secret_setup(server) < 0)
		goto fail;
	ret = server_connect(&lc.ctl);
	if (ret < 0) {
		if (ret != -EACCES)
			VG_WARN("cannot reach vgpud at %s: %s (set VGPU_SERVER)", server, strerror(-ret));
		goto fail;
	}
	res = session_hello();
	if (res != CUDA_SUCCESS)
		goto fail_close;
	lc.pid = getpid();
	if (!lc.next_id)
		lc.next_id = 0x10000;
	vg_htab_init(&lc.handles);
	vg_htab_init(&lc.hostmem);
	VG_DEBUG("cuInit: session open; device snapshot");
	res = lc_snapshot();
	if (res != CUDA_SUCCESS)
		goto fail_close;
	VG_DEBUG("cuInit: done");
	__atomic_store_n(&lc.initialized, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&lc.lock);
	return CUDA_SUCCESS;

fail_close:
	if (tls_chan) {
		pthread_setspecific(chan_key, NULL);
		chan_destructor(tls_chan);
		tls_chan = NULL;
	}
	tp_chan_destroy(lc.ctl);
	lc.ctl = NULL;
fail:
	pthread_mutex_unlock(&lc.lock);
	return res;
}
