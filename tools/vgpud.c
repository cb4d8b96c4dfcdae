/*
 * vgpud: the host daemon.
 *
 *   vgpud --listen unix:PATH|ivshmem:PATH[,size=N][,ring=N]
 *         [--driver PATH | --test-driver PATH]
 *         [--stats-dir DIR] [--worker PATH] [--foreground]
 *
 * It accepts connections and, for each, fork+execs one worker
 *   vgpu-worker --fd 3 (--driver PATH | --test-driver PATH) [--stats-dir DIR]
 * with the accepted socket as fd 3 and nothing else open but stdio.  On an
 * ivshmem region (a file a VM's ivshmem device maps) a timer looks for
 * slots guests claimed, and the worker gets
 *   --ivshmem PATH --slot K --ring-bytes N
 * instead of --fd 3.  The
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

#include "driverpath.h"
#include "tp.h"
#include "vgpu/log.h"

#ifndef VD_LIBEXECDIR
#define VD_LIBEXECDIR "/usr/local/libexec"
#endif

/* Workers alive at once; a connection beyond that is closed at once. */
#define VD_WORKERS_MAX 1024
/* How long workers get to end after SIGTERM before SIGKILL, at shutdown. */
#define VD_STOP_GRACE_MS 3000
/* The fd a worker finds its connection on. */
#define VD_WORKER_FD 3

struct vd_opts {
	const char *listen;	/* "unix:PATH" or "ivshmem:PATH[,...]" */
	const char *driver;	/* NVIDIA's driver or the test driver */
	int test_driver;
	const char *stats_dir;
	const char *worker;
};

static struct {
	pid_t pid[VD_WORKERS_MAX];
	int slot[VD_WORKERS_MAX];	/* the ivshmem slot it serves, or -1 */
	int n;
	int stopping;		/* we sent the SIGTERMs: they are no news */
} workers;

/* A descriptor held in reserve: closed to accept (and drop) a connection
 * when the process is out of descriptors, so the client is told at once. */
static int spare_fd = -1;

/* The ivshmem region, when we listen on one. */
static struct tp_ivshmem *region;
static char region_path[PATH_MAX];
static uint64_t region_size;
static uint32_t region_ring;
/* How often the daemon looks for new ivshmem connections. */
#define VD_IVSHMEM_TICK_MS 5

static char driver_buf[PATH_MAX];
static char worker_buf[PATH_MAX];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vgpud --listen unix:PATH|ivshmem:PATH[,size=N] [--driver PATH | --test-driver PATH]\n"
		"             [--stats-dir DIR] [--worker PATH] [--foreground]\n"
		"\n"
		"  --listen unix:PATH    where clients connect (VGPU_SERVER of the guests)\n"
		"  --listen ivshmem:PATH[,size=64M][,ring=256K]\n"
		"                        a region file backing VMs' ivshmem device (guests: ivshmem:BDF)\n"
		"  --driver PATH         NVIDIA's libcuda.so.1 (default: VGPU_DRIVER, ldconfig, usual dirs)\n"
		"  --test-driver PATH    the CPU test driver instead of a GPU (explicit opt-in)\n"
		"  --stats-dir DIR       each worker writes DIR/worker-<pid>.stats at exit\n"
		"  --worker PATH         the worker program (default: vgpu-worker beside vgpud)\n"
		"  --foreground          stay attached (always the case; accepted for clarity)\n");
}

