/*
 * The decision, once per process image, and everything that must be ready
 * before the program runs.
 *
 * The library is linked with -z initfirst, so this constructor runs before
 * any other object's; it reads /proc/self/comm (and procfake.conf) with raw
 * system calls first, so nothing it calls can reach an interposer before the
 * answer is known.  Every failure means "not whitelisted": the process then
 * only ever takes the pass-through paths.  Nothing is logged, nothing is read
 * from the environment (the preload also runs in setuid programs).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "pf.h"

/*
 * Test variants of the library are built with other paths (tests/procfake);
 * the product always reads the fixed ones.
 */
#ifndef PF_CONF_PATH
#define PF_CONF_PATH "/etc/vgpu/procfake.conf"
#endif
#ifndef PF_IDENTITY_PATH
#define PF_IDENTITY_PATH "/run/vgpu/identity"
#endif

int pf_active;
struct pf_tree pf_tree;
long long pf_mtime;
struct pf_real pf_real;

/* Static, not on the stack: the constructor may run on a small stack. */
static struct pf_identity pf_id;
static struct pf_names pf_conf;
static char pf_buf[PF_FILE_MAX];

static int pf_whitelisted(void)
{
	char comm[64];	/* TASK_COMM_LEN and its newline, with room to spare */
	size_t len, conf_len;

	if (pf_sys_read_file("/proc/self/comm", comm, sizeof(comm), &len))
		return 0;
#ifdef PF_ALWAYS_ON
	/* The test suite's negative control: a build that ignores the whitelist. */
	return 1;
#endif
	if (pf_names_match(NULL, comm, len))
		return 1;
	if (pf_sys_read_file(PF_CONF_PATH, pf_buf, sizeof(pf_buf), &conf_len))
		return 0;
	if (pf_names_parse(pf_buf, conf_len, &pf_conf))
		return 0;
	return pf_names_match(&pf_conf, comm, len);
}

#define PF_RESOLVE(field, name) \
	(*(void **)&pf_real.field = dlsym(RTLD_NEXT, name))

static void pf_resolve(void)
{
	PF_RESOLVE(opendir, "opendir");
	PF_RESOLVE(fdopendir, "fdopendir");
	PF_RESOLVE(readdir, "readdir");
	PF_RESOLVE(readdir64, "readdir64");
	PF_RESOLVE(readdir_r, "readdir_r");
	PF_RESOLVE(readdir64_r, "readdir64_r");
	PF_RESOLVE(closedir, "closedir");
	PF_RESOLVE(rewinddir, "rewinddir");
	PF_RESOLVE(dirfd, "dirfd");
	PF_RESOLVE(telldir, "telldir");
	PF_RESOLVE(seekdir, "seekdir");
	PF_RESOLVE(scandir, "scandir");
	PF_RESOLVE(scandir64, "scandir64");
	PF_RESOLVE(scandirat, "scandirat");
	PF_RESOLVE(scandirat64, "scandirat64");
	PF_RESOLVE(fopen, "fopen");
	PF_RESOLVE(fopen64, "fopen64");
	PF_RESOLVE(faccessat, "faccessat");
	PF_RESOLVE(euidaccess, "euidaccess");
	PF_RESOLVE(open_2, "__open_2");
	PF_RESOLVE(open64_2, "__open64_2");
	PF_RESOLVE(openat_2, "__openat_2");
	PF_RESOLVE(openat64_2, "__openat64_2");
}

__attribute__((constructor))
static void pf_init(void)
{
	int saved = errno;
	int on = pf_whitelisted();
	size_t len;

	pf_resolve();
	if (!on)
		goto out;
	if (pf_sys_read_file(PF_IDENTITY_PATH, pf_buf, sizeof(pf_buf), &len))
		goto out;
	if (pf_identity_parse(pf_buf, len, &pf_id))
		goto out;
	if (pf_tree_build(&pf_tree, &pf_id, pf_sys_exists))
		goto out;
	{
		/* Same in every process, like a real driver's load time. */
		struct stat st;

		if (pf_sys(PF_SYS_FSTATAT, AT_FDCWD, (long)PF_IDENTITY_PATH, (long)&st, 0, 0) == 0)
			pf_mtime = st.st_mtim.tv_sec;
	}
	/* Threads the program starts later see the tree through pthread_create's ordering. */
	__atomic_store_n(&pf_active, 1, __ATOMIC_RELEASE);
out:
	errno = saved;
}

static int pf_join(const char *base, size_t bl, const char *path, char *out, size_t size)
{
	size_t pl = strlen(path);

	if (bl + 1 + pl + 1 > size)
		return -1;
	memcpy(out, base, bl);
	out[bl] = '/';
	memcpy(out + bl + 1, path, pl + 1);
	return 0;
}

int pf_path_abs(int dirfd, const char *path, char *out, size_t size)
{
	char base[PF_ABS_MAX];
	long n;

	if (!path || path[0] == '\0')
		return -1;
	if (path[0] == '/') {
		size_t pl = strlen(path);

		if (pl + 1 > size)
			return -1;
		memcpy(out, path, pl + 1);
		return 0;
	}
	if (dirfd == AT_FDCWD) {
		n = pf_sys(SYS_getcwd, (long)base, sizeof(base), 0, 0, 0);
		if (n <= 0 || base[0] != '/')
			return -1;
		return pf_join(base, strlen(base), path, out, size);
	}
	if (dirfd < 0)
		return -1;
	{
		char link[32];

		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		n = pf_sys(SYS_readlinkat, AT_FDCWD, (long)link, (long)base, sizeof(base), 0);
		if (n <= 0 || (size_t)n >= sizeof(base) || base[0] != '/')
			return -1;
		return pf_join(base, (size_t)n, path, out, size);
	}
}

const struct pf_node *pf_lookup_at(int dirfd, const char *path, int follow)
{
	char abs[PF_ABS_MAX];
	const struct pf_node *n = NULL;
	int saved;

	if (!__atomic_load_n(&pf_active, __ATOMIC_ACQUIRE))
		return NULL;
	saved = errno;
	if (pf_path_abs(dirfd, path, abs, sizeof(abs)) == 0)
		n = pf_tree_lookup(&pf_tree, abs, follow);
	errno = saved;
	return n;
}
