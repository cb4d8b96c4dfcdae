/* SPDX-License-Identifier: MIT */
/*
 * llama-drive: loads llama.cpp's shared libraries from a directory at run
 * time (no build-time dependency on llama.cpp), loads a GGUF model with
 * every layer offloaded when a GPU backend is present, runs a prompt of
 * token ids as one batch, then decodes N tokens greedily (argmax over the
 * logits, done here, so the ids depend only on the logits).
 *
 *   llama-drive [-p ID,ID,...] [-P N] [-n N] [-c CTX] [-t THREADS] [-r N]
 *               [--cpu] [--no-warmup] [-v] LIBDIR MODEL
 *
 * Prints "IDS id id ...", "PATH file" for each libcuda* mapped and
 * "NVML yes|no" (the GPU runner's proof of path), and last one line:
 *   RESULT backend=... gpus=... backends_ms=... load_ms=... ctx_ms=... warmup_ms=... prompt_n=...
 *          prompt_ms=... prompt_tok_s=... decode_n=... decode_ms=...
 *          decode_tok_s=... ids_sha=...
 * (ids_sha: FNV-1a 64 over the generated ids as little-endian int32.)
 *
 * Only the llama.cpp release b7324 ABI is used.  The structures passed by
 * value are handled as opaque byte blocks of their b7324 size, filled by
 * the library's own *_default_params(); this program writes only the
 * fields at the offsets listed below, checked against b7324's
 * llama_model_default_params / llama_context_default_params /
 * llama_batch_get_one machine code.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../pathproof.h"

#define LD_PROMPT_MAX 8192
#define LD_GEN_MAX 100000
#define LD_PATH_MAX 4096
#define LD_FIRST_PIECE 259

/* b7324: struct llama_model_params, 72 bytes. */
#define LD_MP_SIZE 72
#define LD_MP_N_GPU_LAYERS 16 /* int32_t */

/* b7324: struct llama_context_params, 120 bytes. */
#define LD_CP_SIZE 120
#define LD_CP_N_CTX 0            /* uint32_t */
#define LD_CP_N_BATCH 4          /* uint32_t */
#define LD_CP_N_UBATCH 8         /* uint32_t */
#define LD_CP_N_SEQ_MAX 12       /* uint32_t */
#define LD_CP_N_THREADS 16       /* int32_t */
#define LD_CP_N_THREADS_BATCH 20 /* int32_t */

/* ggml_backend_dev_type: CPU 0, GPU 1, IGPU 2, ACCEL 3 (b7324). */
#define LD_DEV_GPU 1
#define LD_DEV_IGPU 2

/* Opaque by-value blocks (the ABI passes structs this large in memory). */
struct ld_mparams {
	_Alignas(8) unsigned char b[LD_MP_SIZE];
};
struct ld_cparams {
	_Alignas(8) unsigned char b[LD_CP_SIZE];
};

/* b7324: struct llama_batch (56 bytes); only get_one builds ours. */
struct ld_batch {
	int32_t n_tokens;
	int32_t *token;
	float *embd;
	int32_t *pos;
	int32_t *n_seq_id;
	int32_t **seq_id;
	int8_t *logits;
};

_Static_assert(sizeof(struct ld_batch) == 56, "llama_batch is 56 bytes in b7324");

struct ld_api {
	void (*backend_load_all_from_path)(const char *dir);
	size_t (*dev_count)(void);
	void *(*dev_get)(size_t i);
	int (*dev_type)(void *dev);
	const char *(*dev_name)(void *dev);
	const char *(*dev_description)(void *dev);
	void (*log_set)(void (*cb)(int level, const char *text, void *ud), void *ud);
	void (*ggml_log_set)(void (*cb)(int level, const char *text, void *ud), void *ud);

