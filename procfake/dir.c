/*
 * Directory streams.  opendir on a fake directory returns a procfake stream
 * instead of libc's DIR: it lists the real directory when there is one, then
 * the fake children the real listing did not have.  Every libc function that
 * takes a DIR * is interposed, and each checks the registry of procfake
 * streams first, so a procfake stream never reaches libc and a libc stream is
 * never touched.  libc's scandir reads its directory with internal calls, so
 * on fake directories it is reimplemented here over the streams.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pf.h"

struct pf_dir {
	const struct pf_node *node;
	void *real;		/* libc's stream of the real directory, or NULL */
	unsigned dots;		/* "." and ".." given (fake-only directories) */
	unsigned next;		/* next fake child */
	unsigned long long seen;/* fake children the real listing had */
	long pos;
	struct dirent de;
	struct dirent64 de64;
};

static struct pf_dir *pf_dirs[PF_DIR_MAX];

static struct pf_dir *pf_dir_of(const void *d)
{
	unsigned i;

	if (!d || !__atomic_load_n(&pf_active, __ATOMIC_ACQUIRE))
		return NULL;
	for (i = 0; i < PF_DIR_MAX; i++)
		if (__atomic_load_n(&pf_dirs[i], __ATOMIC_ACQUIRE) == d)
			return (struct pf_dir *)d;
	return NULL;
}

static int pf_dir_register(struct pf_dir *pd)
{
	unsigned i;

	for (i = 0; i < PF_DIR_MAX; i++) {
		struct pf_dir *expected = NULL;

		if (__atomic_compare_exchange_n(&pf_dirs[i], &expected, pd, 0,
						__ATOMIC_RELEASE, __ATOMIC_RELAXED))
			return 0;
	}
	return -EMFILE;
}

static void pf_dir_unregister(struct pf_dir *pd)
{
	unsigned i;

	for (i = 0; i < PF_DIR_MAX; i++)
		if (__atomic_load_n(&pf_dirs[i], __ATOMIC_RELAXED) == pd)
			__atomic_store_n(&pf_dirs[i], NULL, __ATOMIC_RELEASE);
}

static unsigned char pf_dtype(const struct pf_node *n)
{
	switch (n->type) {
	case PF_DIR:
		return DT_DIR;
	case PF_LINK:
		return DT_LNK;
	case PF_CHR:
		return DT_CHR;
	default:
		return DT_REG;
	}
}

/* Which fake child has this name; -1 when none. */
static int pf_dir_child_index(const struct pf_dir *pd, const char *name)
{
	const struct pf_node *c;
	unsigned i;

	for (i = 0; (c = pf_tree_child(&pf_tree, pd->node, i)) != NULL && i < 64; i++)
		if (strcmp(pf_node_name(c), name) == 0)
			return (int)i;
	return -1;
}

/*
 * The next entry as (ino, type, name); 0 at the end.  Real entries come
 * first, untouched; then the fake children the real directory lacks.
 */
static int pf_dir_next(struct pf_dir *pd, unsigned long *ino, unsigned char *type,
		       const char **name)
{
	const struct pf_node *c;

	if (pd->real) {
		struct dirent64 *r = pf_real.readdir64(pd->real);

		if (r) {
			int i = pf_dir_child_index(pd, r->d_name);

			if (i >= 0)
				pd->seen |= 1ull << i;
			*ino = r->d_ino;
			*type = r->d_type;
			*name = r->d_name;
			pd->pos++;
			return 1;
		}
	} else if (pd->dots < 2) {
		*ino = pd->node->ino;
		*type = DT_DIR;
		*name = pd->dots ? ".." : ".";
		pd->dots++;
		pd->pos++;
		return 1;
	}
	while ((c = pf_tree_child(&pf_tree, pd->node, pd->next)) != NULL) {
		unsigned i = pd->next++;

		if (i < 64 && (pd->seen & (1ull << i)))
			continue;
		*ino = c->ino;
		*type = pf_dtype(c);
		*name = pf_node_name(c);
		pd->pos++;
		return 1;
	}
	return 0;
}

static struct dirent *pf_dir_read(struct pf_dir *pd)
{
	unsigned long ino;
	unsigned char type;
	const char *name;
	size_t len;

	if (!pf_dir_next(pd, &ino, &type, &name))
		return NULL;	/* the end: errno untouched, as libc does */
	len = strlen(name);
	if (len >= sizeof(pd->de.d_name))
		len = sizeof(pd->de.d_name) - 1;
	memmove(pd->de.d_name, name, len);
	pd->de.d_name[len] = '\0';
	pd->de.d_ino = ino;
	pd->de.d_off = pd->pos;
	pd->de.d_reclen = sizeof(pd->de);
	pd->de.d_type = type;
	return &pd->de;
}

