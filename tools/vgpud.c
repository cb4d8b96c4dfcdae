/*
 * vgpud: the host daemon.
 *
 *   vgpud --listen ADDRESS... [--secret-file FILE] [--driver PATH | --test-driver PATH]
 *         [--stats-dir DIR] [--worker PATH] [--config FILE] [--foreground]
 *
 * (listen addresses: tools/vd_listen.h).  It accepts connections and, for
 * each, fork+execs one worker
 *   vgpu-worker --fd 3 (--driver PATH | --test-driver PATH) [--stats-dir DIR]
 *               [--nofd [--tcp]] [--secret-file FILE] [--limits LIST]
 * with the accepted socket as fd 3 and nothing else open but stdio.  The
 * daemon never loads CUDA (a child of a process that called cuInit cannot
 * use CUDA) and never reads a client's bytes: the worker does the
 * handshake, so a hostile client can only hurt its own worker.
 *
 * The daemon always stays in the foreground (--foreground is accepted for
 * clarity); service managers and `vgpu run` want it that way.  SIGTERM and
 * SIGINT stop it: no more accepts, the socket file is removed, workers get
 * SIGTERM, exit status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "driverpath.h"
#include "tp.h"
#include "vd_listen.h"
#include "vdlimits.h"
#include "vgpu/log.h"

#ifndef VD_LIBEXECDIR
#define VD_LIBEXECDIR "/usr/local/libexec"
#endif

/* Workers alive at once; a connection beyond that is closed at once. */
#define VD_WORKERS_MAX 1024
/* How long workers get to end after SIGTERM before SIGKILL, at shutdown. */
#define VD_STOP_GRACE_MS 3000
/* How often the daemon looks for new ivshmem connections. */
#define VD_IVSHMEM_TICK_MS 5
/* The fd a worker finds its connection on. */
#define VD_WORKER_FD 3

struct vd_opts {
	struct vd_listener listen[VD_LISTEN_MAX];
	int nlisten;
	const char *secret_file;	/* absolute; checked at start */
	const char *driver;	/* NVIDIA's driver or the test driver */
	int test_driver;
	const char *stats_dir;
	const char *worker;
	const char *cache_dir;	/* module image cache; "none": off */
	char cache_max[32];	/* its budget in bytes, for the workers' argv */
	int warm;		/* keep a worker started ahead of the next client (0 or 1) */
	unsigned int warm_delay_ms;	/* after a client takes it, wait this long (or its end) */
	const char *config;	/* per-client limits (vdlimits.h), or NULL */
	struct vd_limits limits;
	char limits_arg[512];	/* the workers' --limits, formatted before any fork */
};

static struct {
	pid_t pid[VD_WORKERS_MAX];
	struct tp_ivshmem *region[VD_WORKERS_MAX];	/* the ivshmem slot it serves, or NULL */
	int slot[VD_WORKERS_MAX];
	int n;
	int stopping;		/* we sent the SIGTERMs: they are no news */
} workers;

/* A descriptor held in reserve: closed to accept (and drop) a connection
 * when the process is out of descriptors, so the client is told at once. */
static int spare_fd = -1;

static char driver_buf[PATH_MAX];
static char worker_buf[PATH_MAX];

/* "123", "64K", "512M", "4G": bytes. */
static int size_parse(const char *s, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K': v <<= 10; end++; break;
	case 'M': v <<= 20; end++; break;
	case 'G': v <<= 30; end++; break;
	default: break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vgpud --listen ADDRESS... [--secret-file FILE] [--driver PATH | --test-driver PATH]\n"
		"             [--stats-dir DIR] [--worker PATH] [--cache-dir DIR] [--cache-max SIZE]\n"
		"             [--warm-workers 0|1] [--warm-delay-ms N] [--config FILE] [--foreground]\n"
		"\n"
		"  --listen ADDRESS      where clients connect (VGPU_SERVER of the guests); may be\n"
		"                        repeated: unix:PATH, tcp:HOST:PORT, vsock:PORT, ivshmem:PATH[,size=N],\n"
		"                        vsock-uds:PATH (a Firecracker/Cloud Hypervisor <uds>_<port>)\n"
		"  --secret-file FILE    clients must prove they know this secret (mode 600);\n"
		"                        required for a non-loopback tcp address\n"
		"  --driver PATH         NVIDIA's libcuda.so.1 (default: VGPU_DRIVER, ldconfig, usual dirs)\n"
		"  --test-driver PATH    the CPU test driver instead of a GPU (explicit opt-in)\n"
		"  --stats-dir DIR       each worker writes DIR/worker-<pid>.stats at exit\n"
		"  --worker PATH         the worker program (default: vgpu-worker beside vgpud)\n"
		"  --cache-dir DIR       module images kept by hash for all clients (default: /var/cache/vgpu\n"
		"                        for root, else ~/.cache/vgpu; 'none': no cache)\n"
		"  --cache-max SIZE      the cache's budget, e.g. 4G (default), 512M\n"
		"  --warm-workers 0|1    keep a worker with the driver loaded ready for the next client\n"
		"                        (default 1)\n"
		"  --warm-delay-ms N     start the next one when the client that took the last one\n"
		"                        ends, or N ms after it took it (default 10000; 0: at once)\n"
		"  --config FILE         per-client limits, `key = value` lines (see the README)\n"
		"  --foreground          stay attached (always the case; accepted for clarity)\n");
}

