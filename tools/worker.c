/*
 * vgpu-worker: serves one client process.
 *
 *   vgpu-worker --fd N (--driver PATH | --test-driver PATH) [--stats-dir DIR]
 *               [--nofd [--tcp]] [--secret-file FILE] [--limits LIST]
 *
 * The control channel (fd N) carries HELLO/WELCOME, THREAD_OPEN and STATS;
 * every guest thread gets a socket pair and a host thread of its own.
 * --nofd: the connection cannot pass descriptors (TCP, vsock): no shared
 * memory, and thread channels are new connections (ATTACH, wk_attach.c); a
 * connection whose first message is ATTACH is handed to its session and
 * this worker ends without loading the driver.  --secret-file: every
 * connection authenticates first (AUTH, transport/auth.c).  When
 * the control channel closes the client is gone: threads are stopped, the
 * driver objects it left are released, call counts are written, and the
 * worker exits.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "elfnote.h"
#include "vgpu/ops.h"
#include "tp.h"
#include "wk_attach.h"
#include "wk_cache.h"
#include "worker.h"

struct wk_state wk = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cb_lock = PTHREAD_MUTEX_INITIALIZER,
};

static struct tp_chan *ctl;
static int test_driver;
static int nofd;			/* the transport cannot pass descriptors */
static struct tp_secret *secret;	/* --secret-file: every connection authenticates */

void wk_fatal(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	VG_ERR("ending the session: malformed message from the client: %s", msg);
	/* The process ends; the driver frees what the client held. */
	_exit(3);
}

static void usage(void)
{
	fprintf(stderr, "usage: vgpu-worker (--fd N | --warm N) (--driver PATH | --test-driver PATH) [--stats-dir DIR]\n"
			"                   [--nofd [--tcp]] [--secret-file FILE] [--cache-dir DIR] [--cache-max BYTES]\n"
			"                   [--limits LIST]\n");
	exit(2);
}

/* ---- the driver -------------------------------------------------------- */

static int driver_load(const char *path, char *why, size_t whylen)
{
	int i, note;

	note = vd_elf_has_vgpu_note(path);
	if (note < 0) {
		snprintf(why, whylen, "cannot read the driver %s: %s", path, strerror(-note));
		return -1;
	}
	if (note > 0) {
		snprintf(why, whylen, "%s is vgpu's own libcuda.so.1, not a driver; refusing to load it", path);
		return -1;
	}
	wk.driver = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!wk.driver) {
		snprintf(why, whylen, "cannot load the driver %s: %s", path, dlerror());
		return -1;
	}
	for (i = 1; i < VG_FN_MAX; i++) {
		const char *n = vg_fn_descs[i].name;

		if (!n)
			continue;
		wk.fns[i] = dlsym(wk.driver, n);
		/*
		 * A driver without the per-thread-default-stream entry points
		 * (the CPU test driver): the base function has the same
		 * signature; its default stream is then the legacy one.
		 */
		if (!wk.fns[i] && strlen(n) > 5 &&
		    (!strcmp(n + strlen(n) - 5, "_ptds") || !strcmp(n + strlen(n) - 5, "_ptsz"))) {
			char base[128];

			snprintf(base, sizeof(base), "%.*s", (int)strlen(n) - 5, n);
			wk.fns[i] = dlsym(wk.driver, base);
		}
		/* Where a deferred error of an asynchronous call surfaces. */
		wk.syncs[i] = strstr(n, "Synchronize") || strstr(n, "Query") ||
			      (!strstr(n, "Async") && (!strncmp(n, "cuMemcpy", 8) || !strncmp(n, "cuMemset", 8)));
	}
	return 0;
}

/* ---- threads ----------------------------------------------------------- */

/*
 * Before a call with sequence number seq runs, no-reply calls with lower
 * numbers sent on other channels must have run: the guest returned from
 * them before this call was made.  Only no-reply calls can be in that state:
 * a guest thread waiting for a reply sends nothing else meanwhile.
 */
static void wait_ordered(struct wk_thread *self, uint64_t seq)
{
	struct wk_thread *t, *head;

	pthread_mutex_lock(&wk.lock);
	head = wk.threads;
	pthread_mutex_unlock(&wk.lock);
	for (t = head; t; t = t->next) {
		if (t == self || t->callback)
			continue;
		pthread_mutex_lock(&t->rx_lock);
		for (;;) {
			uint8_t hb[VG_HDR_SIZE];
			struct vg_hdr h;
			ssize_t n;

			if (t->busy_seq && t->busy_seq < seq) {
				pthread_cond_wait(&t->rx_cond, &t->rx_lock);
				continue;
			}
			if (tp_chan_is_ring(t->chan))
				n = tp_ring_peek(t->chan, hb, sizeof(hb)) ? (ssize_t)sizeof(hb) : 0;
			else if (tp_chan_is_ivshmem(t->chan))
				n = tp_ivshmem_peek(t->chan, hb, sizeof(hb)) ? (ssize_t)sizeof(hb) : 0;
			else
				n = recv(t->chan->fd, hb, sizeof(hb), MSG_PEEK | MSG_DONTWAIT);
			if (n == (ssize_t)sizeof(hb) && vg_hdr_decode(hb, &h) == 0 &&
			    (h.flags & VG_F_NO_REPLY) && h.seq < seq) {
				pthread_cond_wait(&t->rx_cond, &t->rx_lock);
				continue;
			}
			break;
		}
		pthread_mutex_unlock(&t->rx_lock);
	}
}

