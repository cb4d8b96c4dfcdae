/*
 * ivshmem channels at the transport level, over a file standing in for
 * BAR2: a guest process and the host (daemon + workers) in the test
 * process.  Many connections at once, messages far larger than the rings,
 * slots reused, a guest and a worker that die without closing, no daemon,
 * an uninitialised region, and a guest that scribbles on its slot (only
 * that connection ends).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include <cmocka.h>

#include "tp.h"

/*
 * How long a silent peer lives: long enough that a loaded CI machine (two
 * cores, sanitizers, tests in parallel) never starves a heartbeat that long.
 */
#define TEST_DEAD_MS 2500
#define TEST_DEAD_MS_S "2500"

#define RING  4096u
#define SIZE  (1u << 20)
/* Room for exactly 8 slots of 4 KiB rings (3 pages each) after the header page. */
#define SIZE8 (4096u + 8u * 12288u)

static char path[256];

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t pattern(uint64_t i, unsigned int salt)
{
	return (uint8_t)(i * 131 + (i >> 9) + salt * 7);
}

static int setup(void **state)
{
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "%s/vgpu-ivshmem-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	setenv("VGPU_IVSHMEM_DEAD_MS", TEST_DEAD_MS_S, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

/* Accepts one slot within ms (the daemon's timer), or -1. */
static int accept_slot(struct tp_ivshmem *r, unsigned int ms)
{
	uint64_t end = now_ms() + ms;
	int k;

	do {
		k = tp_ivshmem_poll(r);
		if (k >= 0)
			return k;
		usleep(1000);
	} while (now_ms() < end);
	return -1;
}

/* ---- an echo worker: 8-byte length, then that many bytes back --------- */

struct echo {
	struct tp_chan *c;
	pthread_t t;
	int ret;
	uint64_t bytes;
};

static void *echo_main(void *arg)
{
	struct echo *e = arg;
	uint8_t *buf = NULL;
	uint64_t n;

	for (;;) {
		struct iovec v[2];

		e->ret = e->c->ops->recv(e->c, &n, sizeof(n), NULL);
		if (e->ret < 0 || n > (64u << 20))
			break;
		free(buf);
		buf = malloc(n ? n : 1);
		e->ret = e->c->ops->recv(e->c, buf, n, NULL);
		if (e->ret < 0)
			break;
		v[0] = (struct iovec){ &n, sizeof(n) };
		v[1] = (struct iovec){ buf, n };
		e->ret = e->c->ops->send(e->c, v, 2, -1);
		if (e->ret < 0)
			break;
		e->bytes += n;
	}
	free(buf);
	return NULL;
}

static void echo_start(struct echo *e, struct tp_chan *c)
{
	memset(e, 0, sizeof(*e));
	e->c = c;
	assert_int_equal(pthread_create(&e->t, NULL, echo_main, e), 0);
}

/* In the guest: send n bytes of pattern salt, read them back, compare. */
static int guest_roundtrip(struct tp_chan *c, uint64_t n, unsigned int salt)
{
	uint8_t *out = malloc(n ? n : 1), *in = malloc(n ? n : 1);
	struct iovec v[2] = { { &n, sizeof(n) }, { out, n } };
	uint64_t i, back = 0;
	int ret;

	for (i = 0; i < n; i++)
		out[i] = pattern(i, salt);
	ret = c->ops->send(c, v, 2, -1);
	if (ret == 0)
		ret = c->ops->recv(c, &back, sizeof(back), NULL);
	if (ret == 0 && back != n)
		ret = -EBADMSG;
	if (ret == 0)
		ret = c->ops->recv(c, in, n, NULL);
	if (ret == 0 && memcmp(in, out, n) != 0)
		ret = -EILSEQ;
	free(out);
	free(in);
	return ret;
}

/*
 * Guests (and a worker) are other processes: this program again, with
 * --role (fork+exec, so a threaded parent under TSan is no problem).
 */
static pid_t spawn(const char *role, const char *arg)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test-ivshmem", "--role", role, path, arg ? arg : "-", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- many connections, large messages, slots reused ------------------- */

#define NCONN 6

struct many_arg {
	int rounds;
};

static void *guest_conn_main(void *arg)
{
	uintptr_t k = (uintptr_t)arg;
	char addr[300];
	struct tp_chan *c;
	intptr_t bad = 0;
	int i;

	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &c) < 0)
		return (void *)1;
	if (!tp_chan_is_ivshmem(c) || c->fd != -1)
		bad = 2;
	for (i = 0; i < 4 && !bad; i++) {
		/* 0, 1 byte, exactly a ring, and 1 MiB + 13: wraps the ring hundreds of times. */
		static const uint64_t sizes[] = { 0, 1, RING, (1u << 20) + 13 };

		if (guest_roundtrip(c, sizes[i], (unsigned int)(k * 10 + (unsigned int)i)) < 0)
			bad = 3;
	}
	tp_chan_destroy(c);
	return (void *)bad;
}

