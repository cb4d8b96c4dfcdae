/*
 * Finding NVIDIA's libcuda.so.1: VGPU_DRIVER, the ldconfig cache, the usual
 * directories.  Every candidate is checked before it is offered: a regular
 * ELF file of this process's class and machine, without vgpu's note.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "driverpath.h"
#include "elfnote.h"
#include "vgpu/log.h"

/* ldconfig -p prints a few hundred lines; more than this is not a cache listing. */
#define VD_LDCONFIG_OUT_MAX (4u << 20)

#if defined(__x86_64__)
#define VD_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define VD_ELF_MACHINE EM_AARCH64
#endif

extern char **environ;

static const char *const vd_usual_dirs[] = {
	"/usr/lib/x86_64-linux-gnu",
	"/usr/lib/aarch64-linux-gnu",
	"/usr/lib64",
	"/usr/lib",
	"/usr/local/nvidia/lib64",
	"/usr/local/nvidia/lib",
	"/usr/lib/wsl/lib",
	NULL,
};

/* The ELF header says this process could load the file. */
static int header_ok(int fd)
{
	unsigned char id[EI_NIDENT];
	uint16_t machine;

	if (pread(fd, id, sizeof(id), 0) != (ssize_t)sizeof(id) || memcmp(id, ELFMAG, SELFMAG) != 0)
		return -ENOEXEC;
	if (id[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32))
		return -ENOEXEC;
	/* e_machine sits right after e_type in both classes. */
	if (pread(fd, &machine, sizeof(machine), EI_NIDENT + 2) != (ssize_t)sizeof(machine))
		return -ENOEXEC;
#ifdef VD_ELF_MACHINE
	if (machine != VD_ELF_MACHINE)
		return -ENOEXEC;
#endif
	return 0;
}

int vd_driver_check(const char *path)
{
	struct stat st;
	int fd, ret;

	/* O_NONBLOCK: a FIFO planted at the path must not hang the daemon. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -ENOEXEC;
		goto out;
	}
	ret = header_ok(fd);
	if (ret < 0)
		goto out;
	ret = vd_elf_has_vgpu_note(path);
	if (ret > 0)
		ret = -EEXIST;
out:
	close(fd);
	return ret;
}

static int offer(const char *path, char *out, size_t outlen)
{
	int ret = vd_driver_check(path);

	if (ret == -EEXIST)
		VG_INFO("%s is vgpu's own library, not NVIDIA's driver: skipped", path);
	else if (ret < 0 && ret != -ENOENT)
		VG_INFO("%s cannot be the driver: %s", path, strerror(-ret));
	if (ret < 0)
		return ret;
	if (strlen(path) >= outlen)
		return -ENAMETOOLONG;
	strcpy(out, path);
	return 0;
}

/* Runs `ldconfig -p`; *text gets its NUL-terminated output (free it). */
static int ldconfig_read(const char *ldconfig, char **text)
{
	char *const argv[] = { (char *)ldconfig, (char *)"-p", NULL };
	posix_spawn_file_actions_t fa;
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int pipefd[2], ret, status;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	ret = -posix_spawn(&pid, ldconfig, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	if (ret < 0) {
		close(pipefd[0]);
		return ret;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nb;

			if (cap >= VD_LDCONFIG_OUT_MAX) {
				ret = -EFBIG;
				break;
			}
			nb = realloc(buf, cap + 65536);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
			cap += 65536;
		}
		n = read(pipefd[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ret < 0) {
		free(buf);
		return ret;
	}
	if (!buf) {
		buf = strdup("");
		if (!buf)
			return -ENOMEM;
	}
	buf[len] = '\0';
	*text = buf;
	return 0;
}

/*
 * Lines look like "\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/.../libcuda.so.1".
 * The class and machine are checked on the file itself, so the flags in
 * parentheses need no interpretation.
 */
static int search_ldconfig(const char *ldconfig, char *out, size_t outlen)
{
	char *text = NULL, *line, *save = NULL;
	int ret;

	ret = ldconfig_read(ldconfig, &text);
	if (ret < 0)
		return ret;
	ret = -ENOENT;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *arrow;

		line += strspn(line, " \t");
		if (strncmp(line, VD_DRIVER_NAME " ", sizeof(VD_DRIVER_NAME)) != 0)
			continue;
		arrow = strstr(line, " => ");
		if (!arrow)
			continue;
		if (offer(arrow + 4, out, outlen) == 0) {
			ret = 0;
			break;
		}
	}
	free(text);
	return ret;
}

int vd_driver_search(const char *env, const char *ldconfig, const char *const *dirs,
		     char *out, size_t outlen)
{
	char path[4096];
	int ret;

	if (env && *env) {
		ret = offer(env, out, outlen);
		if (ret == -EEXIST)
			VG_ERR("VGPU_DRIVER=%s is vgpu's own libcuda.so.1, not NVIDIA's driver", env);
		else if (ret < 0)
			VG_ERR("VGPU_DRIVER=%s: %s", env, strerror(-ret));
		return ret;
	}
	if (ldconfig && search_ldconfig(ldconfig, out, outlen) == 0)
		return 0;
	for (; dirs && *dirs; dirs++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", *dirs, VD_DRIVER_NAME) >= sizeof(path))
			continue;
		if (offer(path, out, outlen) == 0)
			return 0;
	}
	return -ENOENT;
}

int vd_driver_find(char *out, size_t outlen)
{
	/* /sbin is not on every user's PATH; posix_spawn needs a full path. */
	const char *ldconfig = access("/sbin/ldconfig", X_OK) == 0 ? "/sbin/ldconfig" :
			       access("/usr/sbin/ldconfig", X_OK) == 0 ? "/usr/sbin/ldconfig" : NULL;

	return vd_driver_search(getenv("VGPU_DRIVER"), ldconfig, vd_usual_dirs, out, outlen);
}
