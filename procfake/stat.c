/*
 * stat(2) family (the current names, the *64 names, glibc's old __xstat
 * family and statx), access(2) family and readlink(2).  Pass-through is the
 * system call each of them is; fake nodes are described from the tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "pf.h"

/* glibc's _STAT_VER values the old __xstat entry points accept. */
#if defined(__x86_64__)
#define PF_STAT_VER_OK(v) ((v) == 0 || (v) == 1)
#else
#define PF_STAT_VER_OK(v) ((v) == 0)
#endif

/* st_dev of fake nodes: an anonymous device number, like proc's and sysfs's. */
#define PF_DEV_MAJOR 0
#define PF_DEV_MINOR 0x2f

static unsigned pf_type_bits(const struct pf_node *n)
{
	switch (n->type) {
	case PF_DIR:
		return S_IFDIR;
	case PF_LINK:
		return S_IFLNK;
	case PF_CHR:
		return S_IFCHR;
	default:
		return S_IFREG;
	}
}

/*
 * A directory that exists for real (/dev, /sys/module…) is described by the
 * kernel; only nodes that exist nowhere else are described here.
 */
static int pf_describes(const struct pf_node *n)
{
	return n && !(n->type == PF_DIR && pf_sys_exists(n->path));
}

/* The same fields under both struct names (identical on 64-bit targets). */
#define PF_FILL_STAT(st, n) do {						\
		memset((st), 0, sizeof(*(st)));					\
		(st)->st_dev = makedev(PF_DEV_MAJOR, PF_DEV_MINOR);		\
		(st)->st_ino = (n)->ino;					\
		(st)->st_mode = pf_type_bits(n) | (n)->mode;			\
		(st)->st_nlink = (n)->type == PF_DIR ? 2 : 1;			\
		(st)->st_rdev = (n)->type == PF_CHR ?				\
			makedev((n)->major, (n)->minor) : 0;			\
		(st)->st_size = (n)->size;					\
		(st)->st_blksize = 4096;					\
		(st)->st_atim.tv_sec = pf_mtime;				\
		(st)->st_mtim.tv_sec = pf_mtime;				\
		(st)->st_ctim.tv_sec = pf_mtime;				\
	} while (0)

static int pf_stat_node(const struct pf_node *n, struct stat *st)
{
	PF_FILL_STAT(st, n);
	return 0;
}

static int pf_stat64_node(const struct pf_node *n, struct stat64 *st)
{
	PF_FILL_STAT(st, n);
	return 0;
}

static int pf_fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));

	if (pf_describes(n))
		return pf_stat_node(n, st);
	return (int)pf_sys(PF_SYS_FSTATAT, dirfd, (long)path, (long)st, flags, 0);
}

static int pf_fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));

	if (pf_describes(n))
		return pf_stat64_node(n, st);
	return (int)pf_sys(PF_SYS_FSTATAT, dirfd, (long)path, (long)st, flags, 0);
}

PF_EXPORT int stat(const char *path, struct stat *st)
{
	return pf_fstatat(AT_FDCWD, path, st, 0);
}

PF_EXPORT int lstat(const char *path, struct stat *st)
{
	return pf_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

PF_EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return pf_fstatat(dirfd, path, st, flags);
}

PF_EXPORT int stat64(const char *path, struct stat64 *st)
{
	return pf_fstatat64(AT_FDCWD, path, st, 0);
}

PF_EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return pf_fstatat64(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

PF_EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return pf_fstatat64(dirfd, path, st, flags);
}

/* Programs built against glibc before 2.33 call these. */
PF_EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	if (!PF_STAT_VER_OK(ver)) {
		errno = EINVAL;
		return -1;
	}
	return pf_fstatat(AT_FDCWD, path, st, 0);
}

PF_EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	if (!PF_STAT_VER_OK(ver)) {
		errno = EINVAL;
		return -1;
	}
	return pf_fstatat(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

PF_EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	if (!PF_STAT_VER_OK(ver)) {
		errno = EINVAL;
		return -1;
	}
	return pf_fstatat(dirfd, path, st, flags);
}

PF_EXPORT int __xstat64(int ver, const char *path, struct stat64 *st)
{
	if (!PF_STAT_VER_OK(ver)) {
		errno = EINVAL;
		return -1;
	}
	return pf_fstatat64(AT_FDCWD, path, st, 0);
}

