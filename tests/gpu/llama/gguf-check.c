/* SPDX-License-Identifier: MIT */
/*
 * gguf-check: an independent reader of the GGUF v3 files gguf-gen writes,
 * for its tests.  It walks the whole header with bounds checks and checks
 * what llama.cpp relies on: magic and version, every key/value readable,
 * the llama keys present, the vocabulary (count, byte tokens, types), each
 * tensor's size from its dimensions and type, offsets aligned, in order
 * and not overlapping, and the file ending exactly after the last tensor.
 *
 *   gguf-check FILE   -> "gguf-check: ok tensors=N kv=M layers=L vocab=V data=BYTES"
 * Exit status 1 with a reason on stderr when anything is wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GC_NAME_MAX 256
#define GC_DIMS_MAX 4
#define GC_ALIGN_DEFAULT 32

struct gc_rd {
	const unsigned char *p;
	uint64_t len, pos;
	int bad;
};

struct gc_facts {
	uint64_t alignment, layers, vocab, tokens, embd;
	int have_arch, have_model, byte_tokens_ok, types_ok, types_n;
};

static int gc_fail(const char *why)
{
	fprintf(stderr, "gguf-check: %s\n", why);
	return -EINVAL;
}

static const unsigned char *gc_take(struct gc_rd *r, uint64_t n)
{
	const unsigned char *p;

	if (r->bad || n > r->len - r->pos) {
		r->bad = 1;
		return NULL;
	}
	p = r->p + r->pos;
	r->pos += n;
	return p;
}

static uint64_t gc_uint(struct gc_rd *r, unsigned n)
{
	const unsigned char *p = gc_take(r, n);
	uint64_t v = 0;
	unsigned i;

	if (!p)
		return 0;
	for (i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* A string; copies at most GC_NAME_MAX - 1 bytes into out when out is set. */
static uint64_t gc_string(struct gc_rd *r, char *out)
{
	uint64_t n = gc_uint(r, 8);
	const unsigned char *p = gc_take(r, n);

	if (out) {
		size_t c = p ? (n < GC_NAME_MAX ? n : GC_NAME_MAX - 1) : 0;

		memcpy(out, p ? p : (const unsigned char *)"", c);
		out[c] = '\0';
	}
	return n;
}

/* Size of one scalar of a GGUF value type; 0 for strings/arrays/unknown. */
static unsigned gc_scalar_size(uint32_t type)
{
	static const unsigned sizes[] = { 1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8 };

	return type < sizeof(sizes) / sizeof(sizes[0]) ? sizes[type] : 0;
}

static void gc_array(struct gc_rd *r, const char *key, struct gc_facts *f)
{
	uint32_t type = (uint32_t)gc_uint(r, 4);
	uint64_t n = gc_uint(r, 8), i;
	char piece[GC_NAME_MAX], want[16];

	if (strcmp(key, "tokenizer.ggml.tokens") == 0) {
		if (type != 8) {
			r->bad = 1;
			return;
		}
		f->tokens = n;
		f->byte_tokens_ok = n > 259;
		for (i = 0; i < n && !r->bad; i++) {
			gc_string(r, piece);
			if (i >= 3 && i < 259) {
				snprintf(want, sizeof(want), "<0x%02X>", (unsigned)(i - 3));
				if (strcmp(piece, want) != 0)
					f->byte_tokens_ok = 0;
			}
		}
		return;
	}
	if (strcmp(key, "tokenizer.ggml.token_type") == 0 && type == 5) {
		f->types_n = (int)(n < INT32_MAX ? n : INT32_MAX);
		f->types_ok = n > 259;
		for (i = 0; i < n && !r->bad; i++) {
			uint32_t t = (uint32_t)gc_uint(r, 4);

			if (i >= 3 && i < 259 && t != 6)
				f->types_ok = 0;
		}
		return;
	}
	if (type == 8) {
		for (i = 0; i < n && !r->bad; i++)
			gc_string(r, NULL);
		return;
	}
	if (gc_scalar_size(type) == 0 || n > r->len / gc_scalar_size(type)) {
		r->bad = 1;
		return;
	}
	gc_take(r, n * gc_scalar_size(type));
}