/* One guest process with NCONN connections at once, each in a thread. */
static int guest_many(void *arg)
{
	struct many_arg *a = arg;
	pthread_t t[NCONN];
	int r, k, bad = 0;

	for (r = 0; r < a->rounds; r++) {
		for (k = 0; k < NCONN; k++)
			if (pthread_create(&t[k], NULL, guest_conn_main, (void *)(uintptr_t)k))
				return 10;
		for (k = 0; k < NCONN; k++) {
			void *ret;

			pthread_join(t[k], &ret);
			if (ret)
				bad = (int)(uintptr_t)ret;
		}
	}
	return bad;
}

static void test_many_connections(void **state)
{
	struct many_arg a = { .rounds = 3 };	/* as the guest's argument says */
	struct echo e[NCONN];
	struct tp_ivshmem *r;
	int round, k, n;
	pid_t pid;

	(void)state;
	assert_int_equal(tp_ivshmem_region_create(path, SIZE8, RING, &r), 0);
	/* A few slots more than one round needs, fewer than all rounds: they must be reused. */
	assert_int_equal(tp_ivshmem_nslots(r), 8);
	pid = spawn("many", "3");
	for (round = 0; round < a.rounds; round++) {
		int slot[NCONN];

		for (n = 0; n < NCONN; n++) {
			struct tp_chan *c;

			slot[n] = accept_slot(r, 5000);
			assert_true(slot[n] >= 0);
			assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)slot[n], RING, &c), 0);
			echo_start(&e[n], c);
		}
		for (n = 0; n < NCONN; n++) {
			pthread_join(e[n].t, NULL);
			/* The guest closed: the worker sees the end of the stream. */
			assert_int_equal(e[n].ret, -ECONNRESET);
			assert_int_equal(e[n].bytes, 0 + 1 + RING + (1u << 20) + 13);
			tp_chan_destroy(e[n].c);
			tp_ivshmem_slot_release(r, (uint32_t)slot[n]);
		}
		/* The released slots are recycled by the next polls. */
	}
	assert_int_equal(wait_exit(pid), 0);
	for (k = 0; k < 3; k++)
		assert_int_equal(tp_ivshmem_poll(r), -EAGAIN);
	tp_ivshmem_region_destroy(r);
}

/* ---- a second daemon, no daemon, no region ------------------------------ */

