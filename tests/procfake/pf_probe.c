/*
 * pf_probe: reads procfake's files through every libc entry point and checks
 * them against the identity given on the command line.
 *
 *   pf_probe check NAME UUID BDF DRIVER DEVICE_ID VBIOS
 *	Every check either sees the fake file with exactly the identity's values
 *	or fails.  Exit 0: all passed; 2: all failed (nothing fake is visible);
 *	1: some of each; 3: a sanity check on a real file failed.
 *   pf_probe mt | forkexec PROG [ARG...] | setuid
 *	Programs for the battery: their output describes what they saw, and is
 *	the same whether or not procfake is loaded in a non-whitelisted process.
 *
 * Built without large-file renaming and with -fno-builtin, so that open64,
 * stat64… are called under their own names; the pre-2.33 __xstat symbols are
 * bound by version with .symver.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

#if defined(__x86_64__)
#define PF_HAVE_OLD_STAT 1
int old_xstat(int ver, const char *path, struct stat *st);
int old_lxstat(int ver, const char *path, struct stat *st);
int old_fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int old_xstat64(int ver, const char *path, struct stat64 *st);
int old_lxstat64(int ver, const char *path, struct stat64 *st);
int old_fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);
__asm__(".symver old_xstat, __xstat@GLIBC_2.2.5");
__asm__(".symver old_lxstat, __lxstat@GLIBC_2.2.5");
__asm__(".symver old_fxstatat, __fxstatat@GLIBC_2.4");
__asm__(".symver old_xstat64, __xstat64@GLIBC_2.2.5");
__asm__(".symver old_lxstat64, __lxstat64@GLIBC_2.2.5");
__asm__(".symver old_fxstatat64, __fxstatat64@GLIBC_2.4");
#define PF_STAT_VER 1
#endif

static const char *g_name, *g_uuid, *g_bdf, *g_drv, *g_vbios;
static unsigned g_devid;
static char g_info[1024], g_gpudir[256], g_infopath[320], g_link[256], g_linktext[256];
static int g_pass, g_fail;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s ", ok ? "ok  " : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		g_pass++;
	else
		g_fail++;
}

static int fd_equals(int fd, const char *want)
{
	char buf[4096];
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return n == 0 && strcmp(buf, want) == 0;
}

static int file_equals(FILE *f, const char *want)
{
	char buf[4096];
	size_t got;

	if (!f)
		return 0;
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	return strcmp(buf, want) == 0;
}

static int version_ok(int fd)
{
	char buf[1024], mid[64];
	size_t got = 0;
	ssize_t n;
	char *nl;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	snprintf(mid, sizeof(mid), "  %s  ", g_drv);
	nl = strchr(buf, '\n');
	return strncmp(buf, "NVRM version: NVIDIA UNIX ", 26) == 0 && nl && strstr(buf, mid) &&
	       strstr(buf, mid) < nl && strncmp(nl + 1, "GCC version:  ", 14) == 0 &&
	       buf[got - 1] == '\n' && strchr(nl + 1, '\n') == buf + got - 1;
}

static int params_ok(int fd)
{
	char buf[4096];
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return 0;
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	return (strncmp(buf, "ModifyDeviceFiles: 0\n", 21) == 0 ||
		strstr(buf, "\nModifyDeviceFiles: 0\n") != NULL);
}

static int dir_has(DIR *d, const char *name, int use64)
{
	int found = 0;

	if (!d)
		return 0;
	for (;;) {
		const char *n;

		if (use64) {
			struct dirent64 *e = readdir64(d);

			if (!e)
				break;
			n = e->d_name;
		} else {
			struct dirent *e = readdir(d);

			if (!e)
				break;
			n = e->d_name;
		}
		if (strcmp(n, name) == 0)
			found = 1;
	}
	closedir(d);
	return found;
}

static int is_chr(const struct stat *st, unsigned maj, unsigned min)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == maj && minor(st->st_rdev) == min;
}

static void check_open(void)
{
	char sysattr[320], rel[320];
	int dfd, fd;

	check(fd_equals(open(g_infopath, O_RDONLY), g_info), "open information");
	check(version_ok(open64("/proc/driver/nvidia/version", O_RDONLY)), "open64 version");
	check(params_ok(__open_2("/proc/driver/nvidia/params", O_RDONLY)), "__open_2 params");
	check(fd_equals(__open64_2(g_infopath, O_RDONLY | O_CLOEXEC), g_info), "__open64_2 information");
	check(fd_equals(openat(AT_FDCWD, g_infopath, O_RDONLY), g_info), "openat information");
	check(version_ok(openat64(AT_FDCWD, "/proc/driver/nvidia/version", O_RDONLY)),
	      "openat64 version");
	check(params_ok(__openat_2(AT_FDCWD, "/proc/driver/nvidia/params", O_RDONLY)),
	      "__openat_2 params");
	check(fd_equals(__openat64_2(AT_FDCWD, g_infopath, O_RDONLY), g_info),
	      "__openat64_2 information");

	/* relative to a real directory's descriptor */
	dfd = open("/proc/driver", O_RDONLY | O_DIRECTORY);
	snprintf(rel, sizeof(rel), "nvidia/gpus/%s/information", g_bdf);
	check(fd_equals(openat(dfd, rel, O_RDONLY), g_info), "openat(dirfd) relative information");
	if (dfd >= 0)
		close(dfd);

	/* relative to the working directory, through the device's link */
	snprintf(rel, sizeof(rel), "devices/%s/vendor", g_bdf);
	if (chdir("/sys/bus/pci") == 0) {
		check(fd_equals(open(rel, O_RDONLY), "0x10de\n"), "open relative vendor");
		if (chdir("/") != 0)
			check(0, "chdir back");
	} else {
		check(0, "chdir /sys/bus/pci");
	}

	snprintf(sysattr, sizeof(sysattr), "%s/device", g_link);
	snprintf(rel, sizeof(rel), "0x%04x\n", g_devid);
	check(fd_equals(open(sysattr, O_RDONLY), rel), "open sysfs device through the link");
	snprintf(sysattr, sizeof(sysattr), "%s/class", g_link);
	check(fd_equals(open(sysattr, O_RDONLY), "0x030200\n"), "open sysfs class");
	snprintf(sysattr, sizeof(sysattr), "%s/subsystem_vendor", g_link);
	check(fd_equals(open(sysattr, O_RDONLY), "0x10de\n"), "open sysfs subsystem_vendor");
	snprintf(rel, sizeof(rel), "%s\n", g_drv);
	check(fd_equals(open("/sys/module/nvidia/version", O_RDONLY), rel), "open module version");

	errno = 0;
	fd = open("/proc/driver/nvidia/params", O_WRONLY);
	check(fd < 0 && errno == EACCES, "open for writing refused with EACCES");
	if (fd >= 0)
		close(fd);
	fd = open(g_infopath, O_RDONLY);
	check(fd >= 0 && write(fd, "x", 1) < 0 && errno == EBADF, "fake descriptor is read-only");
	if (fd >= 0)
		close(fd);
}