static int is_synchronizing(uint32_t op)
{
	if (op < VG_FN_MAX)
		return wk.syncs[op];
	return op == VG_OP_MEMCPY2D || op == VG_OP_MEMCPY3D;
}

/*
 * How long a host thread spins for its guest thread's next call before it
 * sleeps.  The guest's next call usually follows within a few hundred
 * microseconds (a decode step's CPU work), and waking a sleeping thread
 * costs tens of microseconds, so with four CPUs or more the thread spins
 * 2 ms; with fewer, 50 us.  VGPU_WORKER_SPIN_US (vgpud's environment)
 * overrides both.
 */
static unsigned int wk_ring_spin_us(void)
{
	return tp_ring_spin_setting("VGPU_WORKER_SPIN_US", 2000);
}

/* VGPU_TRACE: every call logged; read once (getenv per call costs on the launch path). */
static int trace_calls;
static uint64_t timing_tick0, timing_ns0;	/* the clocks at start: ticks -> ns at the end */

/* One message of op served, which arrived at tick `since` (t->timing set). */
static void timing_note(struct wk_thread *t, uint32_t op, uint64_t since)
{
	unsigned int k = op < VG_FN_MAX ? op : op >= VG_OP_BASE ? VG_FN_MAX + (op - VG_OP_BASE) : 0;

	if (k >= WK_TIMING_SLOTS)
		return;
	t->timing->n[k]++;
	t->timing->busy[k] += wk_ticks() - since;
	t->timing->driver[k] += wk_driver_ticks;
}