static void test_no_daemon(void **state)
{
	struct tp_ivshmem *r, *r2;
	struct tp_chan *c;
	char addr[300];
	uint64_t t0;
	int fd;

	(void)state;
	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	/* A region no daemon ever initialised. */
	fd = open(path, O_RDWR | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SIZE), 0);
	close(fd);
	assert_int_equal(tp_connect(addr, &c), -ENODEV);
	assert_int_equal(tp_connect("ivshmem:file:/nonexistent/region", &c), -ENOENT);

	/* The file exists: another size would pull the BAR from under a VM. */
	assert_int_equal(tp_ivshmem_region_create(path, 2 * SIZE, RING, &r), -EFBIG);
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r2), -EADDRINUSE);
	/* Initialised, but nobody polls: refused after about 1.5 s, not a hang. */
	t0 = now_ms();
	assert_int_equal(tp_connect(addr, &c), -ECONNREFUSED);
	assert_true(now_ms() - t0 < 4000);
	/* The slot it tried is free again: the daemon, back, accepts the next guest. */
	tp_ivshmem_region_destroy(r);
	assert_int_equal(tp_ivshmem_region_create(path, 0, RING, &r), 0);
	assert_int_equal(tp_ivshmem_poll(r), -EAGAIN);
	tp_ivshmem_region_destroy(r);
}

/* ---- peers that die ---------------------------------------------------- */

static int guest_dies(void *arg)
{
	char addr[300];
	struct tp_chan *c;
	uint64_t n = 1000;
	struct iovec v = { &n, sizeof(n) };

	(void)arg;
	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &c) < 0)
		return 1;
	/* Half a message, then gone without closing (as a VM that is killed). */
	c->ops->send(c, &v, 1, -1);
	usleep(300 * 1000);
	raise(SIGKILL);
	return 2;
}

static void test_guest_dies(void **state)
{
	struct tp_ivshmem *r;
	struct echo e;
	struct tp_chan *c;
	uint64_t t0;
	pid_t pid;
	int k;

	(void)state;
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	pid = spawn("dies", NULL);
	k = accept_slot(r, 5000);
	assert_true(k >= 0);
	assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)k, RING, &c), 0);
	t0 = now_ms();
	echo_start(&e, c);
	pthread_join(e.t, NULL);
	/* Noticed by the silent heartbeat (TEST_DEAD_MS here), not by a close. */
	assert_int_equal(e.ret, -ECONNRESET);
	assert_true(now_ms() - t0 >= TEST_DEAD_MS - 100 && now_ms() - t0 < TEST_DEAD_MS + 5000);
	assert_int_equal(wait_exit(pid), 128 + SIGKILL);
	tp_chan_destroy(c);
	tp_ivshmem_slot_release(r, (uint32_t)k);
	/* The dead guest's slot is recycled once its heartbeat has been still long enough. */
	usleep((TEST_DEAD_MS + 200) * 1000);
	assert_int_equal(tp_ivshmem_poll(r), -EAGAIN);
	tp_ivshmem_region_destroy(r);
}

static int guest_exits(void *arg)
{
	char addr[300];
	struct tp_chan *c;
	uint64_t n = 1000;
	struct iovec v = { &n, sizeof(n) };

	(void)arg;
	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &c) < 0)
		return 1;
	c->ops->send(c, &v, 1, -1);
	/* exit() without closing: the process's exit closes it, as with a socket. */
	exit(0);
}

static void test_guest_exits(void **state)
{
	struct tp_ivshmem *r;
	struct echo e;
	struct tp_chan *c;
	uint64_t t0;
	pid_t pid;
	int k;

	(void)state;
	/* A heartbeat this slow would not explain a quick end. */
	setenv("VGPU_IVSHMEM_DEAD_MS", "60000", 1);
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	pid = spawn("exits", NULL);
	k = accept_slot(r, 5000);
	assert_true(k >= 0);
	assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)k, RING, &c), 0);
	t0 = now_ms();
	echo_start(&e, c);
	pthread_join(e.t, NULL);
	assert_int_equal(e.ret, -ECONNRESET);
	assert_true(now_ms() - t0 < 3000);
	assert_int_equal(wait_exit(pid), 0);
	tp_chan_destroy(c);
	tp_ivshmem_slot_release(r, (uint32_t)k);
	tp_ivshmem_region_destroy(r);
	setenv("VGPU_IVSHMEM_DEAD_MS", TEST_DEAD_MS_S, 1);
}