static int opts_parse(int argc, char **argv, struct vd_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has = i + 1 < argc;

		if (!strcmp(a, "--listen") && has) {
			if (o->nlisten == VD_LISTEN_MAX) {
				fprintf(stderr, "vgpud: at most %d --listen addresses\n", VD_LISTEN_MAX);
				return -EINVAL;
			}
			if (vd_listener_parse(argv[++i], &o->listen[o->nlisten]) < 0)
				return -EINVAL;
			o->nlisten++;
		} else if (!strcmp(a, "--secret-file") && has) {
			o->secret_file = argv[++i];
		} else if (!strcmp(a, "--driver") && has && !o->driver) {
			o->driver = argv[++i];
		} else if (!strcmp(a, "--test-driver") && has && !o->driver) {
			o->driver = argv[++i];
			o->test_driver = 1;
		} else if (!strcmp(a, "--stats-dir") && has) {
			o->stats_dir = argv[++i];
		} else if (!strcmp(a, "--warm-workers") && has) {
			const char *v = argv[++i];

			if (strcmp(v, "0") && strcmp(v, "1")) {
				fprintf(stderr, "vgpud: --warm-workers %s: 0 or 1\n", v);
				return -EINVAL;
			}
			o->warm = v[0] == '1';
		} else if (!strcmp(a, "--warm-delay-ms") && has) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (end == argv[i] || *end || argv[i][0] == '-' || v > 3600000) {
				fprintf(stderr, "vgpud: --warm-delay-ms %s: milliseconds, 0 to 3600000\n", argv[i]);
				return -EINVAL;
			}
			o->warm_delay_ms = (unsigned int)v;
		} else if (!strcmp(a, "--cache-dir") && has) {
			o->cache_dir = argv[++i];
		} else if (!strcmp(a, "--cache-max") && has) {
			unsigned long long v;

			if (size_parse(argv[++i], &v) < 0 || v == 0) {
				fprintf(stderr, "vgpud: --cache-max %s: a size in bytes (K, M, G suffixes) above 0\n", argv[i]);
				return -EINVAL;
			}
			snprintf(o->cache_max, sizeof(o->cache_max), "%llu", v);
		} else if (!strcmp(a, "--worker") && has) {
			o->worker = argv[++i];
		} else if (!strcmp(a, "--config") && has && !o->config) {
			o->config = argv[++i];
		} else if (!strcmp(a, "--foreground")) {
			continue;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else {
			fprintf(stderr, "vgpud: unexpected argument '%s'%s\n", a,
				(!strcmp(a, "--driver") || !strcmp(a, "--test-driver")) && has ?
				" (give one of --driver and --test-driver, once)" : "");
			return -EINVAL;
		}
	}
	if (!o->nlisten) {
		fprintf(stderr, "vgpud: --listen ADDRESS is required\n");
		return -EINVAL;
	}
	return 0;
}

/*
 * The module cache's directory: --cache-dir, else /var/cache/vgpu for
 * root, else $XDG_CACHE_HOME/vgpu or ~/.cache/vgpu.  Made here (parents
 * too); the workers check it is private before they use it.
 */
static char cache_buf[PATH_MAX];

