/*
 * cuGetProcAddress's table, generated from libcuda/procaddr.tab into
 * g_procaddr.c by tools/gen_procaddr.py (prefix lc_pa_).
 *
 * For each symbol name (sorted by strcmp, for bsearch) two version ladders
 * index into one array of steps: 'legacy' answers flags DEFAULT and
 * LEGACY_STREAM, 'ptds' answers PER_THREAD_DEFAULT_STREAM (the same ladder
 * when the symbol has no per-thread variant).  A step says: from this
 * requested version on, the answer is this export, until the next step.
 */
#ifndef VGPU_LC_PROCADDR_H
#define VGPU_LC_PROCADDR_H

#include <stdint.h>

struct lc_pa_step {
	int version;		/* lowest cudaVersion this step answers */
	void (*fn)(void);	/* our export; called only through a cast */
};

struct lc_pa_sym {
	const char *name;
	uint16_t legacy, nlegacy;	/* first step and count: flags 0 and 1 */
	uint16_t ptds, nptds;		/* the same for flag 2 */
};

struct lc_pa_table {
	const struct lc_pa_sym *syms;
	unsigned nsyms;
	const struct lc_pa_step *steps;
};

extern const struct lc_pa_table lc_procaddr_table
	__attribute__((visibility("hidden")));

#endif