	void (*backend_init)(void);
	void (*backend_free)(void);
	struct ld_mparams (*model_default_params)(void);
	void *(*model_load_from_file)(const char *path, struct ld_mparams p);
	void (*model_free)(void *model);
	const void *(*model_get_vocab)(const void *model);
	int32_t (*vocab_n_tokens)(const void *vocab);
	struct ld_cparams (*context_default_params)(void);
	void *(*init_from_model)(void *model, struct ld_cparams p);
	void (*free)(void *ctx);
	struct ld_batch (*batch_get_one)(int32_t *tokens, int32_t n);
	int32_t (*decode)(void *ctx, struct ld_batch b);
	float *(*get_logits_ith)(void *ctx, int32_t i);
	void (*synchronize)(void *ctx);
	void *(*get_memory)(void *ctx);
	void (*memory_clear)(void *mem, _Bool data);
};

struct ld_opts {
	int32_t prompt[LD_PROMPT_MAX];
	int n_prompt;
	int n_synth; /* -P: a made-up prompt of this many ids */
	int pp_reps; /* -r: prompt runs timed (memory cleared between) */
	int n_gen;
	int n_ctx;
	int threads;
	int cpu_only;
	int warmup;
	int verbose;
	const char *libdir;
	const char *model;
};

static int ld_verbose;

/* With -v: "llama-drive: phase NAME at SECONDS" (CLOCK_MONOTONIC), for
 * lining a run up with the worker's trace (tests/gpu/llama/profile-llama). */
static void ld_phase(const char *name)
{
	struct timespec ts;

	if (!ld_verbose)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(stderr, "llama-drive: phase %s at %ld.%06ld\n", name, (long)ts.tv_sec, ts.tv_nsec / 1000);
}

static void ld_log(int level, const char *text, void *ud)
{
	(void)level;
	(void)ud;
	if (ld_verbose)
		fputs(text, stderr);
}

static double ld_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *ld_open(const char *dir, const char *const *names)
{
	char path[LD_PATH_MAX];
	void *h;
	int i;

	for (i = 0; names[i]; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
		if (h)
			return h;
		if (ld_verbose)
			fprintf(stderr, "llama-drive: %s\n", dlerror());
	}
	fprintf(stderr, "llama-drive: no %s in %s\n", names[0], dir);
	return NULL;
}

static int ld_sym(void *h, const char *name, void *slot)
{
	void *p = dlsym(h, name);

	if (!p) {
		fprintf(stderr, "llama-drive: missing symbol %s\n", name);
		return -ENOENT;
	}
	memcpy(slot, &p, sizeof(p));
	return 0;
}

/* libllama and libggml as the npm package names them, or as a plain build does. */
static int ld_api_load(struct ld_api *a, const char *dir)
{
	static const char *const llama_names[] = {
		"libllama.so", "libllama.cuda.b7324.so", "libllama.so.0", NULL };
	static const char *const ggml_names[] = {
		"libggml.so", "libggml.cuda.b7324.so", "libggml.so.0", NULL };
	static const char *const base_names[] = { "libggml-base.so", "libggml-base.so.0", NULL };
	void *ll, *gg, *gb;
	int r = 0;

	gb = ld_open(dir, base_names);
	gg = ld_open(dir, ggml_names);
	ll = ld_open(dir, llama_names);
	if (!gb || !gg || !ll)
		return -ENOENT;
	r |= ld_sym(gg, "ggml_backend_load_all_from_path", &a->backend_load_all_from_path);
	r |= ld_sym(gg, "ggml_backend_dev_count", &a->dev_count);
	r |= ld_sym(gg, "ggml_backend_dev_get", &a->dev_get);
	r |= ld_sym(gb, "ggml_backend_dev_type", &a->dev_type);
	r |= ld_sym(gb, "ggml_backend_dev_name", &a->dev_name);
	r |= ld_sym(gb, "ggml_backend_dev_description", &a->dev_description);
	r |= ld_sym(gb, "ggml_log_set", &a->ggml_log_set);
	r |= ld_sym(ll, "llama_log_set", &a->log_set);
	r |= ld_sym(ll, "llama_backend_init", &a->backend_init);
	r |= ld_sym(ll, "llama_backend_free", &a->backend_free);
	r |= ld_sym(ll, "llama_model_default_params", &a->model_default_params);
	r |= ld_sym(ll, "llama_model_load_from_file", &a->model_load_from_file);
	r |= ld_sym(ll, "llama_model_free", &a->model_free);
	r |= ld_sym(ll, "llama_model_get_vocab", &a->model_get_vocab);
	r |= ld_sym(ll, "llama_vocab_n_tokens", &a->vocab_n_tokens);
	r |= ld_sym(ll, "llama_context_default_params", &a->context_default_params);
	r |= ld_sym(ll, "llama_init_from_model", &a->init_from_model);
	r |= ld_sym(ll, "llama_free", &a->free);
	r |= ld_sym(ll, "llama_batch_get_one", &a->batch_get_one);
	r |= ld_sym(ll, "llama_decode", &a->decode);
	r |= ld_sym(ll, "llama_get_logits_ith", &a->get_logits_ith);
	r |= ld_sym(ll, "llama_synchronize", &a->synchronize);
	r |= ld_sym(ll, "llama_get_memory", &a->get_memory);
	r |= ld_sym(ll, "llama_memory_clear", &a->memory_clear);
	return r ? -ENOENT : 0;
}