static void *thread_main(void *arg)
{
	struct wk_thread *t = arg;
	struct pollfd pfd = { .fd = t->chan->fd, .events = POLLIN };
	struct vg_hdr h;
	struct vg_rd r;
	struct timespec t0 = { 0, 0 };
	uint64_t arrived = 0;
	CUresult res;
	int ret, noreply;

	for (;;) {
		/* Wait outside the lock, so others may peek at what is queued. */
		if (tp_chan_is_ring(t->chan)) {
			if (tp_ring_wait_readable(t->chan) < 0)
				break;
		} else if (tp_chan_is_ivshmem(t->chan)) {
			if (tp_ivshmem_wait_readable(t->chan) < 0)
				break;
		} else if (!tp_chan_spin(t->chan, 50) && poll(&pfd, 1, -1) < 0 && errno == EINTR) {
			continue;
		}
		if (t->timing) {
			arrived = wk_ticks();
			wk_driver_ticks = 0;
		}
		pthread_mutex_lock(&t->rx_lock);
		if (t->busy_seq) {
			/* The no-reply call before, finished (see below). */
			t->busy_seq = 0;
			pthread_cond_broadcast(&t->rx_cond);
		}
		ret = tp_recv_msg(t->chan, &h, &t->in, wk_limits_payload_max(), &t->fd_in);
		noreply = ret == 0 && (h.flags & VG_F_NO_REPLY);
		if (noreply)
			t->busy_seq = h.seq;
		pthread_mutex_unlock(&t->rx_lock);
		/* Once the session ends, what a shut channel gives is not the guest's. */
		if (ret < 0 && __atomic_load_n(&wk.stopping, __ATOMIC_ACQUIRE))
			break;
		if (ret == -EPROTO || ret == -EMSGSIZE || ret == -EBADMSG)
			wk_fatal("malformed header on a thread channel (%s)", strerror(-ret));
		if (ret < 0)
			break;		/* the guest thread ended, or the client went */
		if (h.kind != VG_MSG_CALL)
			wk_fatal("message kind %u on a thread channel", h.kind);
		if (h.flags & VG_F_ORDERED)
			wait_ordered(t, h.seq);
		t->seq = h.seq;
		vg_buf_reset(&t->out);
		vg_rd_init(&r, t->in.p, t->in.len);
		if (trace_calls)
			clock_gettime(CLOCK_MONOTONIC, &t0);
		if (h.op < VG_OP_BASE) {
			if (h.op == 0 || h.op >= VG_FN_MAX)
				wk_fatal("unknown function id %u", h.op);
			res = wk_generic(t, (int)h.op, &r, &t->out);
		} else {
			res = wk_manual(t, h.op, &r, &t->out);
		}
		if (t->fd_in >= 0) {
			close(t->fd_in);	/* an operation that keeps it has dup'ed it */
			t->fd_in = -1;
		}
		if (trace_calls) {
			struct timespec t1;

			clock_gettime(CLOCK_MONOTONIC, &t1);
			VG_WARN("trace: %ld.%06ld channel %u op %u (%s) -> %d, %.1f us", (long)t0.tv_sec,
				t0.tv_nsec / 1000, t->tid, h.op,
				h.op < VG_FN_MAX && vg_fn_descs[h.op].name ? vg_fn_descs[h.op].name : "manual", res,
				(double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3);
		}
		if (res != CUDA_SUCCESS && vg_log_enabled(VG_LOG_DEBUG))
			VG_DEBUG("op %u (%s) returned %d%s", h.op,
				 h.op < VG_FN_MAX && vg_fn_descs[h.op].name ? vg_fn_descs[h.op].name : "manual",
				 res, noreply ? " (deferred)" : "");
		if (noreply) {
			/* Reported by this thread's next synchronising call, once. */
			if (res != CUDA_SUCCESS && t->deferred == CUDA_SUCCESS)
				t->deferred = res;
			if (t->timing)
				timing_note(t, h.op, arrived);
			/*
			 * A launch's next call is usually queued already: the
			 * lock taken to read it says this one finished.
			 */
			if (tp_chan_is_ring(t->chan) && tp_ring_readable(t->chan) > 0)
				continue;
			pthread_mutex_lock(&t->rx_lock);
			t->busy_seq = 0;
			pthread_cond_broadcast(&t->rx_cond);
			pthread_mutex_unlock(&t->rx_lock);
			continue;
		}
		if (res == CUDA_SUCCESS && t->deferred != CUDA_SUCCESS && is_synchronizing(h.op)) {
			res = t->deferred;
			t->deferred = CUDA_SUCCESS;
		}
		if (res != CUDA_SUCCESS)
			vg_buf_reset(&t->out);
		if (t->out.err)
			res = CUDA_ERROR_OUT_OF_MEMORY, vg_buf_reset(&t->out);
		h.kind = VG_MSG_REPLY;
		h.flags = 0;
		h.status = (int32_t)res;
		h.tid = t->tid;
		if (tp_send_msg(t->chan, &h, t->out.p, t->out.len, -1) < 0)
			break;
		if (t->timing)
			timing_note(t, h.op, arrived);
		if (t->callback)
			break;		/* host functions' trampolines own it now */
		if (t->ring_fd >= 0) {
			struct tp_chan *ring;

			pthread_mutex_lock(&t->rx_lock);
			ret = tp_ring_wrap(t->chan, t->ring_fd, t->ring_bytes, 0, &ring);
			if (ret == 0) {
				tp_ring_set_spin(ring, wk_ring_spin_us());
				t->chan = ring;
			}
			pthread_mutex_unlock(&t->rx_lock);
			close(t->ring_fd);
			t->ring_fd = -1;
			if (ret < 0)
				wk_fatal("cannot map the guest's rings: %s", strerror(-ret));
		}
	}
	pthread_mutex_lock(&t->rx_lock);
	if (t->busy_seq) {
		t->busy_seq = 0;
		pthread_cond_broadcast(&t->rx_cond);
	}
	pthread_mutex_unlock(&t->rx_lock);
	if (!t->callback)
		wk_limits_thread_exit();	/* the callback channel stays for the session */
	return NULL;
}

int wk_host_call(struct wk_thread *t, uint32_t op, const struct vg_buf *req, struct vg_buf *rep)
{
	struct vg_hdr h = { .kind = VG_MSG_HOST_CALL, .op = op, .tid = t->tid, .seq = t->seq };
	int ret;

	ret = tp_send_msg(t->chan, &h, req->p, req->len, -1);
	if (ret < 0)
		return ret;
	ret = tp_recv_msg(t->chan, &h, rep, wk_limits_payload_max(), NULL);
	if (ret < 0)
		return ret;
	if (h.kind != VG_MSG_HOST_RETURN || h.op != op)
		wk_fatal("expected HOST_RETURN, got kind %u", h.kind);
	return h.status == 0 ? 0 : -EIO;
}

/* A host thread for channel tid on chan (taken on success). */
static struct wk_thread *thread_create(uint32_t tid, struct tp_chan *chan)
{
	struct wk_thread *t;
	int ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->chan = chan;
	t->tid = tid;
	t->fd_in = -1;
	t->ring_fd = -1;
	if (wk_timing)
		t->timing = calloc(1, sizeof(*t->timing));	/* none: this thread is not timed */
	pthread_mutex_init(&t->rx_lock, NULL);
	pthread_cond_init(&t->rx_cond, NULL);
	vg_buf_init(&t->in);
	vg_buf_init(&t->out);
	ret = pthread_create(&t->thread, NULL, thread_main, t);
	if (ret) {
		free(t->timing);
		free(t);
		return NULL;
	}
	pthread_mutex_lock(&wk.lock);
	t->next = wk.threads;
	wk.threads = t;
	pthread_mutex_unlock(&wk.lock);
	return t;
}

static void put_thread_opened(uint32_t tid, uint8_t payload[8])
{
	int i;

	for (i = 0; i < 4; i++)
		payload[i] = (uint8_t)(tid >> (8 * i));
	memset(payload + 4, 0, 4);
}

int wk_thread_start(uint32_t tid, struct tp_chan *chan, uint64_t seq)
{
	struct vg_hdr h = { .kind = VG_MSG_THREAD_OPENED, .tid = tid, .seq = seq };
	uint8_t payload[8];
	int ret;

	/* Answered before the thread runs: it is the only one to use chan then. */
	put_thread_opened(tid, payload);
	ret = tp_send_msg(chan, &h, payload, sizeof(payload), -1);
	if (ret < 0)
		return ret;
	return thread_create(tid, chan) ? 0 : -ENOMEM;
}

/* No descriptors on this transport: the guest attaches a new connection. */
static int thread_offer(const struct vg_hdr *in, uint32_t tid)
{
	struct vg_hdr h = { .kind = VG_MSG_ATTACH, .seq = in->seq, .tid = tid };
	struct vg_attach a;
	struct vg_buf b;
	int ret;

	ret = wk_attach_offer(tid, &a);
	if (ret < 0)
		return ret;
	vg_buf_init(&b);
	ret = vg_attach_encode(&a, &b);
	if (ret == 0)
		ret = tp_send_msg(ctl, &h, b.p, b.len, -1);
	vg_buf_fini(&b);
	return ret;
}

static int thread_open(const struct vg_hdr *in)
{
	struct vg_hdr h = { .kind = VG_MSG_THREAD_OPENED, .seq = in->seq };
	static uint32_t next_tid;
	struct tp_chan *chan;
	uint8_t payload[8];
	int peer = -1, ret;

	if (wk_limits_thread_enter() < 0) {
		/* max_threads: this guest thread's calls fail; the session goes on. */
		h.status = CUDA_ERROR_OUT_OF_MEMORY;
		return tp_send_msg(ctl, &h, NULL, 0, -1);
	}
	if (nofd)
		return thread_offer(in, ++next_tid);
	ret = tp_unix_pair(&chan, &peer);
	if (ret < 0)
		return ret;
	if (!thread_create(++next_tid, chan)) {
		tp_chan_destroy(chan);
		close(peer);
		return -ENOMEM;
	}
	put_thread_opened(next_tid, payload);
	h.tid = next_tid;
	ret = tp_send_msg(ctl, &h, payload, 8, peer);
	close(peer);
	return ret;
}

static void threads_stop(void)
{
	struct wk_thread *t;

	/* Ending the channels ends the threads once their current call returns. */
	__atomic_store_n(&wk.stopping, 1, __ATOMIC_RELEASE);
	for (t = wk.threads; t; t = t->next) {
		if (tp_chan_is_ivshmem(t->chan))
			tp_ivshmem_shutdown(t->chan);
		else
			shutdown(t->chan->fd, SHUT_RDWR);
	}
	for (t = wk.threads; t; t = t->next)
		pthread_join(t->thread, NULL);
}

/* ---- statistics -------------------------------------------------------- */

/*
 * "# timing NAME messages N busy_ns X driver_ns Y outside_ns Z": per
 * message of the operation, averaged over every thread; manual operations
 * by their VG_OP_ names (include/vgpu/wire.h and ops.h), else "op+K".
 */
static void timing_write(FILE *f)
{
	/* The manual operations by VG_OP_BASE offset, as wire.h and ops.h name them. */
	static const char *const manual[] = {
		[1] = "SNAPSHOT", [2] = "MODULE_LOAD", [3] = "FUNC_INFO", [4] = "LAUNCH", [5] = "LIBRARY_LOAD",
		[6] = "MEMCPY2D", [7] = "MEMCPY3D", [8] = "POINTER_ATTR", [9] = "OCC_BLOCKSIZE",
		[10] = "FUNC_NAME", [11] = "LAUNCH_EX", [12] = "CALLBACK_CHANNEL", [13] = "HOST_FUNC",
		[14] = "MEMLOC", [15] = "CAPTURE_INFO", [16] = "HOST_MEM", [17] = "ATTR_VALUE",
		[18] = "GRAPH_UPDATE", [19] = "RING_ATTACH", [20] = "OCC_CLUSTERS", [21] = "PRIMARY_PEEK",
	};
	/* Sums over the threads; static for their size (written once, at exit). */
	static uint64_t n[WK_TIMING_SLOTS], busy[WK_TIMING_SLOTS], drv[WK_TIMING_SLOTS];
	uint64_t ticks = wk_ticks() - timing_tick0, ns = tp_mono_ns() - timing_ns0;
	double per_tick = ticks ? (double)ns / (double)ticks : 1;
	struct wk_thread *t;
	unsigned int k;

	for (t = wk.threads; t; t = t->next) {
		if (!t->timing)
			continue;
		for (k = 0; k < WK_TIMING_SLOTS; k++) {
			n[k] += t->timing->n[k];
			busy[k] += t->timing->busy[k];
			drv[k] += t->timing->driver[k];
		}
	}
	for (k = 1; k < WK_TIMING_SLOTS; k++) {
		char name[32];
		double b, d;

		if (!n[k])
			continue;
		if (k < VG_FN_MAX)
			snprintf(name, sizeof(name), "%s", vg_fn_descs[k].name ? vg_fn_descs[k].name : "?");
		else if (k - VG_FN_MAX < sizeof(manual) / sizeof(manual[0]) && manual[k - VG_FN_MAX])
			snprintf(name, sizeof(name), "%s", manual[k - VG_FN_MAX]);
		else
			snprintf(name, sizeof(name), "op+%u", k - VG_FN_MAX);
		b = (double)busy[k] * per_tick / (double)n[k];
		d = (double)drv[k] * per_tick / (double)n[k];
		fprintf(f, "# timing %s messages %llu busy_ns %.1f driver_ns %.1f outside_ns %.1f\n", name,
			(unsigned long long)n[k], b, d, b - d);
	}
}

static void stats_write(void)
{
	char path[4096], tmp[4200];
	FILE *f;
	int i;

	if (!wk.stats_dir)
		return;
	snprintf(path, sizeof(path), "%s/worker-%d.stats", wk.stats_dir, (int)getpid());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		VG_WARN("cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	for (i = 1; i < VG_FN_MAX; i++)
		if (wk.calls[i])
			fprintf(f, "%llu %s\n", (unsigned long long)wk.calls[i], vg_fn_descs[i].name);
	/* Not function counts: lines a reader of counts skips (first field not a number). */
	fprintf(f, "# image_inline_bytes %llu\n# image_cache_hits %llu\n# image_cache_misses %llu\n"
		"# image_cache_stored %llu\n# image_cache_evicted %llu\n",
		(unsigned long long)wk_cache_stats.inline_bytes, (unsigned long long)wk_cache_stats.hits,
		(unsigned long long)wk_cache_stats.misses, (unsigned long long)wk_cache_stats.stored,
		(unsigned long long)wk_cache_stats.evicted);
	if (wk_timing)
		timing_write(f);
	if (fclose(f) == 0)
		rename(tmp, path);
}

/* ---- the session ------------------------------------------------------- */

static int welcome(int32_t status, const char *text)
{
	struct vg_welcome w = {
		.version = VG_WIRE_VERSION,
		.caps = (nofd ? 0 : VG_CAP_SHM | VG_CAP_RING_RECORDS) | (wk_cache_enabled() ? VG_CAP_MODCACHE : 0),
		.worker_pid = (uint32_t)getpid(),
		.text = text,
		.ntext = (uint32_t)strlen(text),
	};
	struct vg_hdr h = { .kind = VG_MSG_WELCOME, .status = status };
	struct vg_buf b;
	int ret;

	if (wk.fns[VG_FN_cuDriverGetVersion])
		WK_FN(cuDriverGetVersion)(&w.driver_version);
	vg_buf_init(&b);
	vg_welcome_encode(&w, &b);
	ret = b.err ? b.err : tp_send_msg(ctl, &h, b.p, b.len, -1);
	vg_buf_fini(&b);
	return ret;
}

/* h and b: the client's first message (after AUTH), expected to be HELLO. */
static int handshake(const char *driver, const struct vg_hdr *hh, struct vg_buf *b)
{
	struct vg_hello m;
	struct vg_hdr h = *hh;
	struct vg_rd r;
	char why[512] = "";
	int drv = 0, ret;
	uint32_t i;

	vg_rd_init(&r, b->p, b->len);
	if (h.kind != VG_MSG_HELLO || vg_hello_decode(&r, &m) < 0) {
		VG_ERR("the client did not open with a valid HELLO");
		ret = -EPROTO;
		goto out;
	}
	if (m.min_version > VG_WIRE_VERSION || m.version < VG_WIRE_VERSION) {
		snprintf(why, sizeof(why), "protocol versions %u..%u requested; this worker speaks %u",
			 m.min_version, m.version, VG_WIRE_VERSION);
		welcome(CUDA_ERROR_NOT_SUPPORTED, why);
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	/* A guest whose rings are laid out otherwise keeps its channels on the socket. */
	wk.ring_ok = (m.caps & VG_CAP_RING_RECORDS) != 0;
	/* The client's driver settings (CUDA_*) apply to the driver we load. */
	for (i = 0; i < m.nenv; i++) {
		char kv[VG_ENV_ENTRY_MAX + 1], *eq;

		memcpy(kv, m.env[i], m.env_len[i]);
		kv[m.env_len[i]] = '\0';
		eq = strchr(kv, '=');
		if (!eq || strncmp(kv, "CUDA_", 5) != 0)
			continue;
		*eq = '\0';
		setenv(kv, eq + 1, 1);
	}
	VG_DEBUG("HELLO from pid %u%s", m.pid, wk.driver ? " (warm worker)" : ": loading the driver");
	if (!wk.driver && driver_load(driver, why, sizeof(why)) < 0) {
		VG_ERR("%s", why);
		welcome(CUDA_ERROR_NO_DEVICE, why);
		ret = -ENOENT;
		goto out;
	}
	if (wk.fns[VG_FN_cuDriverGetVersion] && WK_FN(cuDriverGetVersion)(&drv) == CUDA_SUCCESS)
		wk_count(VG_FN_cuDriverGetVersion);
	if (drv < m.driver_version) {
		snprintf(why, sizeof(why), "the host driver implements CUDA %d, older than the guest's %d",
			 drv, m.driver_version);
		welcome(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, why);
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	if (nofd && (ret = wk_attach_listen()) < 0) {
		snprintf(why, sizeof(why), "cannot open the channel rendezvous: %s", strerror(-ret));
		VG_ERR("%s", why);
		welcome(CUDA_ERROR_OPERATING_SYSTEM, why);
		goto out;
	}
	VG_DEBUG("driver loaded: WELCOME");
	ret = welcome(0, "");
out:
	return ret;
}

static void serve_control(void)
{
	struct pollfd pfd[2] = {
		{ .fd = ctl->fd, .events = POLLIN },
		{ .fd = wk_attach_fd(), .events = POLLIN },
	};
	struct vg_hdr h;
	struct vg_buf b;

	vg_buf_init(&b);
	for (;;) {
		/* An ivshmem control channel has no descriptor: look at it and
		 * at the rendezvous socket in turn. */
		if (tp_chan_is_ivshmem(ctl)) {
			/* Idle, it sleeps in poll (1 ms at a time), not in a spinning wait. */
			int r = tp_ivshmem_wait_readable_ms(ctl, pfd[1].fd >= 0 ? 0 : -1);

			if (r == -ETIMEDOUT) {
				if (poll(pfd + 1, 1, 1) > 0 && (pfd[1].revents & POLLIN))
					wk_attach_accept();
				continue;
			}
			if (r < 0)
				break;
		} else if (pfd[1].fd >= 0) {
			/* Channel connections come on the rendezvous socket. */
			if (poll(pfd, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			if (pfd[1].revents & POLLIN)
				wk_attach_accept();
			if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		if (tp_recv_msg(ctl, &h, &b, VG_TEXT_MAX + 64, NULL) < 0)
			break;
		if (h.kind == VG_MSG_THREAD_OPEN) {
			if (thread_open(&h) < 0)
				break;
			continue;
		}
		VG_ERR("ending the session: message kind %u on the control channel", h.kind);
		break;
	}
	vg_buf_fini(&b);
}

/* ---- the warm worker --------------------------------------------------- */

/* Reads n bytes at the head of the socket without taking them; 0 or -1. */
static int peek_full(int fd, void *buf, size_t n)
{
	struct timespec ms = { 0, 1000 * 1000 };
	int tries;
	ssize_t got;

	for (tries = 0; tries < 5000; tries++) {
		got = recv(fd, buf, n, MSG_PEEK);
		if (got == (ssize_t)n)
			return 0;
		if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN))
			return -1;
		nanosleep(&ms, NULL);
	}
	return -1;
}

/*
 * 1 when the client's HELLO (still unread in the socket) asks for no CUDA_*
 * setting other than this process already has, so the driver it loaded
 * fits; 0 when it does not.  A HELLO that does not decode is left to the
 * handshake, which refuses it (1).
 */
static int hello_fits(int fd)
{
	uint8_t hb[VG_HDR_SIZE], *buf;
	struct vg_hello m;
	struct vg_hdr h;
	struct vg_rd r;
	uint32_t i;
	int fits = 1;

	if (peek_full(fd, hb, sizeof(hb)) < 0 || vg_hdr_decode(hb, &h) < 0 || h.kind != VG_MSG_HELLO ||
	    h.len > (1u << 20))
		return 1;
	buf = malloc(h.len);
	if (!buf)
		return 1;
	if (peek_full(fd, buf, h.len) == 0) {
		vg_rd_init(&r, buf + VG_HDR_SIZE, h.len - VG_HDR_SIZE);
		if (vg_hello_decode(&r, &m) == 0) {
			for (i = 0; i < m.nenv && fits; i++) {
				char kv[VG_ENV_ENTRY_MAX + 1], *eq;
				const char *cur;

				memcpy(kv, m.env[i], m.env_len[i]);
				kv[m.env_len[i]] = '\0';
				eq = strchr(kv, '=');
				if (!eq || strncmp(kv, "CUDA_", 5) != 0)
					continue;
				*eq = '\0';
				cur = getenv(kv);
				fits = cur && !strcmp(cur, eq + 1);
			}
		}
	}
	free(buf);
	return fits;
}

/* Receives the client's connection from the daemon; the fd, or -1 (the daemon went). */
static int warm_receive(int link)
{
	uint8_t c;
	int fd;

	if (tp_fd_recv(link, &c, &fd) < 0 || c != 'C') {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/*
 * A warm worker (--warm LINK): loads the driver, initialises it and makes
 * the device snapshot before any client, says 'R' on the link, and waits
 * for the daemon to hand it a connection (which may have come before the
 * 'R': a client that arrives while we start waits for us).  A client whose
 * CUDA_* settings differ from ours gets an ordinary worker: we execute
 * ourselves again with --fd, its HELLO still unread.  Returns the client's
 * connection.
 */
static int warm_wait(const char *driver, int link, char **argv)
{
	char why[512] = "", fdarg[16];
	int fd, i;

	if (driver_load(driver, why, sizeof(why)) < 0) {
		VG_ERR("warm worker: %s", why);
		exit(1);
	}
	if (wk_snapshot_prepare() < 0) {
		VG_ERR("warm worker: the driver did not initialise");
		exit(1);
	}
	wk_prewarm_context();
	/* The name says "idle, no client": `vgpu run` does not wait for such a worker. */
	prctl(PR_SET_NAME, "vgpu-warm");
	/* The daemon may have handed us a client already and closed its end:
	 * the connection waits on the link all the same. */
	if (write(link, "R", 1) != 1 && errno != EPIPE)
		exit(0);
	fd = warm_receive(link);
	prctl(PR_SET_NAME, "vgpu-worker");
	close(link);
	if (fd < 0)
		exit(0);		/* the daemon stopped: no client, no statistics */
	if (hello_fits(fd))
		return fd;
	VG_INFO("warm worker: the client's CUDA_* settings differ from ours; starting afresh");
	for (i = 1; argv[i]; i++) {
		if (!strcmp(argv[i], "--warm") && argv[i + 1]) {
			snprintf(fdarg, sizeof(fdarg), "%d", fd);
			argv[i] = "--fd";
			argv[i + 1] = fdarg;
			break;
		}
	}
	fcntl(fd, F_SETFD, 0);
	execv("/proc/self/exe", argv);
	VG_ERR("warm worker: cannot execute a fresh worker: %s", strerror(errno));
	exit(1);
}

/*
 * The worker's environment must not lead the driver back to vgpu: drop every
 * LD_LIBRARY_PATH entry holding vgpu's libcuda.so.1 (the loader reads the
 * variable at start, so the worker re-executes itself once), and give the
 * JIT a writable cache when the client did not choose one.
 */
static void sanitize_environment(char **argv)
{
	const char *lp = getenv("LD_LIBRARY_PATH");
	char *copy, *tok, *save = NULL, kept[8192] = "", lib[4200];
	int dropped = 0;

	if (!getenv("CUDA_CACHE_PATH")) {
		const char *home = getenv("HOME");

		if (!home || access(home, W_OK) != 0) {
			char dir[256];

			snprintf(dir, sizeof(dir), "/tmp/vgpu-jit-cache-%d", (int)getuid());
			mkdir(dir, 0700);
			setenv("CUDA_CACHE_PATH", dir, 1);
		}
	}
	if (!lp || getenv("VGPU_WORKER_SANITIZED"))
		return;
	copy = strdup(lp);
	if (!copy)
		return;
	for (tok = strtok_r(copy, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		snprintf(lib, sizeof(lib), "%s/libcuda.so.1", tok);
		if (vd_elf_has_vgpu_note(lib) == 1) {
			dropped = 1;
			continue;
		}
		if (strlen(kept) + strlen(tok) + 2 < sizeof(kept)) {
			if (kept[0])
				strcat(kept, ":");
			strcat(kept, tok);
		}
	}
	free(copy);
	if (!dropped)
		return;
	setenv("LD_LIBRARY_PATH", kept, 1);
	setenv("VGPU_WORKER_SANITIZED", "1", 1);
	execv("/proc/self/exe", argv);
	VG_WARN("cannot re-execute the worker with a clean library path: %s", strerror(errno));
}

/*
 * The connection's first message, after AUTH where this worker has a secret
 * (or the client offers one).  0 with it in *h and *b, or a negative errno.
 */
static int first_message(struct vg_hdr *h, struct vg_buf *b)
{
	int ret = tp_recv_msg(ctl, h, b, 1u << 20, NULL);

	if (ret < 0)
		return ret;
	ret = tp_auth_server(ctl, secret, h, b->p, b->len);
	if (ret == 1)
		return 0;
	if (ret < 0) {
		VG_WARN("a client failed authentication (%s)", strerror(-ret));
		return ret;
	}
	return tp_recv_msg(ctl, h, b, 1u << 20, NULL);
}

/*
 * On a network transport a client that connects and says nothing would hold
 * a worker forever: it has this long for its first message (and AUTH).
 */
#define WK_FIRST_MSG_TIMEOUT_S 10

static void recv_timeout(int fd, int seconds)
{
	struct timeval tv = { seconds, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int secret_read(const char *path)
{
	char why[512];

	secret = calloc(1, sizeof(*secret));
	if (!secret || tp_secret_load(path, secret, why, sizeof(why)) < 0) {
		VG_ERR("%s", secret ? why : "out of memory");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *driver = NULL, *secret_file = NULL, *cache_dir = NULL, *limits = NULL, *ivshmem = NULL;
	unsigned long long cache_max = WK_CACHE_MAX_DEFAULT;
	unsigned long slot = ~0ul, ring = 0;
	int fd = -1, i, tcp = 0, ret = 1, warm_link = -1;
	struct vg_hdr h;
	struct vg_buf first;

	vg_log_set_component("vgpu-worker");
	signal(SIGPIPE, SIG_IGN);
	sanitize_environment(argv);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--fd") && i + 1 < argc)
			fd = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--warm") && i + 1 < argc)
			warm_link = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--driver") && i + 1 < argc)
			driver = argv[++i];
		else if (!strcmp(argv[i], "--test-driver") && i + 1 < argc)
			driver = argv[++i], test_driver = 1;
		else if (!strcmp(argv[i], "--stats-dir") && i + 1 < argc)
			wk.stats_dir = argv[++i];
		else if (!strcmp(argv[i], "--cache-dir") && i + 1 < argc)
			cache_dir = argv[++i];
		else if (!strcmp(argv[i], "--cache-max") && i + 1 < argc)
			cache_max = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--ivshmem") && i + 1 < argc)
			ivshmem = argv[++i], nofd = 1;
		else if (!strcmp(argv[i], "--slot") && i + 1 < argc)
			slot = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--ring-bytes") && i + 1 < argc)
			ring = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--nofd"))
			nofd = 1;
		else if (!strcmp(argv[i], "--tcp"))
			tcp = 1;
		else if (!strcmp(argv[i], "--secret-file") && i + 1 < argc)
			secret_file = argv[++i];
		else if (!strcmp(argv[i], "--limits") && i + 1 < argc)
			limits = argv[++i];
		else
			usage();
	}
	if ((fd >= 0) + (warm_link >= 0) + (ivshmem != NULL) != 1 || !driver)
		usage();
	if (wk_limits_init(limits) < 0)
		return 2;
	wk_cache_open(cache_dir, cache_max);
	trace_calls = getenv("VGPU_TRACE") != NULL;
	wk_timing = getenv("VGPU_WORKER_TIMING") && !strcmp(getenv("VGPU_WORKER_TIMING"), "1");
	if (wk_timing) {
		timing_tick0 = wk_ticks();
		timing_ns0 = tp_mono_ns();
	}
	/* Registered for the rings' barrier while no client waits (transport/ring.c). */
	if (!nofd && !ivshmem)
		tp_ring_membarrier_ready(0);
	if (warm_link >= 0) {
		fcntl(warm_link, F_SETFD, FD_CLOEXEC);
		fd = warm_wait(driver, warm_link, argv);
	}
	if (ivshmem) {
		ret = slot > UINT32_MAX || ring > UINT32_MAX ? -EINVAL :
		      tp_ivshmem_open_slot(ivshmem, (uint32_t)slot, (uint32_t)ring, &ctl);
		if (ret < 0) {
			VG_ERR("cannot serve ivshmem slot %lu of %s: %s", slot, ivshmem, strerror(-ret));
			return 1;
		}
		ret = 1;
	} else {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (tcp)
			tp_tcp_tune(fd);
		if ((nofd ? tp_stream_wrap(fd, &ctl) : tp_unix_wrap(fd, &ctl)) < 0)
			return 1;
	}
	vg_buf_init(&first);
	if (secret_file && secret_read(secret_file) < 0) {
		tp_send_error(ctl, EACCES, "vgpud cannot read its secret file");
		goto out;
	}
	if (nofd)
		recv_timeout(fd, WK_FIRST_MSG_TIMEOUT_S);
	/* The same bound for a guest that claims an ivshmem slot and says nothing. */
	if (tp_chan_is_ivshmem(ctl) && tp_ivshmem_wait_readable_ms(ctl, WK_FIRST_MSG_TIMEOUT_S * 1000) < 0)
		goto out;
	ret = first_message(&h, &first);
	if (ret == -ECONNRESET) {
		/* A probe (`vgpu run` checking that the daemon answers) or a client gone early: no error. */
		VG_DEBUG("the client closed its connection before its first message");
		ret = 0;
		goto out;
	}
	if (ret < 0) {
		ret = 1;
		goto out;
	}
	if (nofd)
		recv_timeout(fd, 0);
	/* A channel connection: handed to its session; no driver here. */
	if (h.kind == VG_MSG_ATTACH) {
		ret = wk_attach_forward(ctl, &h, first.p, first.len) < 0;
		/* The slot lives on in the owning worker: the daemon must not free it. */
		if (ret == 0 && tp_chan_is_ivshmem(ctl))
			ret = TP_IVSHMEM_EXIT_HANDED_OFF;
		goto out;
	}
	vg_htab_init(&wk.ids);
	vg_htab_init(&wk.shm);
	for (i = 0; i < VG_H_MAX; i++)
		vg_htab_init(&wk.rev[i]);
	if (handshake(driver, &h, &first) == 0)
		serve_control();
	vg_buf_fini(&first);
	wk_attach_close();
	threads_stop();
	if (wk.driver)
		wk_cleanup();
	stats_write();
	tp_chan_destroy(ctl);
	return 0;
out:
	vg_buf_fini(&first);
	tp_chan_destroy(ctl);
	free(secret);
	return ret;
}