/* An event loop that only looks (timeout 0) between other work still sees a death. */
static void test_guest_dies_polled(void **state)
{
	struct tp_ivshmem *r;
	struct tp_chan *c;
	uint64_t n, t0;
	pid_t pid;
	int k, ret;

	(void)state;
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	pid = spawn("dies", NULL);
	k = accept_slot(r, 5000);
	assert_true(k >= 0);
	assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)k, RING, &c), 0);
	assert_int_equal(c->ops->recv(c, &n, sizeof(n), NULL), 0);
	assert_int_equal(n, 1000);
	t0 = now_ms();
	while ((ret = tp_ivshmem_wait_readable_ms(c, 0)) == -ETIMEDOUT && now_ms() - t0 < TEST_DEAD_MS + 5000)
		usleep(20 * 1000);
	assert_int_equal(ret, -ECONNRESET);
	assert_int_equal(wait_exit(pid), 128 + SIGKILL);
	tp_chan_destroy(c);
	tp_ivshmem_slot_release(r, (uint32_t)k);
	tp_ivshmem_region_destroy(r);
}

static int guest_waits_reply(void *arg)
{
	char addr[300];
	struct tp_chan *c;
	uint64_t t0, n;
	int ret;

	(void)arg;
	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &c) < 0)
		return 1;
	t0 = now_ms();
	ret = c->ops->recv(c, &n, sizeof(n), NULL);
	if (ret != -ECONNRESET)
		return 2;
	if (now_ms() - t0 > 5000)
		return 3;
	tp_chan_destroy(c);
	return 0;
}

static void test_worker_dies(void **state)
{
	struct tp_ivshmem *r;
	pid_t guest, worker;
	char slot[16];
	int k;

	(void)state;
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	guest = spawn("waits", NULL);
	k = accept_slot(r, 5000);
	assert_true(k >= 0);
	snprintf(slot, sizeof(slot), "%d", k);
	worker = spawn("worker-dies", slot);
	/* The daemon is not told: the guest notices the worker's heartbeat stop. */
	assert_int_equal(wait_exit(worker), 128 + SIGKILL);
	assert_int_equal(wait_exit(guest), 0);
	tp_ivshmem_slot_release(r, (uint32_t)k);
	tp_ivshmem_region_destroy(r);
}

/* ---- a guest that scribbles on its slot -------------------------------- */

struct scribble_arg {
	int mode;
};

/* Offsets a hostile guest would compute from the header it can read. */
static uint8_t *slot_of(uint8_t *map, uint32_t k)
{
	uint32_t slot_bytes;

	memcpy(&slot_bytes, map + 20, 4);
	return map + 4096 + (size_t)k * slot_bytes;
}

static int guest_scribbles(void *arg)
{
	struct scribble_arg *a = arg;
	char addr[300];
	struct tp_chan *good, *bad;
	uint8_t *map, *s;
	int fd, i, k;

	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &good) < 0 || tp_connect(addr, &bad) < 0)
		return 1;
	fd = open(path, O_RDWR);
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		return 2;
	/* The second connection took the slot whose guest_pid is ours and is second. */
	for (k = 0, i = 0; k < 64; k++) {
		uint32_t pid;

		s = slot_of(map, (uint32_t)k);
		memcpy(&pid, s + 8, 4);
		if (pid == (uint32_t)getpid() && ++i == 2)
			break;
	}
	if (k == 64)
		return 3;
	if (a->mode == 0) {
		/* Its guest->host ring claims more data than the ring holds. */
		uint64_t head = 1ull << 40;

		memcpy(s + 256, &head, 8);
	} else if (a->mode == 1) {
		/* Its host->guest ring: the guest "consumed" more than was sent. */
		uint64_t tail = 1ull << 40;

		memcpy(s + 256 + 128 + RING + 64, &tail, 8);
		/* Then asks for an echo so the host writes. */
		{
			uint64_t n = 100;
			uint8_t b[100] = { 0 };
			struct iovec v[2] = { { &n, 8 }, { b, 100 } };

			bad->ops->send(bad, v, 2, -1);
		}
	} else {
		/* Random bytes over the whole slot. */
		uint32_t slot_bytes;

		memcpy(&slot_bytes, map + 20, 4);
		srand(1);
		for (i = 0; i < (int)slot_bytes; i++)
			s[i] = (uint8_t)rand();
	}
	usleep(300 * 1000);
	/* The other connection still works. */
	if (guest_roundtrip(good, 100000, 5) < 0)
		return 4;
	tp_chan_destroy(good);
	munmap(map, SIZE);
	close(fd);
	return 0;
}