static void ld_put_u32(unsigned char *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

/* The first index of the largest logit; -1 if any logit is not finite
 * (every comparison with a NaN is false, which would pick id 0 forever). */
static int32_t ld_argmax(const float *logits, int32_t n)
{
	int32_t i, best = 0;

	for (i = 0; i < n; i++) {
		if (!isfinite(logits[i])) {
			fprintf(stderr, "llama-drive: logit %d is not finite\n", i);
			return -1;
		}
		if (logits[i] > logits[best])
			best = i;
	}
	return best;
}

static uint64_t ld_fnv(uint64_t h, int32_t id)
{
	uint32_t v = (uint32_t)id;
	int i;

	for (i = 0; i < 4; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= 0x100000001b3ull;
	}
	return h;
}

static int ld_parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static int ld_parse_ids(const char *s, struct ld_opts *o)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int r = 0, v;

	if (!copy)
		return -ENOMEM;
	o->n_prompt = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (o->n_prompt >= LD_PROMPT_MAX || ld_parse_int(tok, 0, INT32_MAX, &v) < 0) {
			r = -EINVAL;
			break;
		}
		o->prompt[o->n_prompt++] = v;
	}
	free(copy);
	return r;
}

static void ld_usage(void)
{
	fprintf(stderr,
		"usage: llama-drive [-p ID,ID,...] [-P N] [-n N] [-c CTX] [-t THREADS] [-r N]\n"
		"                   [--cpu] [--no-warmup] [-v] LIBDIR MODEL\n"
		"  -p  prompt token ids (default: -P 32)\n"
		"  -P  a prompt of N ids spread over the vocabulary's filler pieces\n"
		"  -n  tokens to generate (default 128)\n"
		"  -c  context size (default: prompt + n + 16)\n"
		"  -r  time the prompt N times, the memory cleared in between (default 1)\n"
		"Also prints PATH lines (each libcuda* mapped) and NVML yes|no.\n");
}

static int ld_args(int argc, char **argv, struct ld_opts *o)
{
	int i, v;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--cpu") == 0) {
			o->cpu_only = 1;
		} else if (strcmp(a, "--no-warmup") == 0) {
			o->warmup = 0;
		} else if (strcmp(a, "-v") == 0) {
			o->verbose = 1;
		} else if (a[0] == '-' && a[1] && !a[2] && strchr("pPnctr", a[1])) {
			if (++i >= argc)
				return -EINVAL;
			if (a[1] == 'p') {
				if (ld_parse_ids(argv[i], o) < 0)
					return -EINVAL;
				continue;
			}
			if (ld_parse_int(argv[i], a[1] == 't' ? 0 : 1,
					 a[1] == 'P' ? LD_PROMPT_MAX : LD_GEN_MAX * 2, &v) < 0)
				return -EINVAL;
			if (a[1] == 'P')
				o->n_synth = v;
			else if (a[1] == 'n') {
				if (v > LD_GEN_MAX)
					return -EINVAL;
				o->n_gen = v;
			} else if (a[1] == 'c') {
				o->n_ctx = v;
			} else if (a[1] == 'r') {
				if (v > 1000)
					return -EINVAL;
				o->pp_reps = v;
			} else {
				o->threads = v;
			}
		} else if (a[0] == '-') {
			return -EINVAL;
		} else if (!o->libdir) {
			o->libdir = a;
		} else if (!o->model) {
			o->model = a;
		} else {
			return -EINVAL;
		}
	}
	return o->libdir && o->model ? 0 : -EINVAL;
}