PF_EXPORT int __lxstat64(int ver, const char *path, struct stat64 *st)
{
	if (!PF_STAT_VER_OK(ver)) {
		errno = EINVAL;
		return -1;
	}
	return pf_fstatat64(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

PF_EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags)
{
	if (!PF_STAT_VER_OK(ver)) {
		errno = EINVAL;
		return -1;
	}
	return pf_fstatat64(dirfd, path, st, flags);
}

PF_EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));

	if (!pf_describes(n))
		return (int)pf_sys(SYS_statx, dirfd, (long)path, flags, mask, (long)stx);
	memset(stx, 0, sizeof(*stx));
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_blksize = 4096;
	stx->stx_nlink = n->type == PF_DIR ? 2 : 1;
	stx->stx_mode = (unsigned short)(pf_type_bits(n) | n->mode);
	stx->stx_ino = n->ino;
	stx->stx_size = (unsigned long long)n->size;
	stx->stx_rdev_major = n->type == PF_CHR ? n->major : 0;
	stx->stx_rdev_minor = n->type == PF_CHR ? n->minor : 0;
	stx->stx_dev_major = PF_DEV_MAJOR;
	stx->stx_dev_minor = PF_DEV_MINOR;
	stx->stx_atime.tv_sec = pf_mtime;
	stx->stx_mtime.tv_sec = pf_mtime;
	stx->stx_ctime.tv_sec = pf_mtime;
	return 0;
}

/* access(2) on a node: read-only files and directories, usable device nodes. */
static int pf_access_node(const struct pf_node *n, int mode)
{
	int deny = 0;

	if (mode & ~(R_OK | W_OK | X_OK)) {
		errno = EINVAL;
		return -1;
	}
	switch (n->type) {
	case PF_FILE:
		deny = mode & (W_OK | X_OK);
		break;
	case PF_DIR:
		deny = mode & W_OK;
		break;
	case PF_CHR:
		deny = mode & X_OK;
		break;
	default:
		break;
	}
	if (deny) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

PF_EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW));

	if (pf_describes(n))
		return pf_access_node(n, mode);
	if (flags == 0)
		return (int)pf_sys(SYS_faccessat, dirfd, (long)path, mode, 0, 0);
	/* With flags libc has logic of its own (AT_EACCESS before faccessat2). */
	if (pf_real.faccessat)
		return pf_real.faccessat(dirfd, path, mode, flags);
	return (int)pf_sys(SYS_faccessat2, dirfd, (long)path, mode, flags, 0);
}

PF_EXPORT int access(const char *path, int mode)
{
	const struct pf_node *n = pf_lookup_at(AT_FDCWD, path, 1);

	if (pf_describes(n))
		return pf_access_node(n, mode);
	return (int)pf_sys(SYS_faccessat, AT_FDCWD, (long)path, mode, 0, 0);
}

static int pf_euidaccess(const char *path, int mode)
{
	const struct pf_node *n = pf_lookup_at(AT_FDCWD, path, 1);

	if (pf_describes(n))
		return pf_access_node(n, mode);
	if (pf_real.euidaccess)
		return pf_real.euidaccess(path, mode);
	return (int)pf_sys(SYS_faccessat2, AT_FDCWD, (long)path, mode, AT_EACCESS, 0);
}

PF_EXPORT int euidaccess(const char *path, int mode)
{
	return pf_euidaccess(path, mode);
}

PF_EXPORT int eaccess(const char *path, int mode)
{
	return pf_euidaccess(path, mode);
}

static ssize_t pf_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, 0);

	if (pf_describes(n)) {
		size_t len;

		if (n->type != PF_LINK) {
			errno = EINVAL;
			return -1;
		}
		len = n->len < size ? n->len : size;
		memcpy(buf, n->data, len);
		return (ssize_t)len;
	}
	return pf_sys(SYS_readlinkat, dirfd, (long)path, (long)buf, (long)size, 0);
}

PF_EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
	return pf_readlinkat(AT_FDCWD, path, buf, size);
}

PF_EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
	return pf_readlinkat(dirfd, path, buf, size);
}

/*
 * Extended attributes: fake nodes have none (what proc and sysfs answer for
 * security labels), so ls -l and SELinux-aware programs do not stumble.
 */
static ssize_t pf_getxattr(const char *path, const char *name, void *value, size_t size,
			   int follow)
{
	const struct pf_node *n = pf_lookup_at(AT_FDCWD, path, follow);

	if (pf_describes(n)) {
		errno = ENODATA;
		return -1;
	}
	return pf_sys(follow ? SYS_getxattr : SYS_lgetxattr, (long)path, (long)name, (long)value,
		      (long)size, 0);
}

PF_EXPORT ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
	return pf_getxattr(path, name, value, size, 1);
}

PF_EXPORT ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
	return pf_getxattr(path, name, value, size, 0);
}

static ssize_t pf_listxattr(const char *path, char *list, size_t size, int follow)
{
	const struct pf_node *n = pf_lookup_at(AT_FDCWD, path, follow);

	if (pf_describes(n))
		return 0;
	return pf_sys(follow ? SYS_listxattr : SYS_llistxattr, (long)path, (long)list, (long)size,
		      0, 0);
}

PF_EXPORT ssize_t listxattr(const char *path, char *list, size_t size)
{
	return pf_listxattr(path, list, size, 1);
}

PF_EXPORT ssize_t llistxattr(const char *path, char *list, size_t size)
{
	return pf_listxattr(path, list, size, 0);
}
