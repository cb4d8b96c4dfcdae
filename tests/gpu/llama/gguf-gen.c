/* SPDX-License-Identifier: MIT */
/*
 * gguf-gen: writes a GGUF v3 file holding a llama-architecture model of a
 * chosen shape, with random F16 weights and a byte-fallback SentencePiece
 * ("llama") vocabulary.  The weights mean nothing: decode cost depends on
 * the shape alone, and a fixed seed gives the same file byte for byte.
 *
 *   gguf-gen [--layers N] [--embd N] [--heads N] [--kv-heads N] [--ff N]
 *            [--vocab N] [--ctx N] [--seed N] OUTPUT
 *
 * GGUF v3 layout written here (all little-endian):
 *   "GGUF", u32 version 3, u64 tensor count, u64 key/value count,
 *   key/values: string key, u32 type, value (arrays: u32 element type,
 *   u64 count, elements; strings: u64 length, bytes, no NUL),
 *   tensor infos: string name, u32 n_dims, u64 dims[n_dims] (fastest
 *   first), u32 ggml type, u64 offset into the data section,
 *   padding to general.alignment, then the data section (each tensor at
 *   an offset that is a multiple of the alignment).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GG_ALIGN 32u
#define GG_DIM_MAX (1u << 20)
#define GG_LAYERS_MAX 1024u
#define GG_BUF_SIZE (4u << 20)
/* F16 exponent fields of the random values (see gg_f16x4). */
#define GG_EXP_WEIGHT 8u
#define GG_EXP_EMBED 14u

/* GGUF value types. */
enum {
	GG_T_UINT32 = 4,
	GG_T_INT32 = 5,
	GG_T_FLOAT32 = 6,
	GG_T_STRING = 8,
	GG_T_ARRAY = 9,
};

/* ggml tensor types. */
enum {
	GG_GGML_F32 = 0,
	GG_GGML_F16 = 1,
};

/* SentencePiece token types as llama.cpp reads them. */
enum {
	GG_TOK_NORMAL = 1,
	GG_TOK_UNKNOWN = 2,
	GG_TOK_CONTROL = 3,
	GG_TOK_BYTE = 6,
};

#define GG_SPECIAL_TOKENS 3u
#define GG_BYTE_TOKENS 256u

struct gg_shape {
	uint32_t layers, embd, heads, kv_heads, ff, vocab, ctx;
	uint64_t seed;
};

/* A growable byte buffer for the header. */
struct gg_buf {
	unsigned char *p;
	size_t len, cap;
	uint64_t n_kv; /* key/values written so far */
	int err;
};

struct gg_tensor {
	char name[64];
	uint32_t n_dims;
	uint64_t dims[2];
	uint32_t type;
	uint64_t offset, size;
	int ones; /* F32 norm weight: all 1.0 */
	uint32_t exp; /* F16: gg_f16x4's exponent field */
};