static void gc_kv(struct gc_rd *r, struct gc_facts *f)
{
	char key[GC_NAME_MAX], val[GC_NAME_MAX];
	uint32_t type;
	uint64_t v;

	gc_string(r, key);
	type = (uint32_t)gc_uint(r, 4);
	if (type == 8) {
		gc_string(r, val);
		if (strcmp(key, "general.architecture") == 0 && strcmp(val, "llama") == 0)
			f->have_arch = 1;
		if (strcmp(key, "tokenizer.ggml.model") == 0 && strcmp(val, "llama") == 0)
			f->have_model = 1;
		return;
	}
	if (type == 9) {
		gc_array(r, key, f);
		return;
	}
	if (gc_scalar_size(type) == 0) {
		r->bad = 1;
		return;
	}
	v = gc_uint(r, gc_scalar_size(type));
	if (strcmp(key, "general.alignment") == 0)
		f->alignment = v;
	else if (strcmp(key, "llama.block_count") == 0)
		f->layers = v;
	else if (strcmp(key, "llama.vocab_size") == 0)
		f->vocab = v;
	else if (strcmp(key, "llama.embedding_length") == 0)
		f->embd = v;
}

static int gc_check(const unsigned char *p, uint64_t len)
{
	struct gc_rd r = { .p = p, .len = len };
	struct gc_facts f = { .alignment = GC_ALIGN_DEFAULT };
	uint64_t n_tensors, n_kv, i, next = 0, data_start, end = 0;
	char name[GC_NAME_MAX];

	if (len < 24 || memcmp(p, "GGUF", 4) != 0)
		return gc_fail("no GGUF magic");
	gc_take(&r, 4);
	if (gc_uint(&r, 4) != 3)
		return gc_fail("not version 3");
	n_tensors = gc_uint(&r, 8);
	n_kv = gc_uint(&r, 8);
	for (i = 0; i < n_kv && !r.bad; i++)
		gc_kv(&r, &f);
	if (r.bad)
		return gc_fail("key/values run past the end or have a bad type");
	if (!f.have_arch || !f.have_model)
		return gc_fail("general.architecture or tokenizer.ggml.model is not \"llama\"");
	if (f.layers == 0 || f.embd == 0 || f.vocab == 0)
		return gc_fail("llama.block_count, embedding_length or vocab_size missing");
	if (f.tokens != f.vocab || (uint64_t)f.types_n != f.vocab)
		return gc_fail("token/type counts differ from llama.vocab_size");
	if (!f.byte_tokens_ok || !f.types_ok)
		return gc_fail("tokens 3..258 are not the byte tokens <0x00>..<0xFF>");
	if (f.alignment == 0 || (f.alignment & (f.alignment - 1)))
		return gc_fail("general.alignment is not a power of two");
	if (n_tensors != 3 + 9 * f.layers)
		return gc_fail("tensor count is not 3 + 9 per layer");

	/* Tensor infos: sizes and offsets, then where the data section starts. */
	{
		uint64_t *off = calloc(n_tensors, sizeof(*off));
		uint64_t *size = calloc(n_tensors, sizeof(*size));
		int rc = 0;

		if (!off || !size) {
			free(off);
			free(size);
			return gc_fail("out of memory");
		}
		for (i = 0; i < n_tensors && !r.bad; i++) {
			uint32_t nd, type, d;
			uint64_t elems = 1;

			gc_string(&r, name);
			nd = (uint32_t)gc_uint(&r, 4);
			if (nd == 0 || nd > GC_DIMS_MAX) {
				r.bad = 1;
				break;
			}
			for (d = 0; d < nd; d++)
				elems *= gc_uint(&r, 8);
			type = (uint32_t)gc_uint(&r, 4);
			if (type > 1) {
				r.bad = 1;
				break;
			}
			size[i] = elems * (type == 0 ? 4 : 2);
			off[i] = gc_uint(&r, 8);
		}
		data_start = (r.pos + f.alignment - 1) / f.alignment * f.alignment;
		if (r.bad)
			rc = gc_fail("tensor infos run past the end or have a bad rank/type");
		for (i = 0; i < n_tensors && !rc; i++) {
			if (off[i] % f.alignment)
				rc = gc_fail("a tensor offset is not aligned");
			else if (off[i] < next)
				rc = gc_fail("tensor data overlap or are out of order");
			next = off[i] + size[i];
			end = next;
		}
		free(off);
		free(size);
		if (rc)
			return rc;
	}
	if (data_start + end != len)
		return gc_fail("the file does not end right after the last tensor");
	printf("gguf-check: ok tensors=%llu kv=%llu layers=%llu vocab=%llu data=%llu\n",
	       (unsigned long long)n_tensors, (unsigned long long)n_kv,
	       (unsigned long long)f.layers, (unsigned long long)f.vocab,
	       (unsigned long long)end);
	return 0;
}

int main(int argc, char **argv)
{
	struct stat st;
	void *p;
	int fd, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: gguf-check FILE\n");
		return 2;
	}
	fd = open(argv[1], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 1;
	}
	if (st.st_size == 0) {
		fprintf(stderr, "gguf-check: empty file\n");
		close(fd);
		return 1;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	rc = gc_check(p, (uint64_t)st.st_size);
	munmap(p, (size_t)st.st_size);
	return rc ? 1 : 0;
}