static int mkdir_parents(char *path, mode_t mode)
{
	char *p;

	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			*p = '/';
			return -errno;
		}
		*p = '/';
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void cache_resolve(struct vd_opts *o)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int ret;

	if (!o->cache_dir) {
		if (geteuid() == 0)
			snprintf(cache_buf, sizeof(cache_buf), "/var/cache/vgpu");
		else if (xdg && *xdg == '/')
			snprintf(cache_buf, sizeof(cache_buf), "%s/vgpu", xdg);
		else if (home && *home == '/')
			snprintf(cache_buf, sizeof(cache_buf), "%s/.cache/vgpu", home);
		else
			return;
		o->cache_dir = cache_buf;
	}
	if (!strcmp(o->cache_dir, "none"))
		return;
	if (o->cache_dir != cache_buf)
		snprintf(cache_buf, sizeof(cache_buf), "%s", o->cache_dir);
	ret = mkdir_parents(cache_buf, 0700);
	if (ret < 0)
		VG_WARN("module cache %s: %s; the workers will run without it", cache_buf, strerror(-ret));
	o->cache_dir = cache_buf;
}

/* The secret must be readable, long enough and private; the workers read it. */
static char secret_buf[PATH_MAX];

static int secret_check(struct vd_opts *o)
{
	struct tp_secret *s;
	char why[512];
	int ret;

	if (!o->secret_file)
		return 0;
	if (!realpath(o->secret_file, secret_buf)) {
		fprintf(stderr, "vgpud: --secret-file %s: %s\n", o->secret_file, strerror(errno));
		return -errno;
	}
	o->secret_file = secret_buf;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = tp_secret_load(o->secret_file, s, why, sizeof(why));
	free(s);
	if (ret < 0)
		fprintf(stderr, "vgpud: --secret-file: %s\n", why);
	return ret;
}

/* --config: read and checked now, so a bad file stops the daemon at start. */
static int limits_setup(struct vd_opts *o)
{
	char err[512];
	int ret;

	vd_limits_init(&o->limits, VD_WORKERS_MAX);
	if (!o->config)
		return 0;
	ret = vd_limits_load(&o->limits, o->config, err, sizeof(err));
	if (ret == 0)
		ret = vd_limits_format(&o->limits, o->limits_arg, sizeof(o->limits_arg));
	if (ret < 0) {
		fprintf(stderr, "vgpud: --config %s\n", err);
		return ret;
	}
	return 0;
}

/* The worker: --worker, else beside our executable, else the libexec dir. */
static int worker_resolve(struct vd_opts *o)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (o->worker)
		goto check;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(worker_buf, sizeof(worker_buf), "%s/vgpu-worker", self) <
				    sizeof(worker_buf) && access(worker_buf, X_OK) == 0) {
				o->worker = worker_buf;
				return 0;
			}
		}
	}
	o->worker = VD_LIBEXECDIR "/vgpu-worker";
check:
	if (access(o->worker, X_OK) < 0) {
		fprintf(stderr, "vgpud: the worker %s cannot be run: %s (use --worker PATH)\n", o->worker,
			strerror(errno));
		return -errno;
	}
	return 0;
}

static int driver_resolve(struct vd_opts *o)
{
	int ret;

	/*
	 * Absolute paths: a bare name would make the worker's dlopen search
	 * the library path, where vgpu's own libcuda.so.1 may be.
	 */
	if (o->driver && !realpath(o->driver, driver_buf)) {
		fprintf(stderr, "vgpud: %s %s: %s\n", o->test_driver ? "--test-driver" : "--driver",
			o->driver, strerror(errno));
		return -errno;
	}
	if (o->driver)
		o->driver = driver_buf;
	if (o->test_driver)
		return 0;	/* the worker checks the file right before loading it */
	if (o->driver) {
		ret = vd_driver_check(o->driver);
		if (ret == -EEXIST)
			fprintf(stderr, "vgpud: --driver %s is vgpu's own libcuda.so.1, not NVIDIA's driver\n",
				o->driver);
		else if (ret < 0)
			fprintf(stderr, "vgpud: --driver %s: %s\n", o->driver, strerror(-ret));
		return ret;
	}
	ret = vd_driver_find(driver_buf, sizeof(driver_buf));
	if (ret < 0) {
		if (ret == -ENOENT)
			fprintf(stderr, "vgpud: no NVIDIA driver found; use --test-driver PATH for the CPU "
				"test driver\n");
		else
			fprintf(stderr, "vgpud: no usable NVIDIA driver: %s\n", strerror(-ret));
		return ret;
	}
	o->driver = driver_buf;
	return 0;
}

