/*
 * Shared-memory channels: ordered delivery through rings much smaller than
 * the data, both directions at once, a full ring, the wake-up handshake with
 * delays injected into its race windows, the spin time before a sleep, a
 * peer that dies, a peer that breaks the ring's indices or records, and a
 * ring whose memory is not what it claims.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tp.h"

struct pair {
	struct tp_chan *a, *b;	/* a: the creator (guest) side */
};

static void pair_make(struct pair *p, uint32_t bytes)
{
	struct tp_chan *sa, *sb;
	int sv[2], fd;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(tp_unix_wrap(sv[0], &sa), 0);
	assert_int_equal(tp_unix_wrap(sv[1], &sb), 0);
	fd = tp_ring_create_fd(bytes);
	assert_true(fd >= 0);
	assert_int_equal(tp_ring_wrap(sa, fd, bytes, 1, &p->a), 0);
	assert_int_equal(tp_ring_wrap(sb, fd, bytes, 0, &p->b), 0);
	close(fd);
	assert_true(tp_chan_is_ring(p->a));
}

static void pair_free(struct pair *p)
{
	tp_chan_destroy(p->a);
	tp_chan_destroy(p->b);
}

static uint8_t pattern(uint64_t i)
{
	return (uint8_t)(i * 131 + (i >> 9));
}

struct stream {
	struct tp_chan *c;
	size_t total, chunk;
	int ret;
};

static void *writer(void *arg)
{
	struct stream *s = arg;
	uint8_t *buf = malloc(s->chunk);
	size_t off, i, n;

	for (off = 0; off < s->total && !s->ret; off += n) {
		struct iovec v;

		n = s->total - off < s->chunk ? s->total - off : s->chunk;
		for (i = 0; i < n; i++)
			buf[i] = pattern(off + i);
		v.iov_base = buf;
		v.iov_len = n;
		s->ret = s->c->ops->send(s->c, &v, 1, -1);
	}
	free(buf);
	return NULL;
}

static int read_all(struct tp_chan *c, size_t total, size_t chunk)
{
	uint8_t *buf = malloc(chunk);
	size_t off, i, n;
	int ret = 0;

	for (off = 0; off < total && !ret; off += n) {
		n = total - off < chunk ? total - off : chunk;
		ret = c->ops->recv(c, buf, n, NULL);
		for (i = 0; !ret && i < n; i++)
			if (buf[i] != pattern(off + i))
				ret = -EILSEQ;
	}
	free(buf);
	return ret;
}

/* 8 MiB through a 4 KiB ring, in odd-sized pieces: every byte, in order. */
static void test_stream_small_ring(void **state)
{
	struct pair p;
	struct stream s;
	pthread_t th;

	(void)state;
	pair_make(&p, 4096);
	s.c = p.a;
	s.total = 8u << 20;
	s.chunk = 1000;
	s.ret = 0;
	pthread_create(&th, NULL, writer, &s);
	assert_int_equal(read_all(p.b, s.total, 777), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.ret, 0);
	pair_free(&p);
}

