/*
 * A large memcpy split over helper threads, for the copies into and out of
 * the staging slots of pageable copies (memcpy.c), and out of a reply that
 * carried a copy's bytes over a remote transport (call.c).
 *
 * NVIDIA's driver copies pageable memory with one thread; so did a staged
 * copy, whose memcpy out of pinned memory held device-to-host copies at
 * 0.55-0.65x native on an H100 whatever the slots' shape.  With the copy
 * split over 4 threads the same copies ran at 2.1x native, and host to
 * device at 4.1x (tests/gpu/RESULTS.md, run 13).
 *
 * VGPU_COPY_THREADS=N (1 to 16) is the number of threads that copy, the
 * caller among them; 1 turns the helpers off.  The default is 4, fewer when
 * the process may use fewer than 8 CPUs (half of them), none with 2 or
 * fewer (CPUs counted in its affinity mask, a container's cpuset).
 * The helpers start at the first large copy, block every signal, spin about
 * a millisecond after each copy (the next chunk comes within that during a
 * large copy) and then sleep on a futex.  One copy at a time uses them;
 * another thread's copy meanwhile is a plain memcpy.
 */
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pcopy.h"
#include "tp.h"
#include "vgpu/log.h"

#define PC_PART (256u << 10)	/* bytes a thread claims at a time */
#define PC_MAX_THREADS 16
#define PC_SPIN_NS 1000000

/*
 * A copy ("job") is cut into parts claimed by compare-and-swap on
 * claim = gen << 32 | next part.  The job's fields live in job[gen & 1],
 * written before claim names gen and read only after a claim of one of its
 * parts succeeded; the job ends when done reaches parts, and only then can
 * its slot be reused (by job gen + 2), so a helper never reads a slot being
 * rewritten for a later job.
 */
struct pc_job {
	uint8_t *dst;
	const uint8_t *src;
	size_t n;
	unsigned int parts;	/* atomic */
	unsigned int done;	/* atomic */
};

static struct {
	pthread_mutex_t use;	/* held by the copy that uses the helpers */
	uint32_t wake;		/* futex word, bumped per job */
	uint32_t sleepers;	/* helpers that may be in FUTEX_WAIT */
	uint64_t claim;
	uint32_t gen;
	int state;		/* under use: 0 not started, 1 helpers running, -1 none */
	int helpers;		/* atomic: helpers started */
	struct pc_job job[2];
} pc = { .use = PTHREAD_MUTEX_INITIALIZER };

/* Copies parts of the current job until none is left to claim. */
static void claim_parts(void)
{
	for (;;) {
		uint64_t w = __atomic_load_n(&pc.claim, __ATOMIC_ACQUIRE);
		struct pc_job *j = &pc.job[(w >> 32) & 1];
		unsigned int i = (unsigned int)w;
		size_t off, c;

		if (i >= __atomic_load_n(&j->parts, __ATOMIC_RELAXED))
			return;
		if (!__atomic_compare_exchange_n(&pc.claim, &w, w + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;
		off = (size_t)i * PC_PART;
		c = j->n - off < PC_PART ? j->n - off : PC_PART;
		memcpy(j->dst + off, j->src + off, c);
		__atomic_fetch_add(&j->done, 1, __ATOMIC_RELEASE);
	}
}

static void *helper_main(void *arg)
{
	uint32_t seen = 0, g;

	(void)arg;
	for (;;) {
		uint64_t t0 = 0;
		unsigned int spins = 0;

		while ((g = __atomic_load_n(&pc.wake, __ATOMIC_ACQUIRE)) == seen) {
			if (++spins % 64) {
				tp_cpu_relax();
				continue;
			}
			if (!t0) {
				t0 = tp_mono_ns();
			} else if (tp_mono_ns() - t0 > PC_SPIN_NS) {
				__atomic_fetch_add(&pc.sleepers, 1, __ATOMIC_SEQ_CST);
				syscall(SYS_futex, &pc.wake, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
				__atomic_fetch_sub(&pc.sleepers, 1, __ATOMIC_SEQ_CST);
			}
		}
		seen = g;
		claim_parts();
	}
	return NULL;
}

/* Threads per copy, the caller among them (VGPU_COPY_THREADS). */
static int copy_threads(void)
{
	const char *e = getenv("VGPU_COPY_THREADS");
	cpu_set_t set;
	long cpus;
	char *end;
	long n;

	if (e && *e) {
		n = strtol(e, &end, 10);
		if (*end == '\0' && n >= 1 && n <= PC_MAX_THREADS)
			return (int)n;
		VG_WARN("VGPU_COPY_THREADS=%s is not a number from 1 to %d; ignored", e, PC_MAX_THREADS);
	}
	/* The CPUs this process may use (a container's cpuset), not the machine's. */
	cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
	n = cpus / 2;
	return n < 1 ? 1 : n > 4 ? 4 : (int)n;
}

/* Starts the helpers: 1, or -1 when there are none. */
static int start_helpers(void)
{
	int want = copy_threads(), i, started = 0;
	sigset_t all, old;
	pthread_attr_t at;
	pthread_t th;

	if (want < 2)
		return -1;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 64u << 10);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 1; i < want; i++) {
		if (pthread_create(&th, &at, helper_main, NULL))
			break;
		pthread_setname_np(th, "vgpu-copy");
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&at);
	if (started < want - 1)
		VG_WARN("started %d of %d copy helper threads", started, want - 1);
	__atomic_store_n(&pc.helpers, started, __ATOMIC_RELAXED);
	return started ? 1 : -1;
}

int lc_pcopy_helpers(void)
{
	return __atomic_load_n(&pc.helpers, __ATOMIC_RELAXED);
}

void lc_pcopy(void *dst, const void *src, size_t n)
{
	struct pc_job *j;
	unsigned int parts, spins;

	if (n < 2 * PC_PART || pthread_mutex_trylock(&pc.use)) {
		memcpy(dst, src, n);
		return;
	}
	if (!pc.state)
		pc.state = start_helpers();
	if (pc.state < 0) {
		pthread_mutex_unlock(&pc.use);
		memcpy(dst, src, n);
		return;
	}
	parts = (unsigned int)((n + PC_PART - 1) / PC_PART);
	pc.gen++;
	j = &pc.job[pc.gen & 1];
	j->dst = dst;
	j->src = src;
	j->n = n;
	__atomic_store_n(&j->done, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&j->parts, parts, __ATOMIC_RELAXED);
	__atomic_store_n(&pc.claim, (uint64_t)pc.gen << 32, __ATOMIC_RELEASE);
	__atomic_add_fetch(&pc.wake, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&pc.sleepers, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &pc.wake, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
	claim_parts();
	/* A helper still copying its last part; should it have lost its CPU, let it run. */
	for (spins = 0; __atomic_load_n(&j->done, __ATOMIC_ACQUIRE) < parts; spins++) {
		if (spins < 4096)
			tp_cpu_relax();
		else
			sched_yield();
	}
	pthread_mutex_unlock(&pc.use);
}