/* ---- workers ----------------------------------------------------------- */

static void warm_reaped(pid_t pid);

static void workers_add(pid_t pid, struct tp_ivshmem *region, int slot)
{
	workers.region[workers.n] = region;
	workers.slot[workers.n] = slot;
	workers.pid[workers.n++] = pid;
}

static void workers_remove(pid_t pid, int status)
{
	int i;

	for (i = 0; i < workers.n; i++) {
		if (workers.pid[i] == pid) {
			struct tp_ivshmem *region = workers.region[i];

			/* A worker that handed its slot to another one (a thread
			 * channel) leaves it open; else its slot is done. */
			if (region && WIFEXITED(status) && WEXITSTATUS(status) == TP_IVSHMEM_EXIT_HANDED_OFF)
				tp_ivshmem_slot_adopted(region, (uint32_t)workers.slot[i]);
			else if (region)
				tp_ivshmem_slot_release(region, (uint32_t)workers.slot[i]);
			workers.region[i] = workers.region[workers.n - 1];
			workers.slot[i] = workers.slot[workers.n - 1];
			workers.pid[i] = workers.pid[--workers.n];
			return;
		}
	}
}

static void workers_reap(void)
{
	int status;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		workers_remove(pid, status);
		warm_reaped(pid);
		if (WIFSIGNALED(status) && !(workers.stopping && WTERMSIG(status) == SIGTERM))
			VG_WARN("worker %d ended by signal %d", (int)pid, WTERMSIG(status));
		else if (WIFSIGNALED(status))
			VG_INFO("worker %d stopped", (int)pid);
		else if (WIFEXITED(status) && WEXITSTATUS(status) == TP_IVSHMEM_EXIT_HANDED_OFF)
			VG_DEBUG("worker %d handed its connection to the session it belongs to", (int)pid);
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			VG_INFO("worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
		else
			VG_DEBUG("worker %d exited", (int)pid);
	}
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) worker_exec(const struct vd_opts *o, const struct vd_listener *l,
						      int fd, const char *slot, const char *ring, int warm)
{
	const char *argv[20];
	sigset_t none;
	int n = 0;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (fd < 0) {
		close_range(VD_WORKER_FD, ~0u, 0);
	} else if (fd == VD_WORKER_FD) {
		if (fcntl(fd, F_SETFD, 0) < 0)
			_exit(127);
	} else if (dup2(fd, VD_WORKER_FD) < 0) {
		_exit(127);
	}
	/* Nothing of the daemon's leaks into a worker: not the listening
	 * socket, not other clients' connections. */
	close_range(VD_WORKER_FD + 1, ~0u, 0);
	argv[n++] = o->worker;
	if (fd < 0) {
		argv[n++] = "--ivshmem";
		argv[n++] = l->region_path;
		argv[n++] = "--slot";
		argv[n++] = slot;
		argv[n++] = "--ring-bytes";
		argv[n++] = ring;
	} else {
		argv[n++] = warm ? "--warm" : "--fd";
		argv[n++] = "3";
	}
	argv[n++] = o->test_driver ? "--test-driver" : "--driver";
	argv[n++] = o->driver;
	if (o->stats_dir) {
		argv[n++] = "--stats-dir";
		argv[n++] = o->stats_dir;
	}
	if (o->cache_dir) {
		argv[n++] = "--cache-dir";
		argv[n++] = o->cache_dir;
	}
	if (o->cache_max[0]) {
		argv[n++] = "--cache-max";
		argv[n++] = o->cache_max;
	}
	if (!vd_listener_passes_fds(l))
		argv[n++] = "--nofd";
	if (l->kind == VD_L_TCP)
		argv[n++] = "--tcp";
	if (o->secret_file) {
		argv[n++] = "--secret-file";
		argv[n++] = o->secret_file;
	}
	if (o->config) {
		argv[n++] = "--limits";
		argv[n++] = o->limits_arg;
	}
	argv[n] = NULL;
	execv(o->worker, (char *const *)argv);
	_exit(127);
}

/* c: an accepted socket; or NULL and slot k of the listener's ivshmem region. */
static int clients_full(const struct vd_opts *o);

