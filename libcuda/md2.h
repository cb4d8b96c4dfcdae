/*
 * MD2 (RFC 1319) and HMAC-MD2 (RFC 2104 with MD2's 16-byte block): the
 * hash behind the INTEGRITY_CHECK export table.  Prefix lc_md2_.
 */
#ifndef VGPU_LC_MD2_H
#define VGPU_LC_MD2_H

#include <stddef.h>
#include <stdint.h>

#define LC_MD2_BLOCK	16
#define LC_MD2_DIGEST	16

struct lc_md2 {
	uint8_t state[48];		/* X: the 48-byte working buffer */
	uint8_t sum[LC_MD2_BLOCK];	/* C: the running checksum */
	uint8_t buf[LC_MD2_BLOCK];	/* a partial block */
	size_t nbuf;
};

void lc_md2_init(struct lc_md2 *m);
void lc_md2_update(struct lc_md2 *m, const void *data, size_t len);
void lc_md2_final(struct lc_md2 *m, uint8_t out[LC_MD2_DIGEST]);

/* HMAC-MD2 of msg with a key of exactly one block. */
void lc_hmac_md2(const uint8_t key[LC_MD2_BLOCK], const void *msg, size_t len,
		 uint8_t out[LC_MD2_DIGEST]);

#endif