static struct dirent64 *pf_dir_read64(struct pf_dir *pd)
{
	struct dirent *d = pf_dir_read(pd);

	if (!d)
		return NULL;
	memcpy(pd->de64.d_name, d->d_name, strlen(d->d_name) + 1);
	pd->de64.d_ino = d->d_ino;
	pd->de64.d_off = d->d_off;
	pd->de64.d_reclen = sizeof(pd->de64);
	pd->de64.d_type = d->d_type;
	return &pd->de64;
}

static void pf_dir_close(struct pf_dir *pd)
{
	pf_dir_unregister(pd);
	if (pd->real)
		pf_real.closedir(pd->real);
	free(pd);
}

static void pf_dir_rewind(struct pf_dir *pd)
{
	if (pd->real)
		pf_real.rewinddir(pd->real);
	pd->dots = 0;
	pd->next = 0;
	pd->seen = 0;
	pd->pos = 0;
}

/* NULL with *pass set when the path is not a fake directory. */
static void *pf_opendir_at(int dirfd, const char *path, int *pass)
{
	const struct pf_node *n = pf_lookup_at(dirfd, path, 1);
	struct pf_dir *pd;
	int err;

	*pass = 1;
	if (!n || !pf_real.readdir64)
		return NULL;
	*pass = 0;
	if (n->type != PF_DIR) {
		errno = n->type == PF_CHR || n->type == PF_FILE ? ENOTDIR : ENOENT;
		return NULL;
	}
	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;
	pd->node = n;
	if (pf_sys_exists(n->path)) {
		pd->real = pf_real.opendir(n->path);
		if (!pd->real)
			goto err;
	}
	if (pf_dir_register(pd)) {
		errno = EMFILE;
		goto err;
	}
	return pd;
err:
	err = errno;
	if (pd->real)
		pf_real.closedir(pd->real);
	free(pd);
	errno = err;
	return NULL;
}

PF_EXPORT DIR *opendir(const char *path)
{
	int pass;
	void *d = pf_opendir_at(AT_FDCWD, path, &pass);

	if (!pass)
		return d;
	if (pf_real.opendir)
		return pf_real.opendir(path);
	errno = ENOSYS;
	return NULL;
}

/* libc's function, or (before the constructor resolved it) a plain failure. */
#define PF_REAL_OR(fn, args, fail) do {			\
		if (pf_real.fn)				\
			return pf_real.fn args;		\
		errno = ENOSYS;				\
		return fail;				\
	} while (0)

PF_EXPORT struct dirent *readdir(DIR *d)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd)
		return pf_dir_read(pd);
	PF_REAL_OR(readdir, (d), NULL);
}

PF_EXPORT struct dirent64 *readdir64(DIR *d)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd)
		return pf_dir_read64(pd);
	PF_REAL_OR(readdir64, (d), NULL);
}

PF_EXPORT int readdir_r(DIR *d, struct dirent *entry, struct dirent **result)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd) {
		struct dirent *e = pf_dir_read(pd);

		if (e)
			memcpy(entry, e, sizeof(*entry));
		*result = e ? entry : NULL;
		return 0;
	}
	PF_REAL_OR(readdir_r, (d, entry, result), ENOSYS);
}

PF_EXPORT int readdir64_r(DIR *d, struct dirent64 *entry, struct dirent64 **result)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd) {
		struct dirent64 *e = pf_dir_read64(pd);

		if (e)
			memcpy(entry, e, sizeof(*entry));
		*result = e ? entry : NULL;
		return 0;
	}
	PF_REAL_OR(readdir64_r, (d, entry, result), ENOSYS);
}

PF_EXPORT int closedir(DIR *d)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd) {
		pf_dir_close(pd);
		return 0;
	}
	PF_REAL_OR(closedir, (d), -1);
}

PF_EXPORT void rewinddir(DIR *d)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd)
		pf_dir_rewind(pd);
	else if (pf_real.rewinddir)
		pf_real.rewinddir(d);
}

PF_EXPORT int dirfd(DIR *d)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd) {
		if (pd->real)
			return pf_real.dirfd(pd->real);
		errno = ENOTSUP;	/* a directory that exists nowhere has no descriptor */
		return -1;
	}
	PF_REAL_OR(dirfd, (d), -1);
}

PF_EXPORT long telldir(DIR *d)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd)
		return pd->pos;
	PF_REAL_OR(telldir, (d), -1);
}