static void worker_start(const struct vd_opts *o, const struct vd_listener *l, struct tp_chan *c, int k)
{
	char slot_s[16], ring_s[16];
	pid_t pid;

	snprintf(slot_s, sizeof(slot_s), "%d", k);
	snprintf(ring_s, sizeof(ring_s), "%u", l->ring_bytes);
	if (workers.n >= VD_WORKERS_MAX) {
		VG_WARN("%d workers already running: connection refused", workers.n);
		goto refused;
	}
	/* ivshmem clients come here directly; the others were counted at accept. */
	if (!c && clients_full(o))
		goto refused;
	pid = fork();
	if (pid < 0) {
		VG_ERR("cannot start a worker: fork: %s", strerror(errno));
		goto refused;
	}
	if (pid == 0)
		worker_exec(o, l, c ? c->fd : -1, slot_s, ring_s, 0);
	workers_add(pid, c ? NULL : l->region, k);
	VG_INFO("client connected%s%s: worker %d", c ? "" : " on ivshmem slot ", c ? "" : slot_s, (int)pid);
	return;
refused:
	if (!c)
		tp_ivshmem_slot_release(l->region, (uint32_t)k);
}

/*
 * The warm worker: started ahead of the next client, it loads the driver,
 * initialises it and reads the devices, then says 'R' on its link.  The next
 * connection goes to it over the link (SCM_RIGHTS) and a new one starts.  A
 * warm worker whose client asks for other CUDA_* settings re-executes itself
 * as an ordinary worker.  One that dies before it is ready is started again
 * after a pause that doubles each time (up to a minute).
 *
 * The next one is not started while the client that took the last one is
 * young: a driver's start and a context's creation take a few hundred
 * milliseconds of the driver and the GPU, and measured on an H100 they cost
 * that client's first seconds a few per cent of its speed (llama.cpp's
 * prompt and decode).  It starts when that client ends, or --warm-delay-ms
 * after it came, whichever is first.
 */
static struct {
	pid_t pid;
	int link;		/* our end of its link, or -1 */
	int ready;
	unsigned int failures;
	struct timespec retry_at;
	pid_t taker;		/* the worker that took the last client, while it runs */
} warm = { .link = -1 };

/* max_clients reached (an idle warm worker serves no client); says so. */
static int clients_full(const struct vd_opts *o)
{
	int n = workers.n - (warm.pid ? 1 : 0);

	if ((uint64_t)n < o->limits.max_clients)
		return 0;
	VG_WARN("%d clients already (max_clients): connection refused", n);
	return 1;
}

static int time_reached(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* Milliseconds until t (rounded up), 0 once reached. */
static int ms_until(const struct timespec *t)
{
	struct timespec now;
	long long ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (long long)(t->tv_sec - now.tv_sec) * 1000000000LL + (t->tv_nsec - now.tv_nsec);
	if (ns <= 0)
		return 0;
	return ns > 3600000000000LL ? 3600000 : (int)((ns + 999999) / 1000000);
}

/*
 * The listener a warm worker serves: the first that passes descriptors
 * (a local unix socket).  None when clients authenticate: the HELLO that
 * tells whether the warm driver fits would come only after AUTH.
 */
static const struct vd_listener *warm_wanted(const struct vd_opts *o)
{
	int i;

	if (!o->warm || o->secret_file)
		return NULL;
	for (i = 0; i < o->nlisten; i++)
		if (vd_listener_passes_fds(&o->listen[i]))
			return &o->listen[i];
	return NULL;
}

static void warm_start(const struct vd_opts *o)
{
	const struct vd_listener *l = warm_wanted(o);
	int sv[2];
	pid_t pid;

	if (!l || warm.pid || workers.stopping || workers.n >= VD_WORKERS_MAX || !time_reached(&warm.retry_at))
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0)
		worker_exec(o, l, sv[1], NULL, NULL, 1);
	close(sv[1]);
	workers_add(pid, NULL, -1);
	warm.pid = pid;
	warm.link = sv[0];
	warm.ready = 0;
	VG_DEBUG("warm worker %d starting", (int)pid);
}