static void scribble(int mode, int want1, int want2)
{
	char mode_s[16];
	struct tp_ivshmem *r;
	struct echo e[2];
	int k[2], i;
	pid_t pid;

	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	snprintf(mode_s, sizeof(mode_s), "%d", mode);
	pid = spawn("scribbles", mode_s);
	for (i = 0; i < 2; i++) {
		struct tp_chan *c;

		k[i] = accept_slot(r, 5000);
		assert_true(k[i] >= 0);
		assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)k[i], RING, &c), 0);
		echo_start(&e[i], c);
	}
	assert_int_equal(wait_exit(pid), 0);
	for (i = 0; i < 2; i++) {
		pthread_join(e[i].t, NULL);
		tp_chan_destroy(e[i].c);
		tp_ivshmem_slot_release(r, (uint32_t)k[i]);
	}
	/* The good connection ended when its guest went; the bad one as detected. */
	assert_int_equal(e[0].ret, -ECONNRESET);
	assert_true(e[1].ret == want1 || e[1].ret == want2);
	/* The daemon goes on: a later poll neither crashes nor accepts garbage. */
	for (i = 0; i < 3; i++)
		assert_true(tp_ivshmem_poll(r) == -EAGAIN);
	tp_ivshmem_region_destroy(r);
}

static void test_scribble_head(void **state)
{
	(void)state;
	scribble(0, -EPROTO, -EPROTO);
}

static void test_scribble_tail(void **state)
{
	(void)state;
	/* The host's send fails (-EPROTO); a worker ends the session on it. */
	scribble(1, -EPROTO, -EPROTO);
}

static void test_scribble_random(void **state)
{
	(void)state;
	/* A broken ring, or a slot that no longer looks open: either ends it. */
	scribble(2, -EPROTO, -ECONNRESET);
}

/* ---- peek, readable, and a shutdown from another thread ---------------- */

static int guest_sends_then_waits(void *arg)
{
	char addr[300];
	struct tp_chan *c;
	uint8_t msg[40], b;
	struct iovec v = { msg, sizeof(msg) };
	int i;

	(void)arg;
	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &c) < 0)
		return 1;
	for (i = 0; i < (int)sizeof(msg); i++)
		msg[i] = (uint8_t)i;
	if (c->ops->send(c, &v, 1, -1) < 0)
		return 2;
	/* The host shuts its side down: we see the end, not a hang. */
	if (c->ops->recv(c, &b, 1, NULL) != -ECONNRESET)
		return 3;
	tp_chan_destroy(c);
	return 0;
}

struct waiter {
	struct tp_chan *c;
	int ret;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;

	__atomic_store_n(&w->ret, tp_ivshmem_wait_readable(w->c), __ATOMIC_RELEASE);
	return NULL;
}

