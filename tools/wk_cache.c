/*
 * The worker: the module image cache the daemon keeps for all its
 * clients (include/vgpu/ops.h, VG_IMG_*).
 *
 * It is a directory of files named by the SHA-256 of their bytes, in hex,
 * shared by every worker of a daemon (vgpud --cache-dir).  A worker names
 * a file by the hash it computed itself from bytes a client sent, so no
 * client can place bytes under another image's name; files appear whole
 * (written aside, then renamed), a hit refreshes the file's time, and when
 * the directory outgrows its budget the files used longest ago go.  The
 * directory must belong to the worker's user and be closed to others,
 * else the cache stays off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tp.h"
#include "wk_cache.h"

#define WK_CACHE_NAME_LEN (2 * TP_SHA256_LEN)
#define WK_CACHE_FILES_MAX 100000	/* entries looked at when evicting */

static struct {
	int dirfd;			/* -1: no cache */
	uint64_t max_bytes;
	unsigned int seq;		/* names of files being written */
} cache = { .dirfd = -1 };

struct wk_cache_stats wk_cache_stats;

static void hex_name(const uint8_t hash[TP_SHA256_LEN], char out[WK_CACHE_NAME_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < TP_SHA256_LEN; i++) {
		out[2 * i] = digits[hash[i] >> 4];
		out[2 * i + 1] = digits[hash[i] & 15];
	}
	out[WK_CACHE_NAME_LEN] = '\0';
}

int wk_cache_open(const char *dir, uint64_t max_bytes)
{
	struct stat st;
	int fd;

	if (!dir || !*dir || !strcmp(dir, "none"))
		return 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		VG_WARN("module cache %s: %s; the cache is off", dir, strerror(errno));
		return -errno;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		VG_WARN("module cache %s: %s; the cache is off", dir, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 077)) {
		VG_WARN("module cache %s: must be a directory of user %d closed to others (mode 0700); the cache is off",
			dir, (int)geteuid());
		close(fd);
		return -EPERM;
	}
	cache.dirfd = fd;
	cache.max_bytes = max_bytes;
	return 1;
}

int wk_cache_enabled(void)
{
	return cache.dirfd >= 0;
}

/* Reads the whole file into a 64-byte aligned buffer with a zero tail. */
static void *read_whole(int fd, uint32_t len)
{
	size_t cap = ((size_t)len + 64) & ~(size_t)63;
	char *buf = aligned_alloc(64, cap);
	uint32_t off = 0;
	ssize_t n;

	if (!buf)
		return NULL;
	memset(buf + len, 0, cap - len);
	while (off < len) {
		n = pread(fd, buf + off, len - off, off);
		if (n <= 0) {
			free(buf);
			return NULL;
		}
		off += (uint32_t)n;
	}
	return buf;
}

void *wk_cache_get(const uint8_t hash[TP_SHA256_LEN], uint32_t len, int *mapped)
{
	char name[WK_CACHE_NAME_LEN + 1];
	struct stat st;
	void *p = NULL;
	int fd;

	*mapped = 0;
	if (cache.dirfd < 0)
		return NULL;
	hex_name(hash, name);
	fd = openat(cache.dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		goto miss;
	/* Not what the client described: the client sends the bytes. */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != len)
		goto miss;
	/*
	 * Mapped, so the clients of one daemon share the page cache.  A file
	 * that ends on a page boundary would have no zero bytes after it in the
	 * mapping (a driver may read past a PTX's NUL): that one is read.
	 */
	if (len % (uint32_t)sysconf(_SC_PAGESIZE)) {
		p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			p = NULL;
		else
			*mapped = 1;
	} else {
		p = read_whole(fd, len);
	}
	if (!p)
		goto miss;
	futimens(fd, NULL);
	close(fd);
	__atomic_add_fetch(&wk_cache_stats.hits, 1, __ATOMIC_RELAXED);
	return p;
miss:
	if (fd >= 0)
		close(fd);
	__atomic_add_fetch(&wk_cache_stats.misses, 1, __ATOMIC_RELAXED);
	return NULL;
}