/* Both directions at once (each side writes and reads). */
static void test_both_directions(void **state)
{
	struct pair p;
	struct stream s1, s2;
	pthread_t t1, t2;

	(void)state;
	pair_make(&p, 8192);
	s1 = (struct stream){ p.a, 4u << 20, 5000, 0 };
	s2 = (struct stream){ p.b, 4u << 20, 3000, 0 };
	pthread_create(&t1, NULL, writer, &s1);
	pthread_create(&t2, NULL, writer, &s2);
	assert_int_equal(read_all(p.b, s1.total, 4096), 0);
	assert_int_equal(read_all(p.a, s2.total, 1234), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(s1.ret, 0);
	assert_int_equal(s2.ret, 0);
	pair_free(&p);
}

static void tiny_delay(void)
{
	/* Cheap per-thread randomness: a delay now and then, of varied length. */
	static __thread unsigned int seed = 12345;
	unsigned int r = rand_r(&seed);

	if ((r & 7) == 0) {
		struct timespec ts = { 0, (long)(r % 20000) };

		nanosleep(&ts, NULL);
	}
}

/* Ping-pong of framed messages with delays inside the wake-up handshake. */
struct pp {
	struct tp_chan *c;
	int n, ret;
};

static void *echo(void *arg)
{
	struct pp *e = arg;
	struct vg_hdr h;
	struct vg_buf b;
	int i;

	vg_buf_init(&b);
	for (i = 0; i < e->n && !e->ret; i++) {
		e->ret = tp_recv_msg(e->c, &h, &b, 1 << 20, NULL);
		if (!e->ret) {
			h.kind = VG_MSG_REPLY;
			e->ret = tp_send_msg(e->c, &h, b.p, b.len, -1);
		}
	}
	vg_buf_fini(&b);
	return NULL;
}

/* Returns whether the pair used membarrier. */
static int pingpong_with_delays(void)
{
	struct pair p;
	struct pp e;
	pthread_t th;
	struct vg_buf b;
	uint8_t payload[300];
	struct timespec t0, t1;
	unsigned long missed = tp_ring_missed_wakeups;
	int i, mb;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	tp_ring_delay_hook = tiny_delay;
	pair_make(&p, 4096);
	tp_ring_membarrier_ready(1);
	vg_buf_init(&b);
	/* A first exchange: each side takes the barrier into use before it sends. */
	{
		struct vg_hdr h = { .kind = VG_MSG_CALL, .op = 7, .seq = 1 };

		assert_int_equal(tp_send_msg(p.a, &h, payload, 0, -1), 0);
		assert_int_equal(tp_recv_msg(p.b, &h, &b, 1 << 20, NULL), 0);
	}
	mb = tp_ring_uses_membarrier(p.a) && tp_ring_uses_membarrier(p.b);
	e = (struct pp){ p.b, 20000, 0 };
	pthread_create(&th, NULL, echo, &e);
	for (i = 0; i < e.n; i++) {
		struct vg_hdr h = { .kind = VG_MSG_CALL, .op = 7, .seq = (uint64_t)i + 1 };
		size_t n = (size_t)(i % (int)sizeof(payload));

		memset(payload, i & 0xff, n);
		assert_int_equal(tp_send_msg(p.a, &h, payload, n, -1), 0);
		assert_int_equal(tp_recv_msg(p.a, &h, &b, 1 << 20, NULL), 0);
		assert_int_equal(h.kind, VG_MSG_REPLY);
		assert_int_equal(h.seq, (uint64_t)i + 1);
		assert_int_equal(b.len, n);
		if (n)
			assert_int_equal(b.p[n - 1], i & 0xff);
	}
	pthread_join(th, NULL);
	assert_int_equal(e.ret, 0);
	tp_ring_delay_hook = NULL;
	/*
	 * A lost wake-up costs a 100 ms nap (the sleeper then rechecks) and is
	 * counted: with the wake removed from ring_wake, 900 were counted
	 * (checked by hand as the negative control).  Taking the membarrier
	 * call out of the sleeper lost none here: the delay hook is itself a
	 * system call between the publisher's store and load, so this test
	 * does not see a missing publisher barrier.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t1);
	print_message("%lu lost wake-ups (%s)\n", tp_ring_missed_wakeups - missed,
		      mb ? "membarrier, light publishers" : "full barriers");
	assert_int_equal(tp_ring_missed_wakeups - missed, 0);
	assert_true(t1.tv_sec - t0.tv_sec < 20);
	vg_buf_fini(&b);
	pair_free(&p);
	return mb;
}

/* Where the kernel has membarrier(2), the asymmetric barriers are used. */
static void test_pingpong_with_delays(void **state)
{
	(void)state;
	if (!pingpong_with_delays())
		print_message("membarrier(2) is not usable here: full barriers were tested\n");
}

static void test_pingpong_full_barriers(void **state)
{
	(void)state;
	setenv("VGPU_RING_MEMBARRIER", "0", 1);
	assert_false(pingpong_with_delays());
	unsetenv("VGPU_RING_MEMBARRIER");
}

/* A reply sent after a delay, to measure how the waiter waited. */
struct late {
	struct tp_chan *c;
	long delay_us;
	int ret;
};

static void *late_echo(void *arg)
{
	struct late *l = arg;
	struct timespec ts = { l->delay_us / 1000000, (l->delay_us % 1000000) * 1000 };
	uint8_t x;
	struct iovec v = { &x, 1 };

	l->ret = l->c->ops->recv(l->c, &x, 1, NULL);
	nanosleep(&ts, NULL);
	if (!l->ret)
		l->ret = l->c->ops->send(l->c, &v, 1, -1);
	return NULL;
}

/* CPU seconds the calling thread used while it waited for a reply after delay_us. */
static double wait_cpu_ms(unsigned int spin_us, long delay_us)
{
	struct pair p;
	struct late l;
	pthread_t th;
	struct timespec c0, c1;
	uint8_t x = 7;
	struct iovec v = { &x, 1 };

	pair_make(&p, 4096);
	tp_ring_set_spin(p.a, spin_us);
	l = (struct late){ p.b, delay_us, 0 };
	pthread_create(&th, NULL, late_echo, &l);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
	assert_int_equal(p.a->ops->send(p.a, &v, 1, -1), 0);
	assert_int_equal(p.a->ops->recv(p.a, &x, 1, NULL), 0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
	pthread_join(th, NULL);
	assert_int_equal(l.ret, 0);
	assert_int_equal(x, 7);
	pair_free(&p);
	return (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
}

/*
 * The spin time: a waiter spins through a reply that comes within it (it
 * used CPU for most of the wait), and sleeps once it is over (the CPU it
 * used is bounded by the spin time, not by the wait).
 */
static void test_spin_time(void **state)
{
	double spun, slept, short_spin;

	(void)state;
	spun = wait_cpu_ms(200000, 20000);	/* a 20 ms wait inside a 200 ms spin */
	slept = wait_cpu_ms(5000, 150000);	/* a 150 ms wait after a 5 ms spin */
	short_spin = wait_cpu_ms(0, 20000);	/* the default: polls, yields, sleeps */
	print_message("waiter CPU: %.2f ms spinning, %.2f ms after a 5 ms spin, %.2f ms without\n",
		      spun, slept, short_spin);
	assert_true(spun >= 4.0);
	assert_true(slept < 75.0);
	assert_true(short_spin < 10.0);
}

/* The peer process dies while we wait: an error within a few hundred ms. */
static void test_peer_death(void **state)
{
	struct tp_chan *sa, *sb, *ra;
	int sv[2], fd;
	pid_t pid;
	uint8_t x;
	struct timespec t0, t1;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	fd = tp_ring_create_fd(4096);
	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct tp_chan *rb;

		close(sv[0]);
		tp_unix_wrap(sv[1], &sb);
		tp_ring_wrap(sb, fd, 4096, 0, &rb);
		usleep(200000);
		_exit(0);	/* dies without a word */
	}
	close(sv[1]);
	assert_int_equal(tp_unix_wrap(sv[0], &sa), 0);
	assert_int_equal(tp_ring_wrap(sa, fd, 4096, 1, &ra), 0);
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ra->ops->recv(ra, &x, 1, NULL), -ECONNRESET);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);
	waitpid(pid, NULL, 0);
	tp_chan_destroy(ra);
}

/* A message with a descriptor: the descriptor arrives with it (VG_F_FD). */
static void test_descriptor_beside_ring(void **state)
{
	struct pair p;
	struct vg_hdr h = { .kind = VG_MSG_CALL, .op = 9, .seq = 1 };
	struct vg_buf b;
	int pipefd[2], got = -1;
	char c = 0;

	(void)state;
	pair_make(&p, 4096);
	assert_int_equal(pipe(pipefd), 0);
	assert_int_equal(tp_send_msg(p.a, &h, "abc", 3, pipefd[1]), 0);
	vg_buf_init(&b);
	assert_int_equal(tp_recv_msg(p.b, &h, &b, 64, &got), 0);
	assert_true(h.flags & VG_F_FD);
	assert_true(got >= 0);
	assert_int_equal(b.len, 3);
	/* It is the same pipe: what goes in one end comes out of ours. */
	assert_int_equal(write(got, "z", 1), 1);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(c, 'z');
	close(got);
	close(pipefd[0]);
	close(pipefd[1]);
	vg_buf_fini(&b);
	pair_free(&p);
}

/* A pair on 4096-byte rings, and the rings' memory mapped a third time, as a peer would. */
static uint8_t *pair_mapped(struct tp_chan **ra, struct tp_chan **rb)
{
	struct tp_chan *sa, *sb;
	uint8_t *map;
	int sv[2], fd;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(tp_unix_wrap(sv[0], &sa), 0);
	assert_int_equal(tp_unix_wrap(sv[1], &sb), 0);
	fd = tp_ring_create_fd(4096);
	assert_true(fd >= 0);
	assert_int_equal(tp_ring_wrap(sa, fd, 4096, 1, ra), 0);
	assert_int_equal(tp_ring_wrap(sb, fd, 4096, 0, rb), 0);
	map = mmap(NULL, tp_ring_map_size(4096), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(map != MAP_FAILED);
	close(fd);
	return map;
}

/*
 * The peer stores a tail beyond what was written: the writer refuses to go
 * on (EPROTO) instead of trusting the space it would imply.  With the check
 * removed, the write runs past the ring (ASan reports it).
 */
static void test_bad_tail_refused(void **state)
{
	struct tp_chan *ra, *rb;
	uint8_t buf[3000];
	struct iovec v = { buf, sizeof(buf) };
	uint64_t *tail;
	uint8_t *map;

	(void)state;
	map = pair_mapped(&ra, &rb);
	memset(buf, 0x5a, sizeof(buf));
	/* Three records (1024, 1024 and 952 bytes): 3136 of 4096 bytes used. */
	assert_int_equal(ra->ops->send(ra, &v, 1, -1), 0);
	tail = (uint64_t *)(map + 64);				/* ring a's tail word */
	__atomic_store_n(tail, (uint64_t)1 << 40, __ATOMIC_SEQ_CST);
	assert_int_equal(ra->ops->send(ra, &v, 1, -1), -EPROTO);
	munmap(map, tp_ring_map_size(4096));
	tp_chan_destroy(ra);
	tp_chan_destroy(rb);
}

/* The first record's word on ring a, as ring.c lays it out. */
static uint64_t rec_word(const uint8_t *map, uint64_t pos, uint32_t len)
{
	uint64_t key;

	memcpy(&key, map, sizeof(key));		/* ring a's key */
	return (((pos / 64) ^ key) << 24) | len;
}

/*
 * A word where the next record starts is taken only with this position's
 * stamp: what a previous lap left there (an older stamp) is not a record,
 * and a record whose length is out of range breaks the ring (EPROTO).
 */
static void test_records_checked(void **state)
{
	struct tp_chan *ra, *rb;
	uint64_t *word;
	uint8_t *map, x;

	(void)state;
	map = pair_mapped(&ra, &rb);
	word = (uint64_t *)(map + 256);			/* ring a's data, position 0 */
	/* The stamp of the lap before, with a fine length: nothing to read. */
	*word = rec_word(map, (uint64_t)0 - 4096, 1);
	map[256 + 8] = 0x42;
	assert_false(tp_ring_readable(rb));
	assert_int_equal(tp_ring_peek(rb, &x, 1), 0);
	/* This position's stamp: one byte to read. */
	*word = rec_word(map, 0, 1);
	assert_true(tp_ring_readable(rb));
	assert_int_equal(tp_ring_peek(rb, &x, 1), 1);
	assert_int_equal(x, 0x42);
	assert_int_equal(rb->ops->recv(rb, &x, 1, NULL), 0);
	assert_int_equal(x, 0x42);
	/* The next record (position 64) claims more than a record may hold. */
	word = (uint64_t *)(map + 256 + 64);
	*word = rec_word(map, 64, 4096);
	assert_int_equal(rb->ops->recv(rb, &x, 1, NULL), -EPROTO);
	munmap(map, tp_ring_map_size(4096));
	tp_chan_destroy(ra);
	tp_chan_destroy(rb);
}

/* Memory that is not a sealed ring of the announced size is refused. */
static void test_bad_memory_refused(void **state)
{
	struct tp_chan *s, *r = NULL;
	int sv[2], fd;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(tp_unix_wrap(sv[0], &s), 0);
	fd = tp_ring_create_fd(4096);
	assert_true(fd >= 0);
	assert_int_equal(tp_ring_wrap(s, fd, 8192, 0, &r), -EINVAL);	/* wrong size */
	assert_int_equal(tp_ring_wrap(s, fd, 3000, 0, &r), -EINVAL);	/* not a power of two */
	close(fd);
	fd = memfd_create("unsealed", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)tp_ring_map_size(4096)), 0);
	assert_int_equal(tp_ring_wrap(s, fd, 4096, 0, &r), -EINVAL);	/* could shrink under us */
	close(fd);
	tp_chan_destroy(s);
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_small_ring),
		cmocka_unit_test(test_both_directions),
		cmocka_unit_test(test_pingpong_with_delays),
		cmocka_unit_test(test_pingpong_full_barriers),
		cmocka_unit_test(test_spin_time),
		cmocka_unit_test(test_peer_death),
		cmocka_unit_test(test_descriptor_beside_ring),
		cmocka_unit_test(test_bad_tail_refused),
		cmocka_unit_test(test_records_checked),
		cmocka_unit_test(test_bad_memory_refused),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