static void test_peek_shutdown(void **state)
{
	struct tp_ivshmem *r;
	struct tp_chan *c;
	struct waiter w;
	pthread_t t;
	uint8_t hb[32], all[40];
	uint64_t t0;
	pid_t pid;
	int k, i;

	(void)state;
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	pid = spawn("sends", NULL);
	k = accept_slot(r, 5000);
	assert_true(k >= 0);
	assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)k, RING, &c), 0);
	assert_int_equal(tp_ivshmem_wait_readable(c), 0);
	t0 = now_ms();
	while (!tp_ivshmem_peek(c, all, sizeof(all)))
		assert_true(now_ms() - t0 < 5000);
	assert_true(tp_ivshmem_readable(c));
	/* Peeking twice sees the same bytes; receiving consumes them. */
	assert_int_equal(tp_ivshmem_peek(c, hb, sizeof(hb)), 1);
	assert_memory_equal(hb, all, sizeof(hb));
	assert_int_equal(tp_ivshmem_peek(c, all, sizeof(all) + 1), 0);
	assert_int_equal(c->ops->recv(c, all, sizeof(all), NULL), 0);
	for (i = 0; i < (int)sizeof(all); i++)
		assert_int_equal(all[i], i);
	assert_false(tp_ivshmem_readable(c));
	/* Nothing more comes: waits with a limit time out... */
	assert_int_equal(tp_ivshmem_wait_readable_ms(c, 0), -ETIMEDOUT);
	t0 = now_ms();
	assert_int_equal(tp_ivshmem_wait_readable_ms(c, 50), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 50 && now_ms() - t0 < 3000);
	/* ...and a waiting thread is released by the shutdown. */
	w.c = c;
	w.ret = 1;
	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	usleep(100 * 1000);
	assert_int_equal(__atomic_load_n(&w.ret, __ATOMIC_ACQUIRE), 1);
	t0 = now_ms();
	tp_ivshmem_shutdown(c);
	pthread_join(t, NULL);
	assert_int_equal(w.ret, -ECONNRESET);
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(wait_exit(pid), 0);
	tp_chan_destroy(c);
	tp_ivshmem_slot_release(r, (uint32_t)k);
	tp_ivshmem_region_destroy(r);
}

/* ---- a connection handed from one worker process to another ----------- */

static int guest_handoff(void *arg)
{
	char addr[300];
	struct tp_chan *c;
	int i;

	(void)arg;
	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, &c) < 0)
		return 1;
	/* The first round trip is served by one worker, the others by the next. */
	for (i = 0; i < 3; i++)
		if (guest_roundtrip(c, 70000, (unsigned int)i) < 0)
			return 2 + i;
	tp_chan_destroy(c);
	return 0;
}

static int echo_once(struct tp_chan *c)
{
	uint64_t n;
	uint8_t *buf;
	struct iovec v[2];
	int ret;

	ret = c->ops->recv(c, &n, sizeof(n), NULL);
	if (ret < 0 || n > (1u << 20))
		return -EPROTO;
	buf = malloc(n);
	ret = c->ops->recv(c, buf, n, NULL);
	v[0] = (struct iovec){ &n, sizeof(n) };
	v[1] = (struct iovec){ buf, n };
	if (ret == 0)
		ret = c->ops->send(c, v, 2, -1);
	free(buf);
	return ret;
}

/* The adopting worker: argv "FD:HEXREF". */
static int adopter(const char *arg)
{
	uint8_t ref[TP_IVSHMEM_REF_SIZE];
	struct tp_chan *c;
	struct echo e;
	char *end;
	int fd, i;

	fd = (int)strtol(arg, &end, 10);
	if (*end != ':' || strlen(end + 1) != 2 * TP_IVSHMEM_REF_SIZE)
		return 10;
	for (i = 0; i < TP_IVSHMEM_REF_SIZE; i++) {
		unsigned int x;

		if (sscanf(end + 1 + 2 * i, "%2x", &x) != 1)
			return 11;
		ref[i] = (uint8_t)x;
	}
	if (tp_ivshmem_import(fd, ref, sizeof(ref) - 1, &c) != -EINVAL)
		return 12;
	if (tp_ivshmem_import(fd, ref, sizeof(ref), &c) < 0)
		return 13;
	echo_start(&e, c);
	pthread_join(e.t, NULL);
	tp_chan_destroy(c);
	/* Served the last two round trips, then saw the guest close. */
	return e.ret == -ECONNRESET && e.bytes == 2 * 70000 ? 0 : 14;
}

