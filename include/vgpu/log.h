/*
 * Logging shared by the guest library, the daemon and its workers.
 *
 * VGPU_LOG selects the level: error, warn (default), info, debug.  Lines go
 * to stderr with a component prefix.  vg_log never allocates on the heap and
 * never aborts, so it is safe inside a host program's signal-sensitive paths.
 */
#ifndef VGPU_LOG_H
#define VGPU_LOG_H

enum vg_log_level {
	VG_LOG_ERROR = 0,
	VG_LOG_WARN = 1,
	VG_LOG_INFO = 2,
	VG_LOG_DEBUG = 3,
};

/* The prefix printed before every line ("vgpu", "vgpud", "vgpu-worker"). */
void vg_log_set_component(const char *name);
int vg_log_enabled(enum vg_log_level level);
void vg_log(enum vg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define VG_ERR(...)   vg_log(VG_LOG_ERROR, __VA_ARGS__)
#define VG_WARN(...)  vg_log(VG_LOG_WARN, __VA_ARGS__)
#define VG_INFO(...)  vg_log(VG_LOG_INFO, __VA_ARGS__)
#define VG_DEBUG(...) vg_log(VG_LOG_DEBUG, __VA_ARGS__)

#endif
