/*
 * open(2) and fopen(3) families.  A fake file is served as a sealed copy of
 * its text in a memfd, reopened read-only through /proc/self/fd so that the
 * descriptor behaves like a read-only proc or sysfs file (writes fail with
 * EBADF, lseek and pread work).  Everything else is the raw openat system call.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "pf.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif

#define PF_PASS (-2)	/* pf_open_fake's "not mine after all" */

/* glibc's own alias of fopen: the fallback needs no lookup. */
extern FILE *_IO_fopen(const char *path, const char *mode);

int pf_file_open(const struct pf_node *n, int flags)
{
	unsigned off = 0;
	char self[32];
	long mfd, fd;
	int saved;

	mfd = pf_sys(SYS_memfd_create, (long)"vgpu-procfake", MFD_CLOEXEC | MFD_ALLOW_SEALING,
		     0, 0, 0);
	if (mfd < 0)
		return -1;
	while (off < n->len) {
		long w = pf_sys(SYS_write, mfd, (long)(n->data + off), n->len - off, 0, 0);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto err;
		off += (unsigned)w;
	}
	pf_sys(SYS_fcntl, mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW |
	       F_SEAL_WRITE, 0, 0);
	snprintf(self, sizeof(self), "/proc/self/fd/%ld", mfd);
	fd = pf_sys(SYS_openat, AT_FDCWD, (long)self,
		    O_RDONLY | (flags & (O_CLOEXEC | O_NONBLOCK | O_NOATIME)), 0, 0);
	if (fd < 0) {
		/* No /proc: hand out the memfd itself, rewound. */
		if (!(flags & O_CLOEXEC))
			pf_sys(SYS_fcntl, mfd, F_SETFD, 0, 0, 0);
		pf_sys(SYS_lseek, mfd, 0, SEEK_SET, 0, 0);
		return (int)mfd;
	}
	saved = errno;
	pf_sys(SYS_close, mfd, 0, 0, 0, 0);
	errno = saved;
	return (int)fd;
err:
	saved = errno ? errno : EIO;
	pf_sys(SYS_close, mfd, 0, 0, 0, 0);
	errno = saved;
	return -1;
}

static int pf_fail(int err)
{
	errno = err;
	return -1;
}

/* A fake node opened with these flags: an fd, -1 with errno, or PF_PASS. */
static int pf_open_fake(const struct pf_node *n, int flags)
{
	int acc = flags & O_ACCMODE;

	switch (n->type) {
	case PF_FILE:
		if ((flags & O_CREAT) && (flags & O_EXCL))
			return pf_fail(EEXIST);
		if (flags & O_DIRECTORY)
			return pf_fail(ENOTDIR);
		if (acc != O_RDONLY || (flags & O_TRUNC))
			return pf_fail(EACCES);
		return pf_file_open(n, flags);
	case PF_DIR:
		/* A directory that also exists for real opens as itself. */
		if (pf_sys_exists(n->path))
			return PF_PASS;
		if (acc != O_RDONLY)
			return pf_fail(EISDIR);
		/* There is no descriptor for a directory that exists nowhere. */
		return pf_fail(EACCES);
	case PF_LINK:
		/* Only reached with O_NOFOLLOW: the last component is the link. */
		return pf_fail(ELOOP);
	default:
		/* Device nodes exist for stat and access only. */
		return PF_PASS;
	}
}

static int pf_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, !(flags & O_NOFOLLOW));

	if (n) {
		int fd = pf_open_fake(n, flags);

		if (fd != PF_PASS)
			return fd;
	}
	return (int)pf_sys(SYS_openat, dirfd, (long)path, flags, mode, 0);
}

static int pf_needs_mode(int flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

#define PF_MODE_ARG(flags, mode) do {			\
		if (pf_needs_mode(flags)) {			\
			va_list ap;				\
			va_start(ap, flags);			\
			mode = (mode_t)va_arg(ap, int);		\
			va_end(ap);				\
		}						\
	} while (0)