static void gg_put(struct gg_buf *b, const void *src, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1u << 16;
		unsigned char *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void gg_u32(struct gg_buf *b, uint32_t v)
{
	unsigned char le[4] = { v, v >> 8, v >> 16, v >> 24 };

	gg_put(b, le, sizeof(le));
}

static void gg_u64(struct gg_buf *b, uint64_t v)
{
	gg_u32(b, (uint32_t)v);
	gg_u32(b, (uint32_t)(v >> 32));
}

static void gg_f32(struct gg_buf *b, float f)
{
	uint32_t v;

	memcpy(&v, &f, sizeof(v));
	gg_u32(b, v);
}

static void gg_str(struct gg_buf *b, const char *s)
{
	size_t n = strlen(s);

	gg_u64(b, n);
	gg_put(b, s, n);
}

static void gg_key(struct gg_buf *b, const char *key)
{
	gg_str(b, key);
	b->n_kv++;
}

static void gg_kv_u32(struct gg_buf *b, const char *key, uint32_t v)
{
	gg_key(b, key);
	gg_u32(b, GG_T_UINT32);
	gg_u32(b, v);
}

static void gg_kv_f32(struct gg_buf *b, const char *key, float v)
{
	gg_key(b, key);
	gg_u32(b, GG_T_FLOAT32);
	gg_f32(b, v);
}

static void gg_kv_str(struct gg_buf *b, const char *key, const char *v)
{
	gg_key(b, key);
	gg_u32(b, GG_T_STRING);
	gg_str(b, v);
}

static void gg_kv_array(struct gg_buf *b, const char *key, uint32_t type, uint64_t n)
{
	gg_key(b, key);
	gg_u32(b, GG_T_ARRAY);
	gg_u32(b, type);
	gg_u64(b, n);
}

/* The vocabulary: <unk> <s> </s>, the 256 byte tokens, then filler pieces. */
static void gg_vocab(struct gg_buf *b, const struct gg_shape *s)
{
	static const char *special[GG_SPECIAL_TOKENS] = { "<unk>", "<s>", "</s>" };
	char piece[32];
	uint32_t i;

	gg_kv_str(b, "tokenizer.ggml.model", "llama");
	gg_kv_array(b, "tokenizer.ggml.tokens", GG_T_STRING, s->vocab);
	for (i = 0; i < s->vocab; i++) {
		if (i < GG_SPECIAL_TOKENS)
			snprintf(piece, sizeof(piece), "%s", special[i]);
		else if (i < GG_SPECIAL_TOKENS + GG_BYTE_TOKENS)
			snprintf(piece, sizeof(piece), "<0x%02X>", i - GG_SPECIAL_TOKENS);
		else /* "\xe2\x96\x81" is SentencePiece's word-start mark */
			snprintf(piece, sizeof(piece), "\xe2\x96\x81t%u", i);
		gg_str(b, piece);
	}
	gg_kv_array(b, "tokenizer.ggml.scores", GG_T_FLOAT32, s->vocab);
	for (i = 0; i < s->vocab; i++)
		gg_f32(b, i < GG_SPECIAL_TOKENS + GG_BYTE_TOKENS ? 0.0f : -(float)i);
	gg_kv_array(b, "tokenizer.ggml.token_type", GG_T_INT32, s->vocab);
	for (i = 0; i < s->vocab; i++) {
		uint32_t t = GG_TOK_NORMAL;

		if (i == 0)
			t = GG_TOK_UNKNOWN;
		else if (i < GG_SPECIAL_TOKENS)
			t = GG_TOK_CONTROL;
		else if (i < GG_SPECIAL_TOKENS + GG_BYTE_TOKENS)
			t = GG_TOK_BYTE;
		gg_u32(b, t);
	}
	gg_kv_u32(b, "tokenizer.ggml.unknown_token_id", 0);
	gg_kv_u32(b, "tokenizer.ggml.bos_token_id", 1);
	gg_kv_u32(b, "tokenizer.ggml.eos_token_id", 2);
}

static void gg_metadata(struct gg_buf *b, const struct gg_shape *s)
{
	gg_kv_str(b, "general.architecture", "llama");
	gg_kv_str(b, "general.name", "vgpu random llama");
	gg_kv_u32(b, "general.alignment", GG_ALIGN);
	gg_kv_u32(b, "general.file_type", 1); /* mostly F16 */
	gg_kv_u32(b, "llama.context_length", s->ctx);
	gg_kv_u32(b, "llama.embedding_length", s->embd);
	gg_kv_u32(b, "llama.block_count", s->layers);
	gg_kv_u32(b, "llama.feed_forward_length", s->ff);
	gg_kv_u32(b, "llama.attention.head_count", s->heads);
	gg_kv_u32(b, "llama.attention.head_count_kv", s->kv_heads);
	gg_kv_u32(b, "llama.rope.dimension_count", s->embd / s->heads);
	gg_kv_f32(b, "llama.rope.freq_base", 10000.0f);
	gg_kv_f32(b, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	gg_kv_u32(b, "llama.vocab_size", s->vocab);
	gg_vocab(b, s);
}

static void gg_tensor_set(struct gg_tensor *t, const char *name, uint64_t d0, uint64_t d1,
			  int norm)
{
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->dims[0] = d0;
	t->dims[1] = d1;
	t->n_dims = norm ? 1 : 2;
	t->type = norm ? GG_GGML_F32 : GG_GGML_F16;
	t->ones = norm;
	t->exp = strcmp(name, "token_embd.weight") == 0 ? GG_EXP_EMBED : GG_EXP_WEIGHT;
	t->size = norm ? d0 * 4 : d0 * d1 * 2;
}

/* Fills t[] (3 + 9 per layer entries); returns the count. */
static size_t gg_tensors(struct gg_tensor *t, const struct gg_shape *s)
{
	uint64_t head = s->embd / s->heads, kv = head * s->kv_heads;
	char name[64];
	size_t n = 0;
	uint32_t l;

	gg_tensor_set(&t[n++], "token_embd.weight", s->embd, s->vocab, 0);
	gg_tensor_set(&t[n++], "output_norm.weight", s->embd, 1, 1);
	gg_tensor_set(&t[n++], "output.weight", s->embd, s->vocab, 0);
	for (l = 0; l < s->layers; l++) {
#define GG_T(suffix, d0, d1, norm) \
	(snprintf(name, sizeof(name), "blk.%u.%s.weight", l, suffix), \
	 gg_tensor_set(&t[n++], name, d0, d1, norm))
		GG_T("attn_norm", s->embd, 1, 1);
		GG_T("attn_q", s->embd, s->embd, 0);
		GG_T("attn_k", s->embd, kv, 0);
		GG_T("attn_v", s->embd, kv, 0);
		GG_T("attn_output", s->embd, s->embd, 0);
		GG_T("ffn_norm", s->embd, 1, 1);
		GG_T("ffn_gate", s->embd, s->ff, 0);
		GG_T("ffn_down", s->ff, s->embd, 0);
		GG_T("ffn_up", s->embd, s->ff, 0);
#undef GG_T
	}
	return n;
}

static uint64_t gg_pad(uint64_t off)
{
	return (off + GG_ALIGN - 1) / GG_ALIGN * GG_ALIGN;
}

/* splitmix64: seeds one independent stream per tensor. */
static uint64_t gg_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/*
 * Four F16 values from 64 random bits: random sign and mantissa, exponent
 * field exp or exp + 1.  Weights use 8 (|w| in [2^-7, 2^-5)): small enough
 * that activations stay far inside F16's range.  The token embeddings use
 * 14 (|w| in [0.5, 2)), so that the current token stays visible next to
 * what the layers add: with embeddings as small as the weights, a deep
 * random model forgets its input and repeats one token forever, and ids
 * that never change would prove little when compared.
 */
static inline uint64_t gg_f16x4(uint64_t r, uint64_t exp)
{
	const uint64_t keep = 0x83ff83ff83ff83ffull; /* sign and mantissa bits */
	uint64_t low_exp_bit = (r >> 10) & 0x0001000100010001ull;

	return (r & keep) | (exp * 0x0400040004000400ull) | (low_exp_bit << 10);
}

static int gg_write_data(FILE *f, const struct gg_tensor *t, size_t n, uint64_t seed,
			 unsigned char *buf)
{
	static const unsigned char zeros[GG_ALIGN];
	uint64_t pos = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t left = t[i].size, state = gg_mix(seed ^ gg_mix(i + 1));

		if (t[i].offset > pos &&
		    fwrite(zeros, 1, t[i].offset - pos, f) != t[i].offset - pos)
			return -EIO;
		pos = t[i].offset;
		while (left > 0) {
			size_t chunk = left < GG_BUF_SIZE ? (size_t)left : GG_BUF_SIZE, j;

			if (t[i].ones) {
				const float one = 1.0f;

				for (j = 0; j + 4 <= chunk; j += 4)
					memcpy(buf + j, &one, 4);
			} else {
				for (j = 0; j + 8 <= chunk; j += 8) {
					uint64_t w;

					state ^= state << 13;
					state ^= state >> 7;
					state ^= state << 17;
					w = gg_f16x4(state, t[i].exp);
					memcpy(buf + j, &w, 8);
				}
				for (; j < chunk; j += 2) {
					uint16_t h = (uint16_t)gg_f16x4(state >> (8 * (j % 8)), t[i].exp);

					memcpy(buf + j, &h, 2);
				}
			}
			if (fwrite(buf, 1, chunk, f) != chunk)
				return -EIO;
			left -= chunk;
			pos += chunk;
		}
	}
	return 0;
}

static int gg_parse_u32(const char *arg, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 0);
	if (errno || *end || end == arg || v == 0 || v > GG_DIM_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static void gg_usage(void)
{
	fprintf(stderr,
		"usage: gguf-gen [--layers N] [--embd N] [--heads N] [--kv-heads N] [--ff N]\n"
		"                [--vocab N] [--ctx N] [--seed N] OUTPUT\n");
}

static int gg_args(int argc, char **argv, struct gg_shape *s, const char **out)
{
	static const char *names[] = { "--layers", "--embd", "--heads", "--kv-heads",
				       "--ff", "--vocab", "--ctx" };
	uint32_t *fields[] = { &s->layers, &s->embd, &s->heads, &s->kv_heads,
			       &s->ff, &s->vocab, &s->ctx };
	int i, k;

	*out = NULL;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			s->seed = strtoull(argv[++i], NULL, 0);
			continue;
		}
		for (k = 0; k < (int)(sizeof(names) / sizeof(names[0])); k++) {
			if (strcmp(argv[i], names[k]) == 0)
				break;
		}
		if (k < (int)(sizeof(names) / sizeof(names[0]))) {
			if (i + 1 >= argc || gg_parse_u32(argv[++i], fields[k]) < 0) {
				fprintf(stderr, "gguf-gen: %s needs a number in 1..%u\n",
					names[k], GG_DIM_MAX);
				return -EINVAL;
			}
			continue;
		}
		if (argv[i][0] == '-' || *out)
			return -EINVAL;
		*out = argv[i];
	}
	if (!*out)
		return -EINVAL;
	if (s->kv_heads == 0)
		s->kv_heads = s->heads;
	if (s->ff == 0)
		s->ff = s->embd * 11 / 4 / 32 * 32;
	if (s->ff == 0 || s->embd % s->heads || s->heads % s->kv_heads ||
	    s->layers > GG_LAYERS_MAX ||
	    s->vocab < GG_SPECIAL_TOKENS + GG_BYTE_TOKENS + 1 || (s->embd / s->heads) % 2) {
		fprintf(stderr, "gguf-gen: bad shape: embd must be a multiple of heads with an even "
			"head size, heads a multiple of kv-heads, vocab > %u, layers <= %u\n",
			GG_SPECIAL_TOKENS + GG_BYTE_TOKENS, GG_LAYERS_MAX);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct gg_shape s = { .layers = 2, .embd = 256, .heads = 8, .kv_heads = 0, .ff = 0,
			      .vocab = 32000, .ctx = 2048, .seed = 1 };
	struct gg_buf hdr = { 0 };
	struct gg_tensor *t = NULL;
	unsigned char *buf = NULL;
	const char *out;
	uint64_t off = 0;
	size_t n, i;
	FILE *f = NULL;
	int rc = 1;

	if (gg_args(argc, argv, &s, &out) < 0) {
		gg_usage();
		return 2;
	}
	t = calloc(3 + 9 * (size_t)s.layers, sizeof(*t));
	buf = malloc(GG_BUF_SIZE);
	if (!t || !buf) {
		fprintf(stderr, "gguf-gen: out of memory\n");
		goto cleanup;
	}
	n = gg_tensors(t, &s);
	for (i = 0; i < n; i++) {
		t[i].offset = off;
		off = gg_pad(off + t[i].size);
	}

	/* The key/value count is patched in once the metadata is written. */
	gg_put(&hdr, "GGUF", 4);
	gg_u32(&hdr, 3);
	gg_u64(&hdr, n);
	gg_u64(&hdr, 0);
	gg_metadata(&hdr, &s);
	if (!hdr.err) {
		for (i = 0; i < 8; i++)
			hdr.p[16 + i] = (unsigned char)(hdr.n_kv >> (8 * i));
	}
	for (i = 0; i < n; i++) {
		gg_str(&hdr, t[i].name);
		gg_u32(&hdr, t[i].n_dims);
		gg_u64(&hdr, t[i].dims[0]);
		if (t[i].n_dims == 2)
			gg_u64(&hdr, t[i].dims[1]);
		gg_u32(&hdr, t[i].type);
		gg_u64(&hdr, t[i].offset);
	}
	while (hdr.len % GG_ALIGN)
		gg_put(&hdr, "", 1);
	if (hdr.err) {
		fprintf(stderr, "gguf-gen: out of memory\n");
		goto cleanup;
	}

	f = fopen(out, "wb");
	if (!f) {
		fprintf(stderr, "gguf-gen: %s: %s\n", out, strerror(errno));
		goto cleanup;
	}
	if (fwrite(hdr.p, 1, hdr.len, f) != hdr.len || gg_write_data(f, t, n, s.seed, buf) < 0 ||
	    fflush(f) != 0) {
		fprintf(stderr, "gguf-gen: %s: write failed: %s\n", out, strerror(errno));
		goto cleanup;
	}
	printf("gguf-gen: %s: %zu tensors, %u layers, embd %u, heads %u/%u, ff %u, vocab %u, "
	       "%llu bytes\n", out, n, s.layers, s.embd, s.heads, s.kv_heads, s.ff, s.vocab,
	       (unsigned long long)(hdr.len + t[n - 1].offset + t[n - 1].size));
	rc = 0;

cleanup:
	if (f && fclose(f) != 0 && rc == 0) {
		fprintf(stderr, "gguf-gen: %s: close failed: %s\n", out, strerror(errno));
		rc = 1;
	}
	free(hdr.p);
	free(buf);
	free(t);
	return rc;
}
