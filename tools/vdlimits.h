/*
 * Per-client limits (prefix vd_limits_): read by vgpud from its --config
 * file, handed to every worker on its command line (--limits), enforced by
 * the worker (tools/wk_limits.c).
 *
 * The file: one `key = value` a line; `#` starts a comment; blank lines are
 * ignored.  Sizes take a K, M, G or T suffix (powers of 1024).  An unknown
 * key, a key given twice, or a bad value is an error naming the line.
 *
 *   max_device_memory   bytes of device memory one client may hold
 *   max_streams         streams one client may have at once
 *   max_threads         guest threads (channels) one client may have at once
 *   max_message         bytes of one message, header included
 *                       (VD_LIMITS_MESSAGE_MIN .. VG_MSG_MAX)
 *   max_clients         clients (workers) the daemon serves at once
 *
 * A key not given means no limit beyond the built-in ones.
 */
#ifndef VGPU_LIMITS_H
#define VGPU_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#define VD_LIMITS_NONE         UINT64_MAX
/* Pageable copies travel in 8 MiB pieces: a smaller maximum breaks them. */
#define VD_LIMITS_MESSAGE_MIN  (16u << 20)
/* A config file larger than this is refused. */
#define VD_LIMITS_FILE_MAX     (64u << 10)

struct vd_limits {
	uint64_t max_device_memory;
	uint64_t max_streams;
	uint64_t max_threads;
	uint64_t max_message;
	uint64_t max_clients;
};

/* Everything unlimited, max_message = VG_MSG_MAX, max_clients = clients_max. */
void vd_limits_init(struct vd_limits *l, uint64_t clients_max);
/*
 * Reads the file; 0, or a negative errno with a message ("PATH:LINE: why")
 * in err.
 */
int vd_limits_load(struct vd_limits *l, const char *path, char *err, size_t errlen);
/* The worker's form, "key=value,key=value" (every key; 0 ok, -EINVAL). */
int vd_limits_format(const struct vd_limits *l, char *buf, size_t len);
int vd_limits_parse_arg(struct vd_limits *l, const char *arg, char *err, size_t errlen);

#endif