static void check_fopen(void)
{
	char line[256];
	FILE *f;
	int seen = 0;

	check(file_equals(fopen(g_infopath, "r"), g_info), "fopen information");
	check(file_equals(fopen64(g_infopath, "re"), g_info), "fopen64 information");
	f = fopen64("/proc/driver/nvidia/params", "r");
	while (f && fgets(line, sizeof(line), f))
		if (strcmp(line, "ModifyDeviceFiles: 0\n") == 0)
			seen = 1;
	if (f)
		fclose(f);
	check(seen, "fopen64 params line by line");
	errno = 0;
	f = fopen("/proc/driver/nvidia/version", "w");
	check(!f && errno == EACCES, "fopen for writing refused with EACCES");
	if (f)
		fclose(f);
}

static void check_stat(void)
{
	struct stat st;
	struct stat64 st64;
	struct statx sx;

	check(stat(g_infopath, &st) == 0 && S_ISREG(st.st_mode), "stat information");
	check(stat("/proc/driver/nvidia", &st) == 0 && S_ISDIR(st.st_mode), "stat nvidia directory");
	check(stat("/dev/nvidia0", &st) == 0 && is_chr(&st, 195, 0), "stat /dev/nvidia0");
	check(stat("/dev/nvidiactl", &st) == 0 && is_chr(&st, 195, 255), "stat /dev/nvidiactl");
	check(stat("/dev/nvidia-uvm", &st) == 0 && S_ISCHR(st.st_mode), "stat /dev/nvidia-uvm");
	check(lstat(g_link, &st) == 0 && S_ISLNK(st.st_mode), "lstat device link");
	check(stat(g_link, &st) == 0 && S_ISDIR(st.st_mode), "stat device link");
	check(fstatat(AT_FDCWD, g_link, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode),
	      "fstatat nofollow");
	check(fstatat(AT_FDCWD, "/sys/module/nvidia", &st, 0) == 0 && S_ISDIR(st.st_mode),
	      "fstatat module");
	check(stat64(g_infopath, &st64) == 0 && S_ISREG(st64.st_mode), "stat64 information");
	check(lstat64(g_link, &st64) == 0 && S_ISLNK(st64.st_mode), "lstat64 link");
	check(fstatat64(AT_FDCWD, "/dev/nvidia0", &st64, 0) == 0 && S_ISCHR(st64.st_mode),
	      "fstatat64 /dev/nvidia0");
#ifdef PF_HAVE_OLD_STAT
	check(old_xstat(PF_STAT_VER, g_infopath, &st) == 0 && S_ISREG(st.st_mode), "__xstat");
	check(old_lxstat(PF_STAT_VER, g_link, &st) == 0 && S_ISLNK(st.st_mode), "__lxstat");
	check(old_fxstatat(PF_STAT_VER, AT_FDCWD, "/dev/nvidiactl", &st, 0) == 0 &&
	      is_chr(&st, 195, 255), "__fxstatat");
	check(old_xstat64(PF_STAT_VER, "/proc/driver/nvidia/gpus", &st64) == 0 &&
	      S_ISDIR(st64.st_mode), "__xstat64");
	check(old_lxstat64(PF_STAT_VER, g_link, &st64) == 0 && S_ISLNK(st64.st_mode), "__lxstat64");
	check(old_fxstatat64(PF_STAT_VER, AT_FDCWD, g_link, &st64, 0) == 0 &&
	      S_ISDIR(st64.st_mode), "__fxstatat64");
#endif
	check(statx(AT_FDCWD, "/dev/nvidia0", 0, STATX_BASIC_STATS, &sx) == 0 &&
	      S_ISCHR(sx.stx_mode) && sx.stx_rdev_major == 195 && sx.stx_rdev_minor == 0,
	      "statx /dev/nvidia0");
	check(statx(AT_FDCWD, g_link, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &sx) == 0 &&
	      S_ISLNK(sx.stx_mode), "statx link");
}

