/*
 * procfake: internal interfaces.
 *
 * The library has two halves.  The pure half (identity.c, tree.c,
 * whitelist.c) parses the identity file, builds the table of fake nodes and
 * decides the whitelist; it touches nothing outside its arguments, so the unit
 * tests link it directly.  The interposing half (init.c, open.c, stat.c,
 * dir.c) exports libc's names and is only linked into the preload object.
 *
 * Internal functions return 0 or a negative errno; interposers follow libc's
 * convention (-1 or NULL with errno) because that is the contract they copy.
 */
#ifndef PF_H
#define PF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>

#define PF_GPU_MAX	8
#define PF_NAME_MAX	96	/* cuDeviceGetName's buffer in common callers */
#define PF_UUID_LEN	40	/* "GPU-" + 8-4-4-4-12 */
#define PF_DRV_MAX	32
#define PF_VBIOS_MAX	32
#define PF_FILE_MAX	16384	/* identity and configuration files */
#define PF_COMM_MAX	16	/* TASK_COMM_LEN, NUL included */
#define PF_NAMES_MAX	32	/* extra names in procfake.conf */
#define PF_PATH_MAX	160	/* every fake path is shorter */
/*
 * Longest path (before "..", "." and "//" are folded) still examined; longer
 * ones pass through.  Bounded so interposers stay light on small stacks.
 */
#define PF_ABS_MAX	1024
#define PF_NODE_MAX	(16 + PF_GPU_MAX * 24)
#define PF_ARENA_MAX	(8192 + PF_GPU_MAX * 2048)
#define PF_DIR_MAX	64	/* fake directory streams open at once */

#define PF_NV_MAJOR	195	/* /dev/nvidia<N> and /dev/nvidiactl */
#define PF_CTL_MINOR	255
#define PF_UVM_MAJOR	510	/* dynamic in reality; any free major will do */

/* One GPU of the identity file.  The bus id may be moved by pf_tree_build. */
struct pf_gpu {
	char name[PF_NAME_MAX];
	char uuid[PF_UUID_LEN + 1];
	unsigned domain, bus, dev, fn;
	unsigned long long memory_total;
	unsigned pci_device_id;
	unsigned subsys_vendor_id;
	unsigned subsys_device_id;
	unsigned irq;
	char vbios[PF_VBIOS_MAX];
	unsigned seen;	/* PF_K_* bits of the keys given */
};

struct pf_identity {
	char driver_version[PF_DRV_MAX];
	unsigned cuda_version;
	unsigned seen;	/* PF_K_* bits of the global keys given */
	unsigned ngpus;
	struct pf_gpu gpu[PF_GPU_MAX];
};

/* Parses the identity file's text; 0, or -EINVAL when anything is wrong. */
int pf_identity_parse(const char *buf, size_t len, struct pf_identity *id);

/* Whitelist: the built-in names plus the configuration file's. */
struct pf_names {
	unsigned n;
	char name[PF_NAMES_MAX][PF_COMM_MAX];
};

/* Parses procfake.conf's text (one name a line, '#' comments); 0 / -EINVAL. */
int pf_names_parse(const char *buf, size_t len, struct pf_names *names);
/* comm as read from /proc/self/comm (newline included or not). */
int pf_names_match(const struct pf_names *names, const char *comm, size_t len);

enum pf_node_type {
	PF_DIR = 1,
	PF_FILE,
	PF_LINK,
	PF_CHR,
};

struct pf_node {
	char path[PF_PATH_MAX];	/* canonical, absolute */
	unsigned char type;
	unsigned short mode;	/* permission bits */
	const char *data;	/* file content or link text */
	unsigned len;
	const char *target;	/* PF_LINK: the absolute path it names */
	unsigned major, minor;	/* PF_CHR */
	unsigned long ino;
	off_t size;		/* what stat reports for a file */
};

struct pf_tree {
	unsigned n;
	struct pf_node node[PF_NODE_MAX];
	unsigned used;
	char arena[PF_ARENA_MAX];
};

/* Tells whether a real path exists; the tests substitute their own. */
typedef int (*pf_exists_fn)(const char *path);

