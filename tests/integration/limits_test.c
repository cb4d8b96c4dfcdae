/*
 * Unit tests of the per-client limits' parser (tools/vdlimits.c): the
 * config file vgpud reads and the --limits argument it hands its workers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vdlimits.h"
#include "vgpu/wire.h"

static char err[512];

/* Loads text as a config file; returns vd_limits_load's result. */
static int load(struct vd_limits *l, const char *text)
{
	char path[] = "/tmp/vgpu-limits-test.XXXXXX";
	int fd = mkstemp(path), ret;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	vd_limits_init(l, 1024);
	err[0] = '\0';
	ret = vd_limits_load(l, path, err, sizeof(err));
	unlink(path);
	return ret;
}

static void defaults(void **state)
{
	struct vd_limits l;

	assert_int_equal(load(&l, ""), 0);
	assert_true(l.max_device_memory == VD_LIMITS_NONE);
	assert_true(l.max_streams == VD_LIMITS_NONE);
	assert_true(l.max_threads == VD_LIMITS_NONE);
	assert_true(l.max_message == VG_MSG_MAX);
	assert_true(l.max_clients == 1024);
}

static void values(void **state)
{
	struct vd_limits l;

	assert_int_equal(load(&l, "# comment only\n\n  max_device_memory=3G\t# three\r\n"
				  "max_streams = 0\nmax_threads = 7\nmax_message = 16M\nmax_clients = unlimited\n"), 0);
	assert_true(l.max_device_memory == 3ull << 30);
	assert_true(l.max_streams == 0);
	assert_true(l.max_threads == 7);
	assert_true(l.max_message == 16u << 20);
	assert_true(l.max_clients == 1024);	/* unlimited: the daemon's own bound */
	assert_int_equal(load(&l, "max_device_memory = 12\nmax_message = unlimited\n"), 0);
	assert_true(l.max_device_memory == 12);
	assert_true(l.max_message == VG_MSG_MAX);
	assert_int_equal(load(&l, "max_device_memory = 2T\n"), 0);
	assert_true(l.max_device_memory == 2ull << 40);
	assert_int_equal(load(&l, "max_device_memory = unlimited\n"), 0);
	assert_true(l.max_device_memory == VD_LIMITS_NONE);
}

/* Each bad file is refused, naming the line. */
static void refusals(void **state)
{
	static const struct {
		const char *text, *where;
	} bad[] = {
		{ "max_gpus = 1\n", ":1: unknown key 'max_gpus'" },
		{ "\n\nmax_streams\n", ":3: expected 'key = value'" },
		{ "max_streams = 1\nmax_streams = 1\n", ":2: max_streams given twice" },
		{ "max_streams = 4K\n", ":1: max_streams: bad value '4K'" },	/* counts take no suffix */
		{ "max_device_memory = 4k\n", ":1: max_device_memory: bad value" },
		{ "max_device_memory = 4MB\n", ":1: max_device_memory: bad value" },
		{ "max_device_memory = -4\n", ":1: max_device_memory: bad value" },
		{ "max_device_memory = \n", ":1: max_device_memory: bad value" },
		{ "max_device_memory = 18446744073709551615\n", ":1: max_device_memory: bad value" },
		{ "max_device_memory = 99999999999999999999\n", ":1: max_device_memory: bad value" },
		{ "max_device_memory = 16777216T\n", ":1: max_device_memory: bad value" },
		{ "max_message = 257M\n", ":1: max_message: bad value" },
		{ "max_message = 15M\n", ":1: max_message: bad value" },
		{ "max_threads = 0\n", ":1: max_threads: bad value" },
		{ "max_clients = 0\n", ":1: max_clients: bad value" },
		{ "max_clients = 1025\n", ":1: max_clients: bad value" },
		{ "max_streams = 1 2\n", ":1: max_streams: bad value" },
	};
	struct vd_limits l;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load(&l, bad[i].text), -EINVAL);
		if (!strstr(err, bad[i].where))
			fail_msg("'%s': got '%s', want '%s'", bad[i].text, err, bad[i].where);
	}
	vd_limits_init(&l, 1024);
	assert_true(vd_limits_load(&l, "/nonexistent/vgpud.conf", err, sizeof(err)) == -ENOENT);
}

/* What vgpud formats, the worker reads back the same. */
static void round_trip(void **state)
{
	struct vd_limits a, b;
	char arg[512];

	assert_int_equal(load(&a, "max_device_memory = 5M\nmax_streams = 3\nmax_clients = 9\n"), 0);
	assert_int_equal(vd_limits_format(&a, arg, sizeof(arg)), 0);
	vd_limits_init(&b, VD_LIMITS_NONE - 1);
	assert_int_equal(vd_limits_parse_arg(&b, arg, err, sizeof(err)), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_int_equal(vd_limits_format(&a, arg, 8), -EINVAL);
	vd_limits_init(&b, VD_LIMITS_NONE - 1);
	assert_int_equal(vd_limits_parse_arg(&b, "max_streams=1,bogus=2", err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(defaults),
		cmocka_unit_test(values),
		cmocka_unit_test(refusals),
		cmocka_unit_test(round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