/* After a handoff: the next warm worker waits (see above). */
static void warm_delay(const struct vd_opts *o)
{
	struct timespec *t = &warm.retry_at;

	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += o->warm_delay_ms / 1000;
	t->tv_nsec += (long)(o->warm_delay_ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
	warm_start(o);
}

static void warm_failed(void)
{
	unsigned int pause = warm.failures < 6 ? 1u << warm.failures : 60;

	if (warm.link >= 0)
		close(warm.link);
	warm.link = -1;
	warm.ready = 0;
	warm.failures++;
	clock_gettime(CLOCK_MONOTONIC, &warm.retry_at);
	warm.retry_at.tv_sec += pause;
	VG_WARN("the warm worker ended before it was ready; the next one in %u s", pause);
}

/* Its link is readable: ready, or gone. */
static void warm_event(void)
{
	char c = 0;
	ssize_t n = read(warm.link, &c, 1);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n == 1 && c == 'R' && !warm.ready) {
		warm.ready = 1;
		warm.failures = 0;
		VG_INFO("warm worker %d ready", (int)warm.pid);
		return;
	}
	if (warm.ready && n == 0) {
		/* Ended while idle (killed by someone): a new one at once. */
		VG_INFO("the warm worker %d ended while idle", (int)warm.pid);
		close(warm.link);
		warm.link = -1;
		warm.ready = 0;
		return;
	}
	warm_failed();
}

static void warm_reaped(pid_t pid)
{
	if (pid == warm.taker) {
		/* Its client is gone: the next warm worker may start now. */
		warm.taker = 0;
		if (!warm.failures)
			clock_gettime(CLOCK_MONOTONIC, &warm.retry_at);
	}
	if (pid != warm.pid)
		return;
	if (warm.link >= 0 && workers.stopping) {
		close(warm.link);	/* stopped with the daemon: no news */
		warm.link = -1;
	} else if (warm.link >= 0) {
		warm_failed();
	}
	warm.pid = 0;
}

/*
 * Hands the client's connection to the warm worker: 0, or -1 (none).  One
 * still starting takes it too: it serves the client once ready, sooner than
 * a fresh worker would, which starts from nothing.
 */
static int warm_handoff(int fd)
{
	int ret, was_ready = warm.ready;

	/* Not to one still starting after its predecessor failed: it may fail too. */
	if (!warm.pid || warm.link < 0 || (!warm.ready && warm.failures))
		return -1;
	ret = tp_fd_send(warm.link, 'C', fd);
	close(warm.link);
	warm.link = -1;
	warm.ready = 0;
	if (ret < 0) {
		/* It died meanwhile: reaped later; this client gets a fresh worker. */
		warm.pid = 0;
		return -1;
	}
	VG_INFO("client connected: warm worker %d%s", (int)warm.pid, was_ready ? "" : " (still starting)");
	warm.taker = warm.pid;
	warm.pid = 0;
	return 0;
}

/* Stop every worker: SIGTERM, a grace period, then SIGKILL. */
static void workers_stop(void)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int i, waited;

	workers.stopping = 1;
	for (i = 0; i < workers.n; i++)
		kill(workers.pid[i], SIGTERM);
	for (waited = 0; workers.n > 0 && waited < VD_STOP_GRACE_MS; waited += 20) {
		nanosleep(&ts, NULL);
		workers_reap();
	}
	for (i = 0; i < workers.n; i++) {
		VG_WARN("worker %d did not end on SIGTERM: killing it", (int)workers.pid[i]);
		kill(workers.pid[i], SIGKILL);
		waitpid(workers.pid[i], NULL, 0);
	}
	workers.n = 0;
}

/* ---- accepting --------------------------------------------------------- */

static void accept_one(const struct vd_opts *o, const struct vd_listener *l)
{
	struct tp_chan *c;
	int ret, fd, lfd = l->fd;

	/* A plain accept4 for every kind: the daemon reads nothing. */
	ret = tp_unix_accept(lfd, &c);
	if (ret == 0) {
		if (clients_full(o))
			;
		else if (vd_listener_passes_fds(l) && warm_handoff(c->fd) == 0)
			warm_delay(o);
		else
			worker_start(o, l, c, -1);
		tp_chan_destroy(c);	/* the worker has its own copy */
		return;
	}
	switch (ret) {
	case -EAGAIN:
	case -ECONNABORTED:
	case -EPROTO:
	case -EPERM:
		return;			/* the client went before we got to it */
	case -EMFILE:
	case -ENFILE:
		/*
		 * Out of descriptors: the pending connection would make poll
		 * report the socket readable forever.  Use the spare to accept
		 * it and close it, so its client fails now instead of hanging.
		 */
		VG_WARN("out of file descriptors: a connection was refused");
		if (spare_fd >= 0) {
			close(spare_fd);
			fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0)
				close(fd);
			spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		}
		return;
	default:
		VG_WARN("accept: %s", strerror(-ret));
		return;
	}
}