static uint32_t slot_state(uint32_t k, uint32_t *gen)
{
	uint8_t *map, *s;
	uint32_t st;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	map = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	s = slot_of(map, k);
	memcpy(&st, s, 4);
	memcpy(gen, s + 4, 4);
	munmap(map, SIZE);
	close(fd);
	return st;
}

static void test_handoff(void **state)
{
	uint8_t ref[TP_IVSHMEM_REF_SIZE];
	char arg[128];
	struct tp_ivshmem *r;
	struct tp_chan *c;
	uint32_t gen0, gen1;
	pid_t guest, owner;
	int k, fd, fd2, i, n;

	(void)state;
	assert_int_equal(tp_ivshmem_region_create(path, SIZE, RING, &r), 0);
	guest = spawn("handoff", NULL);
	k = accept_slot(r, 5000);
	assert_true(k >= 0);
	assert_int_equal(tp_ivshmem_open_slot(path, (uint32_t)k, RING, &c), 0);
	assert_int_equal(echo_once(c), 0);
	assert_int_equal(tp_ivshmem_export(c, &fd, ref), 0);
	fd2 = dup(fd);		/* not close-on-exec: the adopter inherits it */
	assert_true(fd2 >= 0);
	n = snprintf(arg, sizeof(arg), "%d:", fd2);
	for (i = 0; i < TP_IVSHMEM_REF_SIZE; i++)
		n += snprintf(arg + n, sizeof(arg) - (size_t)n, "%02x", ref[i]);
	owner = spawn("adopter", arg);
	close(fd2);
	/* The first worker ends: the slot stays open for its new owner. */
	tp_chan_destroy(c);
	tp_ivshmem_slot_adopted(r, (uint32_t)k);
	assert_int_equal(slot_state((uint32_t)k, &gen0), 2 /* ACCEPTED */);
	for (i = 0; i < 20; i++) {
		assert_int_equal(tp_ivshmem_poll(r), -EAGAIN);
		usleep(10 * 1000);
	}
	assert_int_equal(wait_exit(guest), 0);
	assert_int_equal(wait_exit(owner), 0);
	/* Both sides closed: the daemon frees the slot for the next guest. */
	assert_int_equal(tp_ivshmem_poll(r), -EAGAIN);
	assert_int_equal(tp_ivshmem_poll(r), -EAGAIN);
	assert_int_equal(slot_state((uint32_t)k, &gen1), 0 /* FREE */);
	assert_int_equal(gen1, gen0 + 1);
	/* The old reference names a generation that is over: refused. */
	fd = open(path, O_RDWR | O_CLOEXEC);
	assert_int_equal(tp_ivshmem_import(fd, ref, sizeof(ref), &c), -ECONNRESET);
	close(fd);
	tp_ivshmem_region_destroy(r);
}

static void test_parse_listen(void **state)
{
	char p[64];
	uint64_t size;
	uint32_t ring;

	(void)state;
	assert_int_equal(tp_ivshmem_parse_listen("/dev/shm/x", p, sizeof(p), &size, &ring), 0);
	assert_string_equal(p, "/dev/shm/x");
	assert_int_equal(size, 0);
	assert_int_equal(ring, TP_IVSHMEM_RING_DEFAULT);
	assert_int_equal(tp_ivshmem_parse_listen("/x,size=64M,ring=64K", p, sizeof(p), &size, &ring), 0);
	assert_int_equal(size, 64ull << 20);
	assert_int_equal(ring, 64u << 10);
	assert_int_equal(tp_ivshmem_parse_listen("/x,size=", p, sizeof(p), &size, &ring), -EINVAL);
	assert_int_equal(tp_ivshmem_parse_listen("/x,colour=red", p, sizeof(p), &size, &ring), -EINVAL);
	assert_int_equal(tp_ivshmem_parse_listen(",size=1M", p, sizeof(p), &size, &ring), -EINVAL);
}

static int worker_dies(void *arg)
{
	struct tp_chan *c;

	if (tp_ivshmem_open_slot(path, (uint32_t)atoi(arg), RING, &c) < 0)
		return 1;
	usleep(200 * 1000);
	raise(SIGKILL);
	return 2;
}

