/*
 * MD2 as RFC 1319 specifies it: pad to whole 16-byte blocks with n bytes of
 * value n, append the 16-byte checksum, and run every block through the
 * 18-round transformation over a 48-byte state; the digest is the first 16
 * bytes of the state.  S is the RFC's permutation of 0..255 built from the
 * digits of pi.
 */
#include <string.h>

#include "md2.h"

static const uint8_t S[256] = {
	41, 46, 67, 201, 162, 216, 124, 1, 61, 54, 84, 161, 236, 240, 6, 19,
	98, 167, 5, 243, 192, 199, 115, 140, 152, 147, 43, 217, 188, 76, 130, 202,
	30, 155, 87, 60, 253, 212, 224, 22, 103, 66, 111, 24, 138, 23, 229, 18,
	190, 78, 196, 214, 218, 158, 222, 73, 160, 251, 245, 142, 187, 47, 238, 122,
	169, 104, 121, 145, 21, 178, 7, 63, 148, 194, 16, 137, 11, 34, 95, 33,
	128, 127, 93, 154, 90, 144, 50, 39, 53, 62, 204, 231, 191, 247, 151, 3,
	255, 25, 48, 179, 72, 165, 181, 209, 215, 94, 146, 42, 172, 86, 170, 198,
	79, 184, 56, 210, 150, 164, 125, 182, 118, 252, 107, 226, 156, 116, 4, 241,
	69, 157, 112, 89, 100, 113, 135, 32, 134, 91, 207, 101, 230, 45, 168, 2,
	27, 96, 37, 173, 174, 176, 185, 246, 28, 70, 97, 105, 52, 64, 126, 15,
	85, 71, 163, 35, 221, 81, 175, 58, 195, 92, 249, 206, 186, 197, 234, 38,
	44, 83, 13, 110, 133, 40, 132, 9, 211, 223, 205, 244, 65, 129, 77, 82,
	106, 220, 55, 200, 108, 193, 171, 250, 36, 225, 123, 8, 12, 189, 177, 74,
	120, 136, 149, 139, 227, 99, 232, 109, 233, 203, 213, 254, 59, 0, 29, 57,
	242, 239, 183, 14, 102, 88, 208, 228, 166, 119, 114, 248, 235, 117, 75, 10,
	49, 68, 80, 180, 143, 237, 31, 26, 219, 153, 141, 51, 159, 17, 131, 20,
};

void lc_md2_init(struct lc_md2 *m)
{
	memset(m, 0, sizeof(*m));
}

/* One block: the checksum update, then the state transformation. */
static void md2_block(struct lc_md2 *m, const uint8_t *blk, int with_sum)
{
	uint8_t t;
	int j, k;

	if (with_sum) {
		t = m->sum[LC_MD2_BLOCK - 1];
		for (j = 0; j < LC_MD2_BLOCK; j++) {
			m->sum[j] ^= S[blk[j] ^ t];
			t = m->sum[j];
		}
	}
	for (j = 0; j < LC_MD2_BLOCK; j++) {
		m->state[16 + j] = blk[j];
		m->state[32 + j] = m->state[16 + j] ^ m->state[j];
	}
	t = 0;
	for (j = 0; j < 18; j++) {
		for (k = 0; k < 48; k++) {
			m->state[k] ^= S[t];
			t = m->state[k];
		}
		t = (uint8_t)(t + j);
	}
}

void lc_md2_update(struct lc_md2 *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t take;

	while (len) {
		take = LC_MD2_BLOCK - m->nbuf;
		if (take > len)
			take = len;
		memcpy(m->buf + m->nbuf, p, take);
		m->nbuf += take;
		p += take;
		len -= take;
		if (m->nbuf == LC_MD2_BLOCK) {
			md2_block(m, m->buf, 1);
			m->nbuf = 0;
		}
	}
}

void lc_md2_final(struct lc_md2 *m, uint8_t out[LC_MD2_DIGEST])
{
	uint8_t pad = (uint8_t)(LC_MD2_BLOCK - m->nbuf);
	uint8_t sum[LC_MD2_BLOCK];

	memset(m->buf + m->nbuf, pad, pad);
	md2_block(m, m->buf, 1);
	/* The checksum block itself does not feed the checksum. */
	memcpy(sum, m->sum, sizeof(sum));
	md2_block(m, sum, 0);
	memcpy(out, m->state, LC_MD2_DIGEST);
	memset(m, 0, sizeof(*m));
}

void lc_hmac_md2(const uint8_t key[LC_MD2_BLOCK], const void *msg, size_t len,
		 uint8_t out[LC_MD2_DIGEST])
{
	uint8_t pad[LC_MD2_BLOCK], inner[LC_MD2_DIGEST];
	struct lc_md2 m;
	int i;

	for (i = 0; i < LC_MD2_BLOCK; i++)
		pad[i] = key[i] ^ 0x36;
	lc_md2_init(&m);
	lc_md2_update(&m, pad, sizeof(pad));
	lc_md2_update(&m, msg, len);
	lc_md2_final(&m, inner);
	for (i = 0; i < LC_MD2_BLOCK; i++)
		pad[i] = key[i] ^ 0x5c;
	lc_md2_init(&m);
	lc_md2_update(&m, pad, sizeof(pad));
	lc_md2_update(&m, inner, sizeof(inner));
	lc_md2_final(&m, out);
}
