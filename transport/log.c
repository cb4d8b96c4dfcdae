/* Logging: one line per call, written with a single write(2). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vgpu/log.h"

static const char *log_component = "vgpu";
static int log_level = -1;

void vg_log_set_component(const char *name)
{
	log_component = name;
}

static int log_level_from_env(void)
{
	const char *s = getenv("VGPU_LOG");

	if (!s || !*s)
		return VG_LOG_WARN;
	if (!strcmp(s, "error"))
		return VG_LOG_ERROR;
	if (!strcmp(s, "warn"))
		return VG_LOG_WARN;
	if (!strcmp(s, "info"))
		return VG_LOG_INFO;
	if (!strcmp(s, "debug"))
		return VG_LOG_DEBUG;
	return VG_LOG_WARN;
}

int vg_log_enabled(enum vg_log_level level)
{
	/* A benign race: every thread computes the same value. */
	if (log_level < 0)
		log_level = log_level_from_env();
	return (int)level <= log_level;
}

void vg_log(enum vg_log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char line[1024];
	va_list ap;
	int n, m;

	if (!vg_log_enabled(level))
		return;
	if (level == VG_LOG_DEBUG) {
		/* Debug lines carry the monotonic clock, to line up guest and host logs. */
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		n = snprintf(line, sizeof(line), "%s[%d] %ld.%06ld %s: ", log_component, (int)getpid(),
			     (long)ts.tv_sec, ts.tv_nsec / 1000, names[level]);
	} else {
		n = snprintf(line, sizeof(line), "%s[%d] %s: ", log_component, (int)getpid(), names[level]);
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	if (write(2, line, (size_t)n) < 0)
		return;
}
