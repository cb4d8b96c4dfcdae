/*
 * vgpu: the user's command.
 *
 *   vgpu run [--server unix:PATH] [--] CMD [ARGS...]
 *   vgpu info [--server unix:PATH]
 *   vgpu identity [--server unix:PATH] [--output PATH]
 *
 * Every command first finds a daemon: --server, else VGPU_SERVER, else
 * unix:/run/vgpu/vgpud.sock, when a daemon answers there.  When none does it
 * starts a private one for the duration of the command, on a socket of its
 * own under $XDG_RUNTIME_DIR/vgpu (or /tmp/vgpu-<uid>), with NVIDIA's driver
 * when this machine has one and otherwise, saying so, with the CPU test
 * driver.
 *
 * `run` executes CMD with vgpu's libcuda.so.1 first in LD_LIBRARY_PATH and
 * VGPU_SERVER set, and returns its exit status.  `info` and `identity` load
 * vgpu's libcuda.so.1 into this process and ask it, as any CUDA program
 * would.  The identity file's keys are documented in the README.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "driverpath.h"
#include "elfnote.h"
#include "tp.h"
#include "vgpu/cuda_types.h"

#ifndef VGPU_LIBDIR
#define VGPU_LIBDIR "/usr/local/lib"
#endif
#ifndef VGPU_BINDIR
#define VGPU_BINDIR "/usr/local/bin"
#endif

#define VGPU_DEFAULT_SERVER "unix:/run/vgpu/vgpud.sock"
#define VGPU_DEFAULT_IDENTITY "/run/vgpu/identity"
/* How long a private daemon may take to answer, and to stop. */
#define VGPU_DAEMON_START_MS 10000
#define VGPU_DAEMON_STOP_MS 5000
/* How long workers of clients that have gone may take to end by themselves. */
#define VGPU_WORKER_END_MS 2000
/* Devices written to the identity file (procfake shows at most this many). */
#define VGPU_IDENTITY_GPUS_MAX 8

static const char *const test_driver_msg =
	"vgpu: no NVIDIA GPU driver on this machine; running on the CPU test driver (vgpud --test-driver)";

/* The daemon a command talks to. */
struct vgpu_server {
	char address[PATH_MAX + 8];	/* "unix:PATH" */
	pid_t private_pid;		/* 0 when someone else's daemon answers */
	char private_dir[PATH_MAX];
};

static char self_dir[PATH_MAX];

static void die(const char *fmt, const char *arg) __attribute__((noreturn));
static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "vgpu: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vgpu run [--server unix:PATH] [--] CMD [ARGS...]\n"
		"       vgpu info [--server unix:PATH]\n"
		"       vgpu identity [--server unix:PATH] [--output PATH]\n"
		"       vgpu bench [--server ADDRESS] [--transport ADDRESS]... [--reps N] [--rounds R] [--python PY]\n"
		"                  [--size-mib N] [--settle-ms N]\n"
		"                  [--llama DIR --model GGUF [--llama-drive PROGRAM]]\n"
		"\n"
		"  run       run CMD with vgpu's libcuda.so.1 (finds or starts a vgpud)\n"
		"  info      the driver, the connection and every device, as a CUDA program sees them\n"
		"  identity  write the GPU identity file procfake reads (default " VGPU_DEFAULT_IDENTITY ")\n"
		"  bench     the same workloads natively and through vgpu, with ratios from one run\n");
}

/* ---- where things are -------------------------------------------------- */

static void self_dir_init(void)
{
	ssize_t n = readlink("/proc/self/exe", self_dir, sizeof(self_dir) - 1);
	char *slash;

	if (n <= 0)
		die("cannot read /proc/self/exe: %s", strerror(errno));
	self_dir[n] = '\0';
	slash = strrchr(self_dir, '/');
	if (slash)
		*slash = '\0';
}

/*
 * First existing file among: the build tree (relative to this program), the
 * install dir.  out (PATH_MAX bytes) gets its canonical path.
 */
static int locate(char *out, const char *build_rel, const char *installed)
{
	char path[PATH_MAX + 64];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", self_dir, build_rel) < sizeof(path) &&
	    realpath(path, out))
		return 0;
	if (realpath(installed, out))
		return 0;
	return -ENOENT;
}

