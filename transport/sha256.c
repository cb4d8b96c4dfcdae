/*
 * SHA-256 (FIPS 180-4), written from the standard: a portable block
 * function and, where the CPU has the SHA extensions, one built on them
 * (module images of 100 MB are hashed on every load, so speed matters:
 * the portable code does ~0.3 GB/s, the extensions ~1.5 GB/s).
 */
#include <stdint.h>
#include <string.h>

#include "tp.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n)
{
	return (x >> n) | (x << (32 - n));
}

static void blocks_portable(uint32_t s[8], const uint8_t *p, size_t nblocks)
{
	uint32_t w[64], a, b, c, d, e, f, g, h, t1, t2;
	int i;

	while (nblocks--) {
		for (i = 0; i < 16; i++)
			w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
			       p[4 * i + 3];
		for (i = 16; i < 64; i++) {
			uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
			uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);

			w[i] = w[i - 16] + s0 + w[i - 7] + s1;
		}
		a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
		for (i = 0; i < 64; i++) {
			t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
			t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
			h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
		}
		s[0] += a, s[1] += b, s[2] += c, s[3] += d, s[4] += e, s[5] += f, s[6] += g, s[7] += h;
		p += 64;
	}
}

#if defined(__x86_64__)
/*
 * The extensions keep the state as two vectors, (A,B,E,F) and (C,D,G,H),
 * and do two rounds per sha256rnds2 with the round constants already added
 * to the message words.
 */
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t s[8], const uint8_t *p, size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bll, 0x0405060700010203ll);
	__m128i t, abef, cdgh, abef0, cdgh0, m[4], x;
	int i;

	t = _mm_loadu_si128((const __m128i *)&s[0]);		/* a b c d */
	cdgh = _mm_loadu_si128((const __m128i *)&s[4]);		/* e f g h */
	t = _mm_shuffle_epi32(t, 0xb1);				/* b a d c */
	cdgh = _mm_shuffle_epi32(cdgh, 0x1b);			/* h g f e */
	abef = _mm_alignr_epi8(t, cdgh, 8);			/* f e b a */
	cdgh = _mm_blend_epi16(cdgh, t, 0xf0);			/* h g d c */
	while (nblocks--) {
		abef0 = abef;
		cdgh0 = cdgh;
#pragma GCC unroll 16
		for (i = 0; i < 16; i++) {
			if (i < 4) {
				m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
			} else {
				x = _mm_sha256msg1_epu32(m[i & 3], m[(i + 1) & 3]);
				x = _mm_add_epi32(x, _mm_alignr_epi8(m[(i + 3) & 3], m[(i + 2) & 3], 4));
				m[i & 3] = _mm_sha256msg2_epu32(x, m[(i + 3) & 3]);
			}
			x = _mm_add_epi32(m[i & 3], _mm_loadu_si128((const __m128i *)&K[4 * i]));
			cdgh = _mm_sha256rnds2_epu32(cdgh, abef, x);
			x = _mm_shuffle_epi32(x, 0x0e);
			abef = _mm_sha256rnds2_epu32(abef, cdgh, x);
		}
		abef = _mm_add_epi32(abef, abef0);
		cdgh = _mm_add_epi32(cdgh, cdgh0);
		p += 64;
	}
	t = _mm_shuffle_epi32(abef, 0x1b);			/* a b e f */
	cdgh = _mm_shuffle_epi32(cdgh, 0xb1);			/* g h c d */
	abef = _mm_blend_epi16(t, cdgh, 0xf0);			/* a b c d */
	cdgh = _mm_alignr_epi8(cdgh, t, 8);			/* e f g h */
	_mm_storeu_si128((__m128i *)&s[0], abef);
	_mm_storeu_si128((__m128i *)&s[4], cdgh);
}

static int have_shani(void)
{
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	if (!(b & (1u << 29)))
		return 0;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & (1u << 19)) && (c & (1u << 9));	/* SSE4.1, SSSE3 */
}
#endif

/* -1: not decided yet; 0: portable; 1: extensions.  Racy but idempotent. */
static int use_fast = -1;

int tp_sha256_force_portable(int on)
{
	int was = use_fast;

#if defined(__x86_64__)
	use_fast = on ? 0 : have_shani();
#else
	use_fast = 0;
#endif
	return was;
}

int tp_sha256_accelerated(void)
{
	if (use_fast < 0)
		tp_sha256_force_portable(0);
	return use_fast;
}

static void blocks(uint32_t s[8], const uint8_t *p, size_t nblocks)
{
#if defined(__x86_64__)
	if (tp_sha256_accelerated()) {
		blocks_shani(s, p, nblocks);
		return;
	}
#endif
	blocks_portable(s, p, nblocks);
}

void tp_sha256_init(struct tp_sha256 *c)
{
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
	};

	memcpy(c->s, iv, sizeof(iv));
	c->n = 0;
	c->fill = 0;
}

void tp_sha256_update(struct tp_sha256 *c, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t k;

	c->n += len;
	if (c->fill) {
		k = 64 - c->fill < len ? 64 - c->fill : len;
		memcpy(c->buf + c->fill, p, k);
		c->fill += (unsigned int)k;
		p += k;
		len -= k;
		if (c->fill < 64)
			return;
		blocks(c->s, c->buf, 1);
		c->fill = 0;
	}
	if (len >= 64) {
		blocks(c->s, p, len / 64);
		p += len & ~(size_t)63;
		len &= 63;
	}
	memcpy(c->buf, p, len);
	c->fill = (unsigned int)len;
}

void tp_sha256_final(struct tp_sha256 *c, uint8_t out[TP_SHA256_LEN])
{
	uint64_t bits = c->n * 8;
	int i;

	c->buf[c->fill++] = 0x80;
	if (c->fill > 56) {
		memset(c->buf + c->fill, 0, 64 - c->fill);
		blocks(c->s, c->buf, 1);
		c->fill = 0;
	}
	memset(c->buf + c->fill, 0, 56 - c->fill);
	for (i = 0; i < 8; i++)
		c->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	blocks(c->s, c->buf, 1);
	for (i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(c->s[i] >> 24);
		out[4 * i + 1] = (uint8_t)(c->s[i] >> 16);
		out[4 * i + 2] = (uint8_t)(c->s[i] >> 8);
		out[4 * i + 3] = (uint8_t)c->s[i];
	}
}

void tp_sha256(const void *data, size_t len, uint8_t out[TP_SHA256_LEN])
{
	struct tp_sha256 c;

	tp_sha256_init(&c);
	tp_sha256_update(&c, data, len);
	tp_sha256_final(&c, out);
}