/*
 * Not a test: `test-ivshmem --bench [RING]` prints round trips and
 * throughput over ivshmem (a file on this host; guest and worker are
 * threads) beside a unix socket pair.
 */
static void *bench_connect(void *arg)
{
	struct tp_chan **c = arg;
	char addr[300];

	snprintf(addr, sizeof(addr), "ivshmem:file:%s", path);
	if (tp_connect(addr, c) < 0)
		*c = NULL;
	return NULL;
}

static double bench_run(struct tp_chan *g, int n, uint64_t bytes)
{
	struct timespec a, b;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++)
		if (guest_roundtrip(g, bytes, 1) < 0)
			return -1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / n;
}

static void bench_print(const char *what, struct tp_chan *g)
{
	double lat = bench_run(g, 20000, 56), big = bench_run(g, 64, 4u << 20);

	printf("%-8s round trip of 64 bytes: %8.2f us   4 MiB each way: %8.2f ms (%.2f GB/s)\n", what,
	       lat / 1e3, big / 1e6, 2.0 * (4u << 20) / big);
}

static int bench(uint32_t ring)
{
	struct tp_chan *g = NULL, *h, *a, *b;
	struct tp_ivshmem *r;
	struct echo e, f;
	pthread_t t;
	int k, bfd;

	if (setup(NULL) < 0 || tp_ivshmem_region_create(path, 64u << 20, ring, &r) < 0)
		return 1;
	pthread_create(&t, NULL, bench_connect, &g);
	k = accept_slot(r, 5000);
	if (k < 0 || tp_ivshmem_open_slot(path, (uint32_t)k, ring, &h) < 0)
		return 1;
	echo_start(&e, h);
	pthread_join(t, NULL);
	if (!g)
		return 1;
	printf("ivshmem ring %u KiB\n", ring >> 10);
	bench_print("ivshmem", g);
	tp_chan_destroy(g);
	pthread_join(e.t, NULL);
	tp_chan_destroy(h);
	tp_ivshmem_region_destroy(r);
	teardown(NULL);
	if (tp_unix_pair(&a, &bfd) < 0 || tp_unix_wrap(bfd, &b) < 0)
		return 1;
	echo_start(&f, b);
	bench_print("unix", a);
	tp_chan_destroy(a);
	pthread_join(f.t, NULL);
	tp_chan_destroy(b);
	return 0;
}

static int role_main(const char *role, const char *arg)
{
	struct many_arg m = { .rounds = atoi(arg) };
	struct scribble_arg sa = { .mode = atoi(arg) };

	if (!strcmp(role, "many"))
		return guest_many(&m);
	if (!strcmp(role, "dies"))
		return guest_dies(NULL);
	if (!strcmp(role, "waits"))
		return guest_waits_reply(NULL);
	if (!strcmp(role, "worker-dies"))
		return worker_dies((void *)arg);
	if (!strcmp(role, "scribbles"))
		return guest_scribbles(&sa);
	if (!strcmp(role, "exits"))
		return guest_exits(NULL);
	if (!strcmp(role, "handoff"))
		return guest_handoff(NULL);
	if (!strcmp(role, "adopter"))
		return adopter(arg);
	if (!strcmp(role, "sends"))
		return guest_sends_then_waits(NULL);
	return 99;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_listen),
		cmocka_unit_test_setup_teardown(test_many_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_daemon, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_dies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_dies_polled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_exits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_dies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek_shutdown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_handoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scribble_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scribble_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scribble_random, setup, teardown),
	};

	if (argc >= 2 && !strcmp(argv[1], "--bench"))
		return bench(argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : TP_IVSHMEM_RING_DEFAULT);
	if (argc == 5 && !strcmp(argv[1], "--role")) {
		snprintf(path, sizeof(path), "%s", argv[3]);
		return role_main(argv[2], argv[4]);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