/* vgpu's own libcuda.so.1, recognised by its note. */
static void ourlib_find(char path[PATH_MAX])
{
	if (locate(path, "../libcuda/libcuda.so.1", VGPU_LIBDIR "/libcuda.so.1") < 0)
		die("vgpu's libcuda.so.1 is not in %s/../libcuda nor in " VGPU_LIBDIR, self_dir);
	if (vd_elf_has_vgpu_note(path) != 1)
		die("%s is not vgpu's libcuda.so.1 (no vgpu note)", path);
}

/* ---- the daemon -------------------------------------------------------- */

static int server_answers(const char *address)
{
	struct tp_chan *c;

	if (tp_connect(address, &c) < 0)
		return 0;
	/* The daemon starts a worker for this connection; it ends when we close. */
	tp_chan_destroy(c);
	return 1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A directory only we can use: private sockets live there. */
static void private_dir_make(struct vgpu_server *s)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (xdg && *xdg)
		snprintf(s->private_dir, sizeof(s->private_dir), "%s/vgpu", xdg);
	else
		snprintf(s->private_dir, sizeof(s->private_dir), "/tmp/vgpu-%u", (unsigned)getuid());
	if (mkdir(s->private_dir, 0700) < 0 && errno != EEXIST)
		die("cannot create %s", s->private_dir);
	/* In /tmp someone else may have made it first. */
	if (lstat(s->private_dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
	    (st.st_mode & 077))
		die("%s is not a private directory of this user", s->private_dir);
}

static void private_start(struct vgpu_server *s)
{
	char vgpud[PATH_MAX], driver[PATH_MAX], sock[PATH_MAX];
	const char *argv[8];
	int test = 0, n = 0, waited, status;
	pid_t pid;

	if (locate(vgpud, "vgpud", VGPU_BINDIR "/vgpud") < 0)
		die("vgpud is not in %s nor in " VGPU_BINDIR, self_dir);
	if (vd_driver_find(driver, sizeof(driver)) < 0) {
		/* An explicit setting that does not work is an error, not a reason for the CPU. */
		if (getenv("VGPU_DRIVER") && *getenv("VGPU_DRIVER"))
			die("VGPU_DRIVER=%s is not a usable NVIDIA driver", getenv("VGPU_DRIVER"));
		if (locate(driver, "../tests/testdrv/libvgpu-testdrv.so",
			   VGPU_LIBDIR "/libvgpu-testdrv.so") < 0)
			die("no NVIDIA GPU driver on this machine, and no CPU test driver (%s) either",
			    "libvgpu-testdrv.so");
		fprintf(stderr, "%s\n", test_driver_msg);
		test = 1;
	}
	private_dir_make(s);
	/* One socket per invocation: concurrent commands each stop only their own daemon. */
	if ((size_t)snprintf(sock, sizeof(sock), "%s/vgpud-%d.sock", s->private_dir, (int)getpid()) >=
	    sizeof(sock))
		die("%s: path too long", s->private_dir);
	snprintf(s->address, sizeof(s->address), "unix:%s", sock);

	argv[n++] = vgpud;
	argv[n++] = "--listen";
	argv[n++] = s->address;
	argv[n++] = test ? "--test-driver" : "--driver";
	argv[n++] = driver;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		/* Its own group: the terminal's ^C reaches CMD; we stop the daemon after. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(vgpud, (char *const *)argv);
		fprintf(stderr, "vgpu: cannot run %s: %s\n", vgpud, strerror(errno));
		_exit(127);
	}
	s->private_pid = pid;
	for (waited = 0; waited < VGPU_DAEMON_START_MS; waited += 20) {
		if (server_answers(s->address))
			return;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			s->private_pid = 0;
			die("the private vgpud ended before it answered (%s)",
			    WIFEXITED(status) ? "see its message above" : "killed by a signal");
		}
		sleep_ms(20);
	}
	die("the private vgpud did not answer at %s", s->address);
}

static void server_find(struct vgpu_server *s, const char *requested)
{
	const char *env = getenv("VGPU_SERVER");
	const char *address = requested ? requested : (env && *env ? env : VGPU_DEFAULT_SERVER);

	memset(s, 0, sizeof(*s));
	if (server_answers(address)) {
		snprintf(s->address, sizeof(s->address), "%s", address);
		return;
	}
	if (requested || (env && *env))
		fprintf(stderr, "vgpu: no vgpud answers at %s; starting a private one\n", address);
	private_start(s);
}

/*
 * 1 while the process has children (its workers) other than an idle warm
 * worker, which names itself "vgpu-warm" until it gets a client.
 */
static int has_children(pid_t pid)
{
	char path[64], buf[4096], comm[32], *p, *end;
	ssize_t n;
	int fd, busy = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (p = buf; !busy && *p; p = end) {
		long child = strtol(p, &end, 10);

		if (end == p)
			break;
		snprintf(path, sizeof(path), "/proc/%ld/comm", child);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, comm, sizeof(comm) - 1);
		close(fd);
		comm[n > 0 ? n : 0] = '\0';
		busy = strncmp(comm, "vgpu-warm", 9) != 0;
	}
	return busy;
}

/* clients_gone: wait for workers to end by themselves first (not when the
 * client is this very process, as for info and identity). */
static void server_stop(struct vgpu_server *s, int clients_gone)
{
	int waited, status;

	if (!s->private_pid)
		return;
	/*
	 * A worker whose client has gone ends by itself, writing its call
	 * counts and freeing what the client left; give it that chance.
	 */
	for (waited = 0; clients_gone && waited < VGPU_WORKER_END_MS && has_children(s->private_pid);
	     waited += 20)
		sleep_ms(20);
	kill(s->private_pid, SIGTERM);
	for (waited = 0; waited < VGPU_DAEMON_STOP_MS; waited += 20) {
		if (waitpid(s->private_pid, &status, WNOHANG) == s->private_pid) {
			s->private_pid = 0;
			return;
		}
		sleep_ms(20);
	}
	fprintf(stderr, "vgpu: the private vgpud did not stop; killing it\n");
	kill(s->private_pid, SIGKILL);
	waitpid(s->private_pid, &status, 0);
	s->private_pid = 0;
}

/* ---- vgpu run ---------------------------------------------------------- */

static volatile sig_atomic_t run_child;

static void run_forward(int sig)
{
	if (run_child > 0)
		kill(run_child, sig);
}

static int cmd_run(int argc, char **argv)
{
	char lib[PATH_MAX], *dir, *ldpath;
	const char *requested = NULL, *old;
	struct vgpu_server s;
	struct sigaction sa = { .sa_handler = run_forward };
	int i, status;
	pid_t pid;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--server") && i + 1 < argc) {
			requested = argv[++i];
		} else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (argv[i][0] == '-') {
			usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	ourlib_find(lib);
	dir = strrchr(lib, '/');
	*dir = '\0';
	old = getenv("LD_LIBRARY_PATH");
	if (asprintf(&ldpath, "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "") < 0)
		die("%s", strerror(ENOMEM));

	server_find(&s, requested);
	/* ^C goes to CMD (same terminal group); we wait for it, then clean up. */
	signal(SIGINT, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pid = fork();
	if (pid < 0) {
		server_stop(&s, 0);
		die("fork: %s", strerror(errno));
	}
	if (pid == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		setenv("LD_LIBRARY_PATH", ldpath, 1);
		setenv("VGPU_SERVER", s.address, 1);
		execvp(argv[i], argv + i);
		fprintf(stderr, "vgpu: cannot run %s: %s\n", argv[i], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	run_child = pid;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	}
	run_child = 0;
	server_stop(&s, 1);
	free(ldpath);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

/* ---- asking the driver (info, identity) -------------------------------- */

struct vgpu_drv {
	CUresult (*Init)(unsigned int);
	CUresult (*DriverGetVersion)(int *);
	CUresult (*DeviceGetCount)(int *);
	CUresult (*DeviceGet)(CUdevice *, int);
	CUresult (*DeviceGetName)(char *, int, CUdevice);
	CUresult (*DeviceGetUuid_v2)(CUuuid *, CUdevice);
	CUresult (*DeviceGetPCIBusId)(char *, int, CUdevice);
	CUresult (*DeviceTotalMem_v2)(size_t *, CUdevice);
	CUresult (*DeviceGetAttribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*GetErrorName)(CUresult, const char **);
};

struct vgpu_dev {
	char name[256];
	char uuid[48];		/* GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */
	char bus_id[32];	/* 00000000:01:00.0 */
	size_t memory;
	int cc_major, cc_minor;
};

static const char *drv_err(const struct vgpu_drv *d, CUresult r)
{
	static char buf[32];
	const char *s = NULL;

	if (d->GetErrorName && d->GetErrorName(r, &s) == CUDA_SUCCESS && s)
		return s;
	snprintf(buf, sizeof(buf), "CUresult %d", (int)r);
	return buf;
}

static void drv_open(struct vgpu_drv *d, const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);

	if (!h)
		die("%s", dlerror());
#define SYM(field, name) \
	do { \
		*(void **)&d->field = dlsym(h, name); \
		if (!d->field) \
			die("%s lacks " name, lib); \
	} while (0)
	SYM(Init, "cuInit");
	SYM(DriverGetVersion, "cuDriverGetVersion");
	SYM(DeviceGetCount, "cuDeviceGetCount");
	SYM(DeviceGet, "cuDeviceGet");
	SYM(DeviceGetName, "cuDeviceGetName");
	SYM(DeviceGetUuid_v2, "cuDeviceGetUuid_v2");
	SYM(DeviceGetPCIBusId, "cuDeviceGetPCIBusId");
	SYM(DeviceTotalMem_v2, "cuDeviceTotalMem_v2");
	SYM(DeviceGetAttribute, "cuDeviceGetAttribute");
	SYM(GetErrorName, "cuGetErrorName");
#undef SYM
}

/* Control characters would break the identity file's one-line values. */
static void text_clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
}

/* The driver writes "0000:01:00.0"; /proc and nvidia-smi use an 8-digit domain. */
static int bus_id_long(const char *in, char *out, size_t len)
{
	unsigned int domain, bus, dev, fn;
	char end;

	if (sscanf(in, "%x:%x:%x.%x%c", &domain, &bus, &dev, &fn, &end) != 4)
		return -EINVAL;
	snprintf(out, len, "%08x:%02x:%02x.%x", domain, bus, dev, fn);
	return 0;
}

static CUresult dev_query(const struct vgpu_drv *d, int ordinal, struct vgpu_dev *v)
{
	char bus[64];
	const unsigned char *u;
	CUuuid uuid;
	CUdevice dev;
	CUresult r;

	memset(v, 0, sizeof(*v));
	if ((r = d->DeviceGet(&dev, ordinal)) != CUDA_SUCCESS ||
	    (r = d->DeviceGetName(v->name, (int)sizeof(v->name), dev)) != CUDA_SUCCESS ||
	    (r = d->DeviceGetUuid_v2(&uuid, dev)) != CUDA_SUCCESS ||
	    (r = d->DeviceGetPCIBusId(bus, (int)sizeof(bus), dev)) != CUDA_SUCCESS ||
	    (r = d->DeviceTotalMem_v2(&v->memory, dev)) != CUDA_SUCCESS ||
	    (r = d->DeviceGetAttribute(&v->cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
				       dev)) != CUDA_SUCCESS ||
	    (r = d->DeviceGetAttribute(&v->cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
				       dev)) != CUDA_SUCCESS)
		return r;
	v->name[sizeof(v->name) - 1] = '\0';
	text_clean(v->name);
	u = (const unsigned char *)uuid.bytes;
	snprintf(v->uuid, sizeof(v->uuid),
		 "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
	bus[sizeof(bus) - 1] = '\0';
	if (bus_id_long(bus, v->bus_id, sizeof(v->bus_id)) < 0)
		return CUDA_ERROR_INVALID_VALUE;
	return CUDA_SUCCESS;
}

/* Loads our library, cuInit, driver version and device count. */
static void drv_start(struct vgpu_drv *d, const struct vgpu_server *s, char lib[PATH_MAX],
		      int *version, int *count)
{
	CUresult r;

	ourlib_find(lib);
	setenv("VGPU_SERVER", s->address, 1);
	drv_open(d, lib);
	r = d->Init(0);
	if (r != CUDA_SUCCESS)
		die("cuInit failed: %s", drv_err(d, r));
	if ((r = d->DriverGetVersion(version)) != CUDA_SUCCESS ||
	    (r = d->DeviceGetCount(count)) != CUDA_SUCCESS)
		die("the driver does not answer: %s", drv_err(d, r));
}

/* --server ADDR and, where output is not NULL, --output PATH; -EINVAL on anything else. */
static int options_parse(int argc, char **argv, const char **server, const char **output)
{
	int i;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--server") && i + 1 < argc)
			*server = argv[++i];
		else if (output && !strcmp(argv[i], "--output") && i + 1 < argc)
			*output = argv[++i];
		else
			return -EINVAL;
	}
	return 0;
}

static int cmd_info(int argc, char **argv)
{
	char lib[PATH_MAX];
	struct vgpu_server s;
	struct vgpu_drv d;
	const char *requested = NULL;
	int version, count, i, ret = 0;

	if (options_parse(argc, argv, &requested, NULL) < 0) {
		usage(stderr);
		return 2;
	}
	server_find(&s, requested);
	drv_start(&d, &s, lib, &version, &count);
	printf("library:        %s\n", lib);
	printf("server:         %s%s\n", s.address, s.private_pid ? " (private vgpud, for this command)" : "");
	printf("driver version: %d (CUDA %d.%d)\n", version, version / 1000, version % 1000 / 10);
	printf("devices:        %d\n", count);
	for (i = 0; i < count; i++) {
		struct vgpu_dev v;
		CUresult r = dev_query(&d, i, &v);

		if (r != CUDA_SUCCESS) {
			fprintf(stderr, "vgpu: device %d: %s\n", i, drv_err(&d, r));
			ret = 1;
			continue;
		}
		printf("device %d:       %s\n", i, v.name);
		printf("  uuid:               %s\n", v.uuid);
		printf("  pci bus id:         %s\n", v.bus_id);
		printf("  memory:             %zu bytes (%.1f GiB)\n", v.memory,
		       (double)v.memory / (1024.0 * 1024 * 1024));
		printf("  compute capability: %d.%d\n", v.cc_major, v.cc_minor);
	}
	fflush(stdout);
	server_stop(&s, 0);
	return ret;
}

/* ---- vgpu identity ----------------------------------------------------- */

static int identity_write(FILE *f, const struct vgpu_drv *d, int version, int count)
{
	int i;

	fprintf(f, "# GPU identity written by vgpu identity; read by libvgpu-procfake.so\n");
	fprintf(f, "driver_version=%d\n", version);
	fprintf(f, "cuda_version=%d\n", version);
	for (i = 0; i < count && i < VGPU_IDENTITY_GPUS_MAX; i++) {
		char prefix[16] = "";
		struct vgpu_dev v;
		CUresult r = dev_query(d, i, &v);

		if (r != CUDA_SUCCESS) {
			fprintf(stderr, "vgpu: device %d: %s\n", i, drv_err(d, r));
			return -EIO;
		}
		/* Device 0 in the short form; the others as gpu.N.key. */
		if (i > 0)
			snprintf(prefix, sizeof(prefix), "gpu.%d.", i);
		fprintf(f, "%sname=%s\n", prefix, v.name);
		fprintf(f, "%suuid=%s\n", prefix, v.uuid);
		fprintf(f, "%spci_bus_id=%s\n", prefix, v.bus_id);
		fprintf(f, "%smemory_total=%zu\n", prefix, v.memory);
		fprintf(f, "%scompute_capability=%d.%d\n", prefix, v.cc_major, v.cc_minor);
	}
	return 0;
}

static int cmd_identity(int argc, char **argv)
{
	char lib[PATH_MAX], tmp[PATH_MAX + 32], dir[PATH_MAX], *slash;
	struct vgpu_server s;
	struct vgpu_drv d;
	const char *requested = NULL, *out = VGPU_DEFAULT_IDENTITY;
	int version, count, fd, ret;
	FILE *f;

	if (options_parse(argc, argv, &requested, &out) < 0) {
		usage(stderr);
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s", out);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		/* /run is a tmpfs: /run/vgpu is gone after every boot. */
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			die("cannot create %s", dir);
	}
	server_find(&s, requested);
	drv_start(&d, &s, lib, &version, &count);
	if (count < 1) {
		server_stop(&s, 0);
		die("%s", "the server has no device");
	}
	/* Written beside the target and renamed: readers see the old file or the new one. */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		server_stop(&s, 0);
		die("cannot write %s", tmp);
	}
	fchmod(fd, 0644);	/* whatever the umask: every process reads it */
	f = fdopen(fd, "w");
	ret = f ? identity_write(f, &d, version, count) : -ENOMEM;
	if (f && (fflush(f) != 0 || fsync(fd) != 0))
		ret = -errno;
	if (f)
		fclose(f);
	else
		close(fd);
	server_stop(&s, 0);
	if (ret == 0 && rename(tmp, out) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		die("cannot write the identity file: %s", strerror(-ret));
	}
	printf("vgpu: wrote %s\n", out);
	return 0;
}

/*
 * vgpu bench: vgpu-bench under `vgpu run`, comparing NVIDIA's driver (run
 * directly) with vgpu's library (through the daemon) in one invocation.
 */
static int cmd_bench(int argc, char **argv)
{
	char nv[PATH_MAX], lib[PATH_MAX], bench[PATH_MAX], rt[PATH_MAX], drive[PATH_MAX];
	const char *server = NULL;
	char *args[32];
	int i, n = 0;

	if (vd_driver_find(nv, sizeof(nv)) < 0)
		die("%s", "bench: no NVIDIA driver on this machine, so nothing native to compare with");
	ourlib_find(lib);
	if (locate(bench, "vgpu-bench", VGPU_LIBEXECDIR "/vgpu-bench") < 0)
		die("vgpu-bench is not in %s nor in " VGPU_LIBEXECDIR, self_dir);
	for (i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--server") && i + 1 < argc)
			server = argv[i + 1];
	if (server) {
		args[n++] = "--server";
		args[n++] = (char *)server;
	}
	args[n++] = "--";
	args[n++] = bench;
	args[n++] = "--native";
	args[n++] = nv;
	args[n++] = "--vgpu";
	args[n++] = lib;
	if (locate(rt, "vgpu-bench-rt", VGPU_LIBEXECDIR "/vgpu-bench-rt") == 0) {
		args[n++] = "--rt";
		args[n++] = rt;
	}
	/* --llama DIR --model GGUF: the llama.cpp driver program of the GPU suite. */
	for (i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--llama") &&
		    locate(drive, "../tests/gpu/llama/llama-drive", VGPU_LIBEXECDIR "/llama-drive") == 0) {
			args[n++] = "--llama-drive";
			args[n++] = drive;
			break;
		}
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--server") && i + 1 < argc) {
			i++;
			continue;
		}
		if ((!strcmp(argv[i], "--reps") || !strcmp(argv[i], "--rounds") || !strcmp(argv[i], "--python") ||
		     !strcmp(argv[i], "--size-mib") || !strcmp(argv[i], "--settle-ms") || !strcmp(argv[i], "--transport") ||
		     !strcmp(argv[i], "--llama") || !strcmp(argv[i], "--model") || !strcmp(argv[i], "--llama-drive")) &&
		    i + 1 < argc && n < 28) {
			args[n++] = argv[i];
			args[n++] = argv[++i];
			continue;
		}
		usage(stderr);
		return 2;
	}
	args[n] = NULL;
	return cmd_run(n, args);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	self_dir_init();
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "info"))
		return cmd_info(argc - 2, argv + 2);
	if (!strcmp(argv[1], "identity"))
		return cmd_identity(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bench"))
		return cmd_bench(argc - 2, argv + 2);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "vgpu: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