PF_EXPORT int open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	PF_MODE_ARG(flags, mode);
	return pf_openat(AT_FDCWD, path, flags, mode);
}

PF_EXPORT int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	PF_MODE_ARG(flags, mode);
	return pf_openat(AT_FDCWD, path, flags, mode);
}

PF_EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	PF_MODE_ARG(flags, mode);
	return pf_openat(dirfd, path, flags, mode);
}

PF_EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	PF_MODE_ARG(flags, mode);
	return pf_openat(dirfd, path, flags, mode);
}

/*
 * The fortified entry points exist to abort on O_CREAT without a mode; that
 * check is libc's to make (it prints its own message), so such calls go there.
 */
PF_EXPORT int __open_2(const char *path, int flags)
{
	if (pf_needs_mode(flags)) {
		if (pf_real.open_2)
			return pf_real.open_2(path, flags);
		abort();
	}
	return pf_openat(AT_FDCWD, path, flags, 0);
}

PF_EXPORT int __open64_2(const char *path, int flags)
{
	if (pf_needs_mode(flags)) {
		if (pf_real.open64_2)
			return pf_real.open64_2(path, flags);
		abort();
	}
	return pf_openat(AT_FDCWD, path, flags, 0);
}

PF_EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	if (pf_needs_mode(flags)) {
		if (pf_real.openat_2)
			return pf_real.openat_2(dirfd, path, flags);
		abort();
	}
	return pf_openat(dirfd, path, flags, 0);
}

PF_EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	if (pf_needs_mode(flags)) {
		if (pf_real.openat64_2)
			return pf_real.openat64_2(dirfd, path, flags);
		abort();
	}
	return pf_openat(dirfd, path, flags, 0);
}

/* fopen's mode string as open flags; -1 when it is not one. */
static int pf_fopen_flags(const char *mode)
{
	int flags;

	switch (mode[0]) {
	case 'r':
		flags = O_RDONLY;
		break;
	case 'w':
		flags = O_WRONLY | O_CREAT | O_TRUNC;
		break;
	case 'a':
		flags = O_WRONLY | O_CREAT | O_APPEND;
		break;
	default:
		return -1;
	}
	for (mode++; *mode && *mode != ','; mode++) {
		if (*mode == '+')
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		else if (*mode == 'e')
			flags |= O_CLOEXEC;
		else if (*mode == 'x')
			flags |= O_EXCL;
	}
	return flags;
}

/*
 * NULL with *pass set when the path is not fake.  libc's fopen opens its file
 * with an internal call nobody can interpose, so fake files are opened here
 * and wrapped with fdopen (which opens nothing).
 */
static FILE *pf_fopen(const char *path, const char *mode, int *pass)
{
	const struct pf_node *n;
	FILE *f;
	int flags, fd, saved;

	*pass = 1;
	if (!mode)
		return NULL;
	n = pf_lookup_at(AT_FDCWD, path, 1);
	if (!n)
		return NULL;
	flags = pf_fopen_flags(mode);
	if (flags < 0)
		return NULL;	/* libc reports the bad mode */
	fd = pf_open_fake(n, flags);
	if (fd == PF_PASS)
		return NULL;
	*pass = 0;
	if (fd < 0)
		return NULL;
	f = fdopen(fd, mode);
	if (!f) {
		saved = errno;
		pf_sys(SYS_close, fd, 0, 0, 0, 0);
		errno = saved;
	}
	return f;
}

PF_EXPORT FILE *fopen(const char *path, const char *mode)
{
	int pass;
	FILE *f = pf_fopen(path, mode, &pass);

	if (!pass)
		return f;
	return pf_real.fopen ? pf_real.fopen(path, mode) : _IO_fopen(path, mode);
}

PF_EXPORT FILE *fopen64(const char *path, const char *mode)
{
	int pass;
	FILE *f = pf_fopen(path, mode, &pass);

	if (!pass)
		return f;
	return pf_real.fopen64 ? pf_real.fopen64(path, mode) : _IO_fopen(path, mode);
}