static void check_access(void)
{
	char buf[256];
	ssize_t n;

	check(access(g_infopath, R_OK) == 0, "access information");
	check(access("/dev/nvidia-uvm", R_OK | W_OK) == 0, "access /dev/nvidia-uvm");
	check(faccessat(AT_FDCWD, "/dev/nvidiactl", F_OK, 0) == 0, "faccessat /dev/nvidiactl");
	check(faccessat(AT_FDCWD, "/proc/driver/nvidia/params", R_OK, AT_EACCESS) == 0,
	      "faccessat AT_EACCESS params");
	check(euidaccess("/sys/module/nvidia", R_OK | X_OK) == 0, "euidaccess module");
	check(eaccess("/dev/nvidia0", R_OK) == 0, "eaccess /dev/nvidia0");
	n = readlink(g_link, buf, sizeof(buf));
	check(n > 0 && (size_t)n == strlen(g_linktext) && memcmp(buf, g_linktext, (size_t)n) == 0,
	      "readlink device link");
	{
		char drv[300];

		snprintf(drv, sizeof(drv), "%s/driver", g_link);
		n = readlink(drv, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		check(n > 0 && strcmp(buf, "../../../bus/pci/drivers/nvidia") == 0,
		      "readlink driver binding");
	}
	n = readlinkat(AT_FDCWD, g_link, buf, sizeof(buf));
	check(n > 0 && (size_t)n == strlen(g_linktext), "readlinkat device link");
}

static int name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int name_cmp64(const struct dirent64 **a, const struct dirent64 **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static void check_dirs(void)
{
	struct dirent **list = NULL;
	struct dirent64 **list64 = NULL;
	struct dirent ent, *res;
	int n, i, found, sorted;
	DIR *d;
	long pos;

	check(dir_has(opendir("/proc/driver/nvidia/gpus"), g_bdf, 0), "readdir gpus");
	check(dir_has(opendir("/proc/driver/nvidia"), "..", 0), "readdir dots");
	check(dir_has(opendir("/sys/bus/pci/devices"), g_bdf, 1), "readdir64 pci devices");
	check(dir_has(opendir("/dev"), "nvidiactl", 0), "readdir /dev nvidiactl");
	check(dir_has(opendir("/dev"), "nvidia0", 1), "readdir64 /dev nvidia0");
	check(dir_has(opendir("/sys/module"), "nvidia", 0), "readdir /sys/module");
	check(dir_has(opendir(g_link), "vendor", 0), "readdir device directory");

	d = opendir("/proc/driver/nvidia");
	found = 0;
	/* deprecated, but programs still call it with whatever opendir returned */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	while (d && readdir_r(d, &ent, &res) == 0 && res)
#pragma GCC diagnostic pop
		if (strcmp(ent.d_name, "version") == 0)
			found = 1;
	if (d)
		closedir(d);
	check(found, "readdir_r nvidia");

	d = opendir("/proc/driver/nvidia");
	pos = -1;
	if (d) {
		struct dirent *e;

		while ((e = readdir(d)) && strcmp(e->d_name, "params") != 0)
			;
		pos = e ? telldir(d) : -1;
		rewinddir(d);
		e = readdir(d);
		found = e && strcmp(e->d_name, ".") == 0;
		seekdir(d, pos);
		e = readdir(d);
		found = found && pos > 0 && (!e || strcmp(e->d_name, "params") != 0);
		closedir(d);
	}
	check(d && found, "rewinddir telldir seekdir");

	n = scandir("/sys/bus/pci/devices", &list, NULL, name_cmp);
	found = 0;
	sorted = 1;
	for (i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, g_bdf) == 0)
			found = 1;
		if (i > 0 && strcmp(list[i - 1]->d_name, list[i]->d_name) > 0)
			sorted = 0;
		free(list[i]);
	}
	free(list);
	check(n > 0 && found && sorted, "scandir pci devices sorted");

	n = scandirat(AT_FDCWD, "/sys/bus/pci/devices", &list, NULL, name_cmp);
	found = 0;
	for (i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, g_bdf) == 0)
			found = 1;
		free(list[i]);
	}
	free(list);
	check(n > 0 && found, "scandirat pci devices");

	n = scandir64("/proc/driver/nvidia", &list64, NULL, name_cmp64);
	found = 0;
	for (i = 0; i < n; i++) {
		if (strcmp(list64[i]->d_name, "gpus") == 0 || strcmp(list64[i]->d_name, "params") == 0 ||
		    strcmp(list64[i]->d_name, "version") == 0)
			found++;
		free(list64[i]);
	}
	free(list64);
	check(n == 5 && found == 3, "scandir64 nvidia");
}