struct wk_cache_entry {
	char name[WK_CACHE_NAME_LEN + 1];
	struct timespec mtime;
	uint64_t size;
};

static int older_first(const void *a, const void *b)
{
	const struct wk_cache_entry *x = a, *y = b;

	if (x->mtime.tv_sec != y->mtime.tv_sec)
		return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
	if (x->mtime.tv_nsec != y->mtime.tv_nsec)
		return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
	return 0;
}

static int is_cache_name(const char *s)
{
	size_t i;

	for (i = 0; i < WK_CACHE_NAME_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[WK_CACHE_NAME_LEN] == '\0';
}

/* Removes the files used longest ago until the directory fits its budget. */
static void evict(const char *keep)
{
	struct wk_cache_entry *e = NULL;
	struct dirent *d;
	struct stat st;
	uint64_t total = 0;
	size_t n = 0, cap = 0, i;
	DIR *dir;
	int fd = dup(cache.dirfd);

	if (fd < 0)
		return;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return;
	}
	rewinddir(dir);
	while ((d = readdir(dir)) && n < WK_CACHE_FILES_MAX) {
		if (!is_cache_name(d->d_name) || fstatat(cache.dirfd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			struct wk_cache_entry *g = realloc(e, (cap ? cap * 2 : 64) * sizeof(*e));

			if (!g)
				break;
			e = g;
			cap = cap ? cap * 2 : 64;
		}
		memcpy(e[n].name, d->d_name, sizeof(e[n].name));
		e[n].mtime = st.st_mtim;
		e[n].size = (uint64_t)st.st_size;
		total += e[n].size;
		n++;
	}
	closedir(dir);
	if (total > cache.max_bytes && n) {
		qsort(e, n, sizeof(*e), older_first);
		for (i = 0; i < n && total > cache.max_bytes; i++) {
			if (!strcmp(e[i].name, keep))
				continue;
			if (unlinkat(cache.dirfd, e[i].name, 0) == 0) {
				total -= e[i].size;
				wk_cache_stats.evicted++;
			}
		}
	}
	free(e);
}

void wk_cache_put(const void *p, uint32_t len)
{
	char name[WK_CACHE_NAME_LEN + 1], tmp[64];
	uint8_t hash[TP_SHA256_LEN];
	struct stat st;
	uint32_t off = 0;
	ssize_t n;
	int fd;

	if (cache.dirfd < 0 || len < VG_IMG_CACHE_MIN || len > cache.max_bytes)
		return;
	tp_sha256(p, len, hash);
	hex_name(hash, name);
	/* Present and whole: used now.  Damaged (another size): replaced. */
	if (fstatat(cache.dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size == len) {
		utimensat(cache.dirfd, name, NULL, AT_SYMLINK_NOFOLLOW);
		return;
	}
	snprintf(tmp, sizeof(tmp), ".tmp-%d-%u", (int)getpid(), __atomic_add_fetch(&cache.seq, 1, __ATOMIC_RELAXED));
	fd = openat(cache.dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		VG_WARN("module cache: cannot write %s: %s", tmp, strerror(errno));
		return;
	}
	while (off < len) {
		n = write(fd, (const char *)p + off, len - off);
		if (n <= 0) {
			VG_WARN("module cache: writing %s: %s", tmp, n < 0 ? strerror(errno) : "short write");
			close(fd);
			unlinkat(cache.dirfd, tmp, 0);
			return;
		}
		off += (uint32_t)n;
	}
	if (close(fd) < 0 || renameat(cache.dirfd, tmp, cache.dirfd, name) < 0) {
		unlinkat(cache.dirfd, tmp, 0);
		return;
	}
	__atomic_add_fetch(&wk_cache_stats.stored, 1, __ATOMIC_RELAXED);
	evict(name);
}