static int signals_open(void)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return fd < 0 ? -errno : fd;
}

/* 1 when the daemon must stop. */
static int signals_handle(int sfd)
{
	struct signalfd_siginfo si;
	int stop = 0;

	for (;;) {
		ssize_t n = read(sfd, &si, sizeof(si));

		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(si))
			break;
		if (si.ssi_signo == SIGCHLD)
			workers_reap();
		else if (si.ssi_signo == SIGHUP)
			VG_INFO("SIGHUP ignored: there is nothing to reload");
		else
			stop = 1;
	}
	return stop;
}

static void listeners_close(struct vd_opts *o)
{
	int i;

	for (i = 0; i < o->nlisten; i++)
		vd_listener_close(&o->listen[i]);
}

static int serve(struct vd_opts *o)
{
	struct pollfd pfd[2 + VD_LISTEN_MAX];
	int sfd, i, k, tick = -1;

	sfd = signals_open();
	if (sfd < 0) {
		fprintf(stderr, "vgpud: signals: %s\n", strerror(-sfd));
		return 1;
	}
	for (i = 0; i < o->nlisten; i++) {
		if (vd_listener_open(&o->listen[i], o->secret_file != NULL) < 0) {
			listeners_close(o);
			return 1;
		}
	}
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < o->nlisten; i++)
		VG_INFO("listening at %s%s; workers %s, %s %s", o->listen[i].shown,
			o->secret_file ? " (clients authenticate)" : "", o->worker,
			o->test_driver ? "CPU test driver" : "driver", o->driver);

	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (i = 0; i < o->nlisten; i++) {
		pfd[1 + i] = (struct pollfd){ .fd = o->listen[i].fd, .events = POLLIN };
		/* ivshmem regions have no descriptor: a short timer looks at them. */
		if (o->listen[i].kind == VD_L_IVSHMEM)
			tick = VD_IVSHMEM_TICK_MS;
	}
	for (;;) {
		int timeout, np = 1 + o->nlisten;

		for (i = 0; i < o->nlisten; i++)
			if (o->listen[i].region)
				while ((k = tp_ivshmem_poll(o->listen[i].region)) >= 0)
					worker_start(o, &o->listen[i], NULL, k);
		warm_start(o);
		/* A warm worker to start again later: wake up for it. */
		timeout = tick;
		if (warm_wanted(o) && !warm.pid) {
			int ms = ms_until(&warm.retry_at);

			/* Reached, yet not started (no room for it): look again in a second. */
			if (ms == 0 || ms > 1000)
				ms = 1000;
			if (timeout < 0 || timeout > ms)
				timeout = ms;
		}
		if (warm.link >= 0)
			pfd[np++] = (struct pollfd){ .fd = warm.link, .events = POLLIN };
		if (poll(pfd, (nfds_t)np, timeout) < 0) {
			if (errno == EINTR)
				continue;
			VG_ERR("poll: %s", strerror(errno));
			break;
		}
		if ((pfd[0].revents & POLLIN) && signals_handle(sfd))
			break;
		if (warm.link >= 0 && np > 1 + o->nlisten && pfd[1 + o->nlisten].revents)
			warm_event();
		for (i = 0; i < o->nlisten; i++)
			if (pfd[1 + i].revents & POLLIN)
				accept_one(o, &o->listen[i]);
	}

	/* Workers first: reaping one releases its ivshmem slot in a region. */
	workers_stop();
	listeners_close(o);
	close(sfd);
	VG_INFO("stopped");
	return 0;
}

/*
 * Descriptors 0-2 open (on /dev/null when they were not): otherwise an
 * accepted connection could land on one and reach a worker as its stdio.
 */
static void stdio_ensure(void)
{
	int fd;

	for (fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		if (open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
			exit(1);
	}
}

int main(int argc, char **argv)
{
	struct vd_opts o = { .warm = 1, .warm_delay_ms = 10000 };

	stdio_ensure();
	vg_log_set_component("vgpud");
	/* A client that closes its end must never kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	if (opts_parse(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	if (limits_setup(&o) < 0)
		return 2;
	if (worker_resolve(&o) < 0 || driver_resolve(&o) < 0 || secret_check(&o) < 0)
		return 1;
	cache_resolve(&o);
	if (o.stats_dir && mkdir(o.stats_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "vgpud: --stats-dir %s: %s\n", o.stats_dir, strerror(errno));
		return 1;
	}
	return serve(&o);
}