static void *reader(void *arg)
{
	int i, *bad = arg;

	for (i = 0; i < 200; i++)
		if (!fd_equals(open(g_infopath, O_RDONLY), g_info))
			(*bad)++;
	return NULL;
}

static void check_threads(void)
{
	pthread_t t[4];
	int bad[4] = { 0 }, i, ok = 1;

	int started = 0;

	for (i = 0; i < 4; i++) {
		if (pthread_create(&t[i], NULL, reader, &bad[i]))
			break;
		started++;
	}
	ok = started == 4;
	for (i = 0; i < started; i++) {
		pthread_join(t[i], NULL);
		if (bad[i])
			ok = 0;
	}
	check(ok, "four threads read information 200 times each");
}

/* Real files still work through the same entry points (not counted). */
static int sanity(void)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	int ok = f && fgets(line, sizeof(line), f) && strncmp(line, "Name:", 5) == 0;
	struct stat st;

	if (f)
		fclose(f);
	ok = ok && stat("/proc/self", &st) == 0 && S_ISDIR(st.st_mode);
	ok = ok && open("/nonexistent/procfake", O_RDONLY) < 0 && errno == ENOENT;
	if (!ok)
		printf("FAIL sanity: real files through the interposed entry points\n");
	return ok;
}

static int cmd_check(char **argv)
{
	unsigned dom, bus;

	g_name = argv[0];
	g_uuid = argv[1];
	g_bdf = argv[2];
	g_drv = argv[3];
	g_devid = (unsigned)strtoul(argv[4], NULL, 0);
	g_vbios = argv[5];
	if (sscanf(g_bdf, "%x:%x:", &dom, &bus) != 2)
		return 3;
	snprintf(g_info, sizeof(g_info),
		 "Model: \t\t %s\nIRQ:   \t\t 0\nGPU UUID: \t %s\nVideo BIOS: \t %s\n"
		 "Bus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\n"
		 "Bus Location: \t %s\nDevice Minor: \t 0\nGPU Firmware: \t %s\n"
		 "GPU Excluded:\t No\n", g_name, g_uuid, g_vbios, g_bdf, g_drv);
	snprintf(g_gpudir, sizeof(g_gpudir), "/proc/driver/nvidia/gpus/%s", g_bdf);
	snprintf(g_infopath, sizeof(g_infopath), "%s/information", g_gpudir);
	snprintf(g_link, sizeof(g_link), "/sys/bus/pci/devices/%s", g_bdf);
	snprintf(g_linktext, sizeof(g_linktext), "../../../devices/pci%04x:%02x/%s", dom, bus, g_bdf);

	if (!sanity())
		return 3;
	check_open();
	check_fopen();
	check_stat();
	check_access();
	check_dirs();
	check_threads();
	printf("passed %d failed %d\n", g_pass, g_fail);
	if (g_fail == 0)
		return 0;
	return g_pass == 0 ? 2 : 1;
}