/*
 * Builds every fake node from the identity.  A GPU whose PCI address names a
 * real device is moved to a free bus number first (id is updated).
 */
int pf_tree_build(struct pf_tree *t, struct pf_identity *id, pf_exists_fn exists);

/* Lexical canonical form of an absolute path: no "//", ".", ".." or trailing '/'. */
int pf_path_canon(const char *in, char *out, size_t size);

/*
 * Finds the node for an absolute path, following fake symbolic links in
 * every component but the last (and the last too when follow is set).
 * NULL when the path is not fake.
 */
const struct pf_node *pf_tree_lookup(const struct pf_tree *t, const char *path, int follow);

/* The idx-th fake child of a directory node, or NULL past the last. */
const struct pf_node *pf_tree_child(const struct pf_tree *t, const struct pf_node *dir,
				    unsigned idx);
/* The last component of a node's path. */
const char *pf_node_name(const struct pf_node *n);

/* ---- Preload half ---- */

#ifdef SYS_newfstatat
#define PF_SYS_FSTATAT SYS_newfstatat
#else
#define PF_SYS_FSTATAT SYS_fstatat64
#endif

/* Raw system calls (pass-through and the library's own I/O). */
long pf_sys(long nr, long a, long b, long c, long d, long e);
int pf_sys_read_file(const char *path, char *buf, size_t size, size_t *len);
int pf_sys_exists(const char *path);

/* Set once by the constructor; read by every interposer. */
extern int pf_active;
extern struct pf_tree pf_tree;
/* Time stamp of every fake node: the identity file's modification time. */
extern long long pf_mtime;

/*
 * Turns a (dirfd, path) pair into an absolute path when it can; -1 when the
 * path cannot be fake (so the caller passes the call through).
 */
int pf_path_abs(int dirfd, const char *path, char *out, size_t size);
/* The node a (dirfd, path) pair names, or NULL (pass through). */
const struct pf_node *pf_lookup_at(int dirfd, const char *path, int follow);

/* An fd reading a fake file's content; -1 with errno. */
int pf_file_open(const struct pf_node *n, int flags);

/* libc entry points resolved once in the constructor. */
struct dirent;
struct dirent64;
struct pf_real {
	void *(*opendir)(const char *);
	void *(*fdopendir)(int);
	struct dirent *(*readdir)(void *);
	struct dirent64 *(*readdir64)(void *);
	int (*readdir_r)(void *, struct dirent *, struct dirent **);
	int (*readdir64_r)(void *, struct dirent64 *, struct dirent64 **);
	int (*closedir)(void *);
	void (*rewinddir)(void *);
	int (*dirfd)(void *);
	long (*telldir)(void *);
	void (*seekdir)(void *, long);
	int (*scandir)(const char *, struct dirent ***, int (*)(const struct dirent *),
		       int (*)(const struct dirent **, const struct dirent **));
	int (*scandir64)(const char *, struct dirent64 ***, int (*)(const struct dirent64 *),
			 int (*)(const struct dirent64 **, const struct dirent64 **));
	int (*scandirat)(int, const char *, struct dirent ***, int (*)(const struct dirent *),
			 int (*)(const struct dirent **, const struct dirent **));
	int (*scandirat64)(int, const char *, struct dirent64 ***,
			   int (*)(const struct dirent64 *),
			   int (*)(const struct dirent64 **, const struct dirent64 **));
	void *(*fopen)(const char *, const char *);
	void *(*fopen64)(const char *, const char *);
	int (*faccessat)(int, const char *, int, int);
	int (*euidaccess)(const char *, int);
	int (*open_2)(const char *, int);
	int (*open64_2)(const char *, int);
	int (*openat_2)(int, const char *, int);
	int (*openat64_2)(int, const char *, int);
};
extern struct pf_real pf_real;

/* Interposed names glibc's headers no longer declare (or declare only when fortified). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);
struct stat;
struct stat64;
int __xstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __xstat64(int ver, const char *path, struct stat64 *st);
int __lxstat64(int ver, const char *path, struct stat64 *st);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *st, int flags);

#define PF_EXPORT __attribute__((visibility("default")))

#endif