/* Positions are entry counts: rewind, then read that many entries again. */
PF_EXPORT void seekdir(DIR *d, long pos)
{
	struct pf_dir *pd = pf_dir_of(d);

	if (pd) {
		pf_dir_rewind(pd);
		while (pd->pos < pos && pf_dir_read(pd))
			;
	} else if (pf_real.seekdir) {
		pf_real.seekdir(d, pos);
	}
}

/* scandir's comparator through qsort_r's extra argument. */
static int pf_scandir_cmp(const void *a, const void *b, void *arg)
{
	int (*cmp)(const struct dirent **, const struct dirent **) =
		(int (*)(const struct dirent **, const struct dirent **))arg;

	return cmp((const struct dirent **)a, (const struct dirent **)b);
}

static int pf_scandir64_cmp(const void *a, const void *b, void *arg)
{
	int (*cmp)(const struct dirent64 **, const struct dirent64 **) =
		(int (*)(const struct dirent64 **, const struct dirent64 **))arg;

	return cmp((const struct dirent64 **)a, (const struct dirent64 **)b);
}

/*
 * Shared by both widths: entries are copied whole (sizeof the struct) since
 * callers may read any field; on failure everything is freed and errno kept.
 */
#define PF_SCANDIR_BODY(T, READ, CMPFN)						\
	struct pf_dir *pd = d;							\
	T **list = NULL, *e;							\
	size_t n = 0, cap = 0;							\
	int err;								\
										\
	while ((e = READ(pd)) != NULL) {					\
		T *copy;							\
										\
		if (filter && !filter(e))					\
			continue;						\
		if (n == cap) {							\
			T **grown = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list)); \
										\
			if (!grown)						\
				goto err;					\
			list = grown;						\
			cap = cap ? cap * 2 : 16;				\
		}								\
		copy = malloc(sizeof(*copy));					\
		if (!copy)							\
			goto err;						\
		memcpy(copy, e, sizeof(*copy));					\
		list[n++] = copy;						\
	}									\
	pf_dir_close(pd);							\
	if (cmp && n > 1)							\
		qsort_r(list, n, sizeof(*list), CMPFN, (void *)cmp);		\
	*out = list;								\
	return (int)n;								\
err:										\
	err = errno;								\
	while (n > 0)								\
		free(list[--n]);						\
	free(list);								\
	pf_dir_close(pd);							\
	errno = err;								\
	return -1

static int pf_scandir(void *d, struct dirent ***out, int (*filter)(const struct dirent *),
		      int (*cmp)(const struct dirent **, const struct dirent **))
{
	PF_SCANDIR_BODY(struct dirent, pf_dir_read, pf_scandir_cmp);
}

static int pf_scandir64(void *d, struct dirent64 ***out, int (*filter)(const struct dirent64 *),
			int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	PF_SCANDIR_BODY(struct dirent64, pf_dir_read64, pf_scandir64_cmp);
}

PF_EXPORT int scandir(const char *path, struct dirent ***out,
		      int (*filter)(const struct dirent *),
		      int (*cmp)(const struct dirent **, const struct dirent **))
{
	int pass;
	void *d = pf_opendir_at(AT_FDCWD, path, &pass);

	if (!pass)
		return d ? pf_scandir(d, out, filter, cmp) : -1;
	PF_REAL_OR(scandir, (path, out, filter, cmp), -1);
}

PF_EXPORT int scandir64(const char *path, struct dirent64 ***out,
			int (*filter)(const struct dirent64 *),
			int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	int pass;
	void *d = pf_opendir_at(AT_FDCWD, path, &pass);

	if (!pass)
		return d ? pf_scandir64(d, out, filter, cmp) : -1;
	PF_REAL_OR(scandir64, (path, out, filter, cmp), -1);
}

PF_EXPORT int scandirat(int dirfd, const char *path, struct dirent ***out,
			int (*filter)(const struct dirent *),
			int (*cmp)(const struct dirent **, const struct dirent **))
{
	int pass;
	void *d = pf_opendir_at(dirfd, path, &pass);

	if (!pass)
		return d ? pf_scandir(d, out, filter, cmp) : -1;
	PF_REAL_OR(scandirat, (dirfd, path, out, filter, cmp), -1);
}

PF_EXPORT int scandirat64(int dirfd, const char *path, struct dirent64 ***out,
			  int (*filter)(const struct dirent64 *),
			  int (*cmp)(const struct dirent64 **, const struct dirent64 **))
{
	int pass;
	void *d = pf_opendir_at(dirfd, path, &pass);

	if (!pass)
		return d ? pf_scandir64(d, out, filter, cmp) : -1;
	PF_REAL_OR(scandirat64, (dirfd, path, out, filter, cmp), -1);
}