/* Counts GPU devices; prints every device on stderr. */
static int ld_gpus(const struct ld_api *a, const char **first)
{
	size_t i, n = a->dev_count();
	int gpus = 0;

	*first = "CPU";
	for (i = 0; i < n; i++) {
		void *dev = a->dev_get(i);
		int type = a->dev_type(dev);

		fprintf(stderr, "llama-drive: device %zu: %s (%s), type %d\n", i, a->dev_name(dev),
			a->dev_description(dev), type);
		if ((type == LD_DEV_GPU || type == LD_DEV_IGPU) && gpus++ == 0)
			*first = a->dev_name(dev);
	}
	return gpus;
}

/* Decodes one token and returns the argmax of its logits, or -1. */
static int32_t ld_step(const struct ld_api *a, void *ctx, int32_t *tokens, int32_t n,
		       int32_t n_vocab)
{
	float *logits;

	if (a->decode(ctx, a->batch_get_one(tokens, n)) != 0) {
		fprintf(stderr, "llama-drive: llama_decode failed\n");
		return -1;
	}
	logits = a->get_logits_ith(ctx, -1);
	if (!logits) {
		fprintf(stderr, "llama-drive: no logits\n");
		return -1;
	}
	return ld_argmax(logits, n_vocab);
}

int main(int argc, char **argv)
{
	static struct ld_opts o = { .n_gen = 128, .warmup = 1, .pp_reps = 1 };
	struct ld_api a;
	struct ld_mparams mp;
	struct ld_cparams cp;
	void *model = NULL, *ctx = NULL;
	int32_t *ids = NULL, n_vocab, tok = -1, i, warm[2] = { 1, 1 };
	const char *backend;
	double t0, backends_ms, load_ms, ctx_ms, warm_ms = 0, prompt_ms, decode_ms;
	uint64_t sha = 0xcbf29ce484222325ull;
	int gpus, rc = 1;

	if (ld_args(argc, argv, &o) < 0) {
		ld_usage();
		return 2;
	}
	if (o.n_prompt == 0 && o.n_synth == 0)
		o.n_synth = 32;
	if (o.n_synth)
		o.n_prompt = o.n_synth;
	if (o.n_ctx == 0)
		o.n_ctx = o.n_prompt + o.n_gen + 16;
	ld_verbose = o.verbose;
	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&a, 0, sizeof(a));
	if (ld_api_load(&a, o.libdir) < 0)
		return 1;
	a.ggml_log_set(ld_log, NULL);
	a.log_set(ld_log, NULL);
	t0 = ld_now_ms();
	a.backend_load_all_from_path(o.libdir);
	a.backend_init();
	backends_ms = ld_now_ms() - t0;
	gpus = ld_gpus(&a, &backend);
	if (o.cpu_only)
		backend = "CPU";

	mp = a.model_default_params();
	ld_put_u32(mp.b, LD_MP_N_GPU_LAYERS, gpus > 0 && !o.cpu_only ? 999 : 0);
	ld_phase("load");
	t0 = ld_now_ms();
	model = a.model_load_from_file(o.model, mp);
	load_ms = ld_now_ms() - t0;
	if (!model) {
		fprintf(stderr, "llama-drive: cannot load %s (-v shows why)\n", o.model);
		goto cleanup;
	}
	n_vocab = a.vocab_n_tokens(a.model_get_vocab(model));
	/* Past <unk> <s> </s> and the 256 byte tokens of gguf-gen's vocabulary. */
	for (i = 0; i < o.n_synth && n_vocab > LD_FIRST_PIECE; i++)
		o.prompt[i] = LD_FIRST_PIECE + (int32_t)((i * 7919u) % (uint32_t)(n_vocab - LD_FIRST_PIECE));
	for (i = 0; i < o.n_prompt; i++) {
		if (o.prompt[i] >= n_vocab) {
			fprintf(stderr, "llama-drive: prompt id %d >= vocabulary %d\n",
				o.prompt[i], n_vocab);
			goto cleanup;
		}
	}

	cp = a.context_default_params();
	ld_put_u32(cp.b, LD_CP_N_CTX, (uint32_t)o.n_ctx);
	ld_put_u32(cp.b, LD_CP_N_BATCH, (uint32_t)(o.n_prompt > 512 ? o.n_prompt : 512));
	ld_put_u32(cp.b, LD_CP_N_UBATCH, (uint32_t)(o.n_prompt > 512 ? o.n_prompt : 512));
	ld_put_u32(cp.b, LD_CP_N_SEQ_MAX, 1);
	if (o.threads > 0) {
		ld_put_u32(cp.b, LD_CP_N_THREADS, (uint32_t)o.threads);
		ld_put_u32(cp.b, LD_CP_N_THREADS_BATCH, (uint32_t)o.threads);
	}
	ld_phase("context");
	t0 = ld_now_ms();
	ctx = a.init_from_model(model, cp);
	ctx_ms = ld_now_ms() - t0;
	if (!ctx) {
		fprintf(stderr, "llama-drive: cannot create a context (-v shows why)\n");
		goto cleanup;
	}

	/* Warm-up as llama-bench does: one batch of the prompt's size and one
	 * token, then the memory is cleared, so one-time set-up (cuBLAS's
	 * handles and kernels, first launches) stays out of the timings. */
	ld_phase("warmup");
	if (o.warmup) {
		t0 = ld_now_ms();
		if (ld_step(&a, ctx, o.prompt, o.n_prompt, n_vocab) < 0 ||
		    ld_step(&a, ctx, warm, 1, n_vocab) < 0)
			goto cleanup;
		a.synchronize(ctx);
		a.memory_clear(a.get_memory(ctx), 1);
		warm_ms = ld_now_ms() - t0;
	}

	ids = calloc((size_t)o.n_gen + 1, sizeof(*ids));
	if (!ids)
		goto cleanup;
	ld_phase("prompt");
	prompt_ms = 0;
	for (i = 0; i < o.pp_reps; i++) {
		if (i > 0)
			a.memory_clear(a.get_memory(ctx), 1);
		t0 = ld_now_ms();
		tok = ld_step(&a, ctx, o.prompt, o.n_prompt, n_vocab);
		prompt_ms += ld_now_ms() - t0;
		if (tok < 0)
			goto cleanup;
	}
	prompt_ms /= o.pp_reps;
	ld_phase("decode");
	/* Each generated id is fed back: n_gen single-token decodes. */
	t0 = ld_now_ms();
	for (i = 0; i < o.n_gen; i++) {
		ids[i] = tok;
		sha = ld_fnv(sha, tok);
		tok = ld_step(&a, ctx, &ids[i], 1, n_vocab);
		if (tok < 0)
			goto cleanup;
	}
	a.synchronize(ctx);
	decode_ms = ld_now_ms() - t0;
	ld_phase("end");

	printf("IDS");
	for (i = 0; i < o.n_gen; i++)
		printf(" %d", ids[i]);
	printf("\n");
	vg_print_path_proof();
	printf("RESULT backend=%s gpus=%d backends_ms=%.1f load_ms=%.1f ctx_ms=%.1f warmup_ms=%.1f prompt_n=%d "
	       "prompt_ms=%.2f prompt_tok_s=%.2f decode_n=%d decode_ms=%.2f decode_tok_s=%.2f "
	       "ids_sha=%016llx\n",
	       backend, o.cpu_only ? 0 : gpus, backends_ms, load_ms, ctx_ms, warm_ms, o.n_prompt, prompt_ms,
	       o.n_prompt / (prompt_ms / 1e3), o.n_gen, decode_ms,
	       o.n_gen / (decode_ms / 1e3), (unsigned long long)sha);
	rc = 0;

cleanup:
	if (ctx)
		a.free(ctx);
	if (model)
		a.model_free(model);
	if (a.backend_free)
		a.backend_free();
	free(ids);
	return rc;
}