/* ---- battery programs: print what they see ---- */

static void describe(const char *path)
{
	struct stat st;
	char buf[128];
	int fd;
	ssize_t n;

	errno = 0;
	printf("%s: stat=%d errno=%d", path, stat(path, &st), errno);
	errno = 0;
	fd = open(path, O_RDONLY);
	printf(" open=%s errno=%d", fd >= 0 ? "yes" : "no", fd >= 0 ? 0 : errno);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf));
		printf(" read=%zd", n);
		close(fd);
	}
	printf(" access=%d\n", access(path, F_OK));
}

static const char *const battery_paths[] = {
	"/proc/driver/nvidia/version", "/proc/driver/nvidia/params", "/proc/driver/nvidia",
	"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/sys/module/nvidia",
	"/sys/bus/pci/devices", "/proc/self/comm",
};

static void *mt_worker(void *arg)
{
	char *out = arg;
	size_t i, off = 0;

	for (i = 0; i < sizeof(battery_paths) / sizeof(battery_paths[0]); i++) {
		struct stat st;
		int r = stat(battery_paths[i], &st);
		DIR *d = opendir(battery_paths[i]);
		int entries = 0;

		while (d && readdir(d))
			entries++;
		if (d)
			closedir(d);
		off += (size_t)snprintf(out + off, 4096 - off, "%s %d %d\n", battery_paths[i], r,
					entries);
	}
	return NULL;
}

static int cmd_mt(void)
{
	static char out[8][4096];
	pthread_t t[8];
	int i;

	for (i = 0; i < 8; i++)
		pthread_create(&t[i], NULL, mt_worker, out[i]);
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		printf("thread %d\n%s", i, out[i]);
	}
	return 0;
}

static int cmd_forkexec(char **argv)
{
	pid_t pid;
	int status = 0;

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 1;
	describe("/proc/driver/nvidia/params");
	printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

/* Run setuid: describes the fake paths; says on fd 3 whether procfake is mapped. */
static int cmd_setuid(void)
{
	char line[512];
	size_t i;
	FILE *maps;
	int mapped = 0;

	for (i = 0; i < sizeof(battery_paths) / sizeof(battery_paths[0]); i++)
		describe(battery_paths[i]);
	printf("euid %d uid %d\n", (int)geteuid(), (int)getuid());
	maps = fopen("/proc/self/maps", "r");
	while (maps && fgets(line, sizeof(line), maps))
		if (strstr(line, "libvgpu-procfake"))
			mapped = 1;
	if (maps)
		fclose(maps);
	if (fcntl(3, F_GETFD) >= 0)
		dprintf(3, "mapped %s\n", mapped ? "yes" : "no");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "check") == 0)
		return cmd_check(argv + 2);
	if (argc == 2 && strcmp(argv[1], "mt") == 0)
		return cmd_mt();
	if (argc >= 3 && strcmp(argv[1], "forkexec") == 0)
		return cmd_forkexec(argv + 2);
	if (argc == 2 && strcmp(argv[1], "setuid") == 0)
		return cmd_setuid();
	fprintf(stderr, "usage: pf_probe check NAME UUID BDF DRIVER DEVICE_ID VBIOS | mt | "
		"forkexec PROG [ARG...] | setuid\n");
	return 64;
}