static int opts_parse(int argc, char **argv, struct vd_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		int has = i + 1 < argc;

		if (!strcmp(a, "--listen") && has) {
			o->listen = argv[++i];
		} else if (!strcmp(a, "--driver") && has && !o->driver) {
			o->driver = argv[++i];
		} else if (!strcmp(a, "--test-driver") && has && !o->driver) {
			o->driver = argv[++i];
			o->test_driver = 1;
		} else if (!strcmp(a, "--stats-dir") && has) {
			o->stats_dir = argv[++i];
		} else if (!strcmp(a, "--worker") && has) {
			o->worker = argv[++i];
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
	if (!o->listen) {
		fprintf(stderr, "vgpud: --listen unix:PATH is required\n");
		return -EINVAL;
	}
	if (!strncmp(o->listen, "ivshmem:", 8)) {
		if (tp_ivshmem_parse_listen(o->listen + 8, region_path, sizeof(region_path), &region_size,
					    &region_ring) < 0) {
			fprintf(stderr, "vgpud: --listen %s: expected ivshmem:PATH[,size=N][,ring=N]\n", o->listen);
			return -EINVAL;
		}
		return 0;
	}
	if (strncmp(o->listen, "unix:", 5) != 0 || !o->listen[5]) {
		fprintf(stderr, "vgpud: --listen %s: only unix:PATH and ivshmem:PATH addresses are implemented\n",
			o->listen);
		return -EINVAL;
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

/* Refuse to take over a path another daemon is serving (tp_unix_listen
 * removes whatever is there). */
static int listen_path_free(const char *address)
{
	struct tp_chan *c;

	if (tp_connect(address, &c) < 0)
		return 1;
	tp_chan_destroy(c);
	return 0;
}

/* ---- workers ----------------------------------------------------------- */

static void workers_add(pid_t pid, int slot)
{
	workers.slot[workers.n] = slot;
	workers.pid[workers.n++] = pid;
}

static void workers_remove(pid_t pid, int status)
{
	int i;

	for (i = 0; i < workers.n; i++) {
		if (workers.pid[i] == pid) {
			/* A worker that handed its slot to another one (a thread
			 * channel) leaves it open; else its slot is done. */
			if (region && workers.slot[i] >= 0 && WIFEXITED(status) &&
			    WEXITSTATUS(status) == TP_IVSHMEM_EXIT_HANDED_OFF)
				tp_ivshmem_slot_adopted(region, (uint32_t)workers.slot[i]);
			else if (region && workers.slot[i] >= 0)
				tp_ivshmem_slot_release(region, (uint32_t)workers.slot[i]);
			workers.slot[i] = workers.slot[--workers.n];
			workers.pid[i] = workers.pid[workers.n];
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
		if (WIFSIGNALED(status) && !(workers.stopping && WTERMSIG(status) == SIGTERM))
			VG_WARN("worker %d ended by signal %d", (int)pid, WTERMSIG(status));
		else if (WIFSIGNALED(status))
			VG_INFO("worker %d stopped", (int)pid);
		else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
			VG_INFO("worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
		else
			VG_DEBUG("worker %d exited", (int)pid);
	}
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void __attribute__((noreturn)) worker_exec(const struct vd_opts *o, int fd, const char *slot,
						  const char *ring)
{
	const char *argv[14];
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
		argv[n++] = region_path;
		argv[n++] = "--slot";
		argv[n++] = slot;
		argv[n++] = "--ring-bytes";
		argv[n++] = ring;
	} else {
		argv[n++] = "--fd";
		argv[n++] = "3";
	}
	argv[n++] = o->test_driver ? "--test-driver" : "--driver";
	argv[n++] = o->driver;
	if (o->stats_dir) {
		argv[n++] = "--stats-dir";
		argv[n++] = o->stats_dir;
	}
	argv[n] = NULL;
	execv(o->worker, (char *const *)argv);
	_exit(127);
}

/* c: an accepted socket; or NULL and the ivshmem slot. */
static void worker_start(const struct vd_opts *o, struct tp_chan *c, int slot)
{
	char slot_s[16], ring_s[16];
	pid_t pid;

	snprintf(slot_s, sizeof(slot_s), "%d", slot);
	snprintf(ring_s, sizeof(ring_s), "%u", region_ring);
	if (workers.n >= VD_WORKERS_MAX) {
		VG_WARN("%d workers already running: connection refused", workers.n);
		goto refused;
	}
	pid = fork();
	if (pid < 0) {
		VG_ERR("cannot start a worker: fork: %s", strerror(errno));
		goto refused;
	}
	if (pid == 0)
		worker_exec(o, c ? c->fd : -1, slot_s, ring_s);
	workers_add(pid, c ? -1 : slot);
	VG_INFO("client connected%s%s: worker %d", c ? "" : " on ivshmem slot ", c ? "" : slot_s, (int)pid);
	return;
refused:
	if (!c)
		tp_ivshmem_slot_release(region, (uint32_t)slot);
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

static void accept_one(const struct vd_opts *o, int lfd)
{
	struct tp_chan *c;
	int ret, fd;

	ret = tp_unix_accept(lfd, &c);
	if (ret == 0) {
		worker_start(o, c, -1);
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

/*
 * Serving an ivshmem region: no socket to poll, so a short timer looks for
 * slots guests claimed (and keeps the daemon's heartbeat going, which tells
 * guests that someone serves the region).
 */
static int serve_ivshmem(const struct vd_opts *o)
{
	struct pollfd pfd;
	int sfd, ret, slot;

	sfd = signals_open();
	if (sfd < 0) {
		fprintf(stderr, "vgpud: signals: %s\n", strerror(-sfd));
		return 1;
	}
	ret = tp_ivshmem_region_create(region_path, region_size, region_ring, &region);
	if (ret < 0) {
		fprintf(stderr, "vgpud: cannot serve the ivshmem region %s: %s\n", region_path,
			ret == -EADDRINUSE ? "another vgpud serves it" :
			ret == -EFBIG ? "the file exists with another size (a VM may map it: give its size, "
					"or no size=)" : strerror(-ret));
		return 1;
	}
	VG_INFO("serving ivshmem region %s (%u connection slots); workers %s, %s %s", region_path,
		tp_ivshmem_nslots(region), o->worker, o->test_driver ? "CPU test driver" : "driver", o->driver);
	pfd = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (;;) {
		ret = poll(&pfd, 1, VD_IVSHMEM_TICK_MS);
		if (ret < 0 && errno != EINTR) {
			VG_ERR("poll: %s", strerror(errno));
			break;
		}
		if (ret > 0 && (pfd.revents & POLLIN) && signals_handle(sfd))
			break;
		while ((slot = tp_ivshmem_poll(region)) >= 0)
			worker_start(o, NULL, slot);
	}
	workers_stop();
	tp_ivshmem_region_destroy(region);
	region = NULL;
	close(sfd);
	VG_INFO("stopped");
	return 0;
}

static int serve(const struct vd_opts *o)
{
	const char *path = o->listen + 5;
	struct stat bound = { 0 };
	struct pollfd pfd[2];
	int lfd = -1, sfd, ret;

	sfd = signals_open();
	if (sfd < 0) {
		fprintf(stderr, "vgpud: signals: %s\n", strerror(-sfd));
		return 1;
	}
	if (!listen_path_free(o->listen)) {
		fprintf(stderr, "vgpud: another vgpud is already listening at %s\n", path);
		return 1;
	}
	ret = tp_unix_listen(path, &lfd);
	if (ret < 0) {
		fprintf(stderr, "vgpud: cannot listen at %s: %s\n", path, strerror(-ret));
		return 1;
	}
	if (path[0] != '@')
		stat(path, &bound);
	fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK);
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	VG_INFO("listening at %s; workers %s, %s %s", o->listen, o->worker,
		o->test_driver ? "CPU test driver" : "driver", o->driver);

	pfd[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			VG_ERR("poll: %s", strerror(errno));
			break;
		}
		if ((pfd[0].revents & POLLIN) && signals_handle(sfd))
			break;
		if (pfd[1].revents & POLLIN)
			accept_one(o, lfd);
	}

	close(lfd);
	if (path[0] != '@') {
		struct stat now;

		/* Only our own socket file: a successor may have bound the path. */
		if (stat(path, &now) == 0 && now.st_ino == bound.st_ino && now.st_dev == bound.st_dev)
			unlink(path);
	}
	workers_stop();
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
	struct vd_opts o = { 0 };

	stdio_ensure();
	vg_log_set_component("vgpud");
	/* A client that closes its end must never kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	if (opts_parse(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	if (worker_resolve(&o) < 0 || driver_resolve(&o) < 0)
		return 1;
	if (o.stats_dir && mkdir(o.stats_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "vgpud: --stats-dir %s: %s\n", o.stats_dir, strerror(errno));
		return 1;
	}
	return region_path[0] ? serve_ivshmem(&o) : serve(&o);
}
