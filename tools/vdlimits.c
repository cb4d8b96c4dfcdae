/*
 * Per-client limits: the config file and the worker's argument (format in
 * vdlimits.h).  Shared by vgpud, which reads the file, and the worker, which
 * reads the argument; one parser serves both, so they cannot disagree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vdlimits.h"
#include "vgpu/wire.h"

enum unit { U_COUNT, U_BYTES };

static const struct key {
	const char *name;
	size_t off;
	enum unit unit;
	uint64_t min;
} keys[] = {
	{ "max_device_memory", offsetof(struct vd_limits, max_device_memory), U_BYTES, 0 },
	{ "max_streams", offsetof(struct vd_limits, max_streams), U_COUNT, 0 },
	{ "max_threads", offsetof(struct vd_limits, max_threads), U_COUNT, 1 },
	{ "max_message", offsetof(struct vd_limits, max_message), U_BYTES, VD_LIMITS_MESSAGE_MIN },
	{ "max_clients", offsetof(struct vd_limits, max_clients), U_COUNT, 1 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* Upper bounds: max_message by the wire, max_clients by the daemon. */
static uint64_t key_max(const struct key *k, uint64_t clients_max)
{
	if (!strcmp(k->name, "max_message"))
		return VG_MSG_MAX;
	if (!strcmp(k->name, "max_clients"))
		return clients_max;
	return VD_LIMITS_NONE - 1;
}

static uint64_t *field(struct vd_limits *l, const struct key *k)
{
	return (uint64_t *)((char *)l + k->off);
}

void vd_limits_init(struct vd_limits *l, uint64_t clients_max)
{
	l->max_device_memory = VD_LIMITS_NONE;
	l->max_streams = VD_LIMITS_NONE;
	l->max_threads = VD_LIMITS_NONE;
	l->max_message = VG_MSG_MAX;
	l->max_clients = clients_max;
}

static void say(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Decimal digits, then (sizes only) one of K M G T; 0 or -EINVAL/-ERANGE. */
static int value_parse(const char *s, enum unit unit, uint64_t *out)
{
	uint64_t v = 0, mul = 1;

	if (!strcmp(s, "unlimited")) {
		*out = VD_LIMITS_NONE;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (*s && unit == U_BYTES && !s[1]) {
		switch (*s) {
		case 'K': mul = 1ull << 10; break;
		case 'M': mul = 1ull << 20; break;
		case 'G': mul = 1ull << 30; break;
		case 'T': mul = 1ull << 40; break;
		default: return -EINVAL;
		}
		s++;
	}
	if (*s)
		return -EINVAL;
	if (v && mul > (VD_LIMITS_NONE - 1) / v)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

/* One "key = value" (already stripped of comments); seen: keys given so far. */
static int entry_parse(struct vd_limits *l, char *line, unsigned *seen, char *err, size_t errlen)
{
	char *eq = strchr(line, '='), *key = line, *val, *end;
	uint64_t v = 0, hi;
	size_t i;
	int ret;

	if (!eq) {
		say(err, errlen, "expected 'key = value'");
		return -EINVAL;
	}
	*eq = '\0';
	val = eq + 1;
	while (*key == ' ' || *key == '\t')
		key++;
	for (end = eq; end > key && (end[-1] == ' ' || end[-1] == '\t'); end--)
		;
	*end = '\0';
	while (*val == ' ' || *val == '\t')
		val++;
	for (end = val + strlen(val); end > val && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'); end--)
		;
	*end = '\0';
	for (i = 0; i < NKEYS; i++)
		if (!strcmp(key, keys[i].name))
			break;
	if (i == NKEYS) {
		say(err, errlen, "unknown key '%.64s'", key);
		return -EINVAL;
	}
	if (*seen & (1u << i)) {
		say(err, errlen, "%s given twice", key);
		return -EINVAL;
	}
	*seen |= 1u << i;
	ret = value_parse(val, keys[i].unit, &v);
	hi = key_max(&keys[i], l->max_clients);
	if (ret == 0 && v == VD_LIMITS_NONE && hi != VD_LIMITS_NONE - 1)
		v = hi;		/* "unlimited" where there is a built-in bound */
	if (ret < 0 || v < keys[i].min || (v > hi && v != VD_LIMITS_NONE)) {
		say(err, errlen, "%s: bad value '%.64s' (%s%s; %llu .. %llu)", key, val,
		    keys[i].unit == U_BYTES ? "bytes, with an optional K, M, G or T suffix" : "a count",
		    ", or unlimited", (unsigned long long)keys[i].min, (unsigned long long)hi);
		return -EINVAL;
	}
	*field(l, &keys[i]) = v;
	return 0;
}

int vd_limits_load(struct vd_limits *l, const char *path, char *err, size_t errlen)
{
	static char text[VD_LIMITS_FILE_MAX + 1];
	char why[256], *line, *next, *hash;
	unsigned seen = 0;
	size_t len = 0;
	ssize_t n;
	int fd, lineno = 0, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		say(err, errlen, "%s: %s", path, strerror(errno));
		return ret;
	}
	while (len < sizeof(text) && (n = read(fd, text + len, sizeof(text) - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			say(err, errlen, "%s: %s", path, strerror(errno));
			close(fd);
			return ret;
		}
		len += (size_t)n;
	}
	close(fd);
	if (len > VD_LIMITS_FILE_MAX) {
		say(err, errlen, "%s: larger than %u bytes", path, VD_LIMITS_FILE_MAX);
		return -EFBIG;
	}
	if (memchr(text, '\0', len)) {
		say(err, errlen, "%s: holds a NUL byte", path);
		return -EINVAL;
	}
	text[len] = '\0';
	for (line = text; line; line = next) {
		char *p;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		for (p = line; *p == ' ' || *p == '\t' || *p == '\r'; p++)
			;
		if (!*p)
			continue;
		ret = entry_parse(l, p, &seen, why, sizeof(why));
		if (ret < 0) {
			say(err, errlen, "%s:%d: %s", path, lineno, why);
			return ret;
		}
	}
	return 0;
}

int vd_limits_format(const struct vd_limits *l, char *buf, size_t len)
{
	size_t off = 0, i;
	int n;

	buf[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		uint64_t v = *field((struct vd_limits *)l, &keys[i]);

		if (v == VD_LIMITS_NONE)
			n = snprintf(buf + off, len - off, "%s%s=unlimited", i ? "," : "", keys[i].name);
		else
			n = snprintf(buf + off, len - off, "%s%s=%llu", i ? "," : "", keys[i].name,
				     (unsigned long long)v);
		if (n < 0 || (size_t)n >= len - off)
			return -EINVAL;
		off += (size_t)n;
	}
	return 0;
}

int vd_limits_parse_arg(struct vd_limits *l, const char *arg, char *err, size_t errlen)
{
	char copy[512], *tok, *save = NULL;
	unsigned seen = 0;
	int ret;

	if (strlen(arg) >= sizeof(copy)) {
		say(err, errlen, "--limits: too long");
		return -EINVAL;
	}
	strcpy(copy, arg);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		ret = entry_parse(l, tok, &seen, err, errlen);
		if (ret < 0)
			return ret;
	}
	return 0;
}
