/* SPDX-License-Identifier: MIT */
/*
 * Authentication of connections with a shared secret (the AUTH exchange of
 * include/vgpu/wire.h), and the SHA-256 / HMAC-SHA256 it rests on.
 *
 * The secret is a file's bytes (trailing newlines and spaces dropped), at
 * least TP_SECRET_MIN of them; a file that its group or others may read is
 * refused, as ssh refuses such keys.
 */
#ifndef VGPU_TP_AUTH_H
#define VGPU_TP_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vgpu/wire.h"

struct tp_chan;

#define TP_SHA256_SIZE       32u

struct tp_sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t nbuf;
};

void tp_sha256_init(struct tp_sha256 *s);
void tp_sha256_update(struct tp_sha256 *s, const void *data, size_t n);
void tp_sha256_final(struct tp_sha256 *s, uint8_t out[TP_SHA256_SIZE]);
void tp_sha256(const void *data, size_t n, uint8_t out[TP_SHA256_SIZE]);
/* HMAC-SHA256 of the concatenated iov[] under key. */
void tp_hmac_sha256(const void *key, size_t keylen, const struct iovec *iov, int iovcnt,
		    uint8_t out[TP_SHA256_SIZE]);
/* 1 when equal; the time taken does not depend on where they differ. */
int tp_mem_equal(const void *a, const void *b, size_t n);

#define TP_SECRET_MIN        16u
#define TP_SECRET_MAX        4096u

struct tp_secret {
	size_t len;
	uint8_t key[TP_SECRET_MAX];
};

/* 0, or a negative errno with a sentence in why: -EPERM for a file others
 * may read, -EINVAL for one too short or too long. */
int tp_secret_load(const char *path, struct tp_secret *s, char *why, size_t whylen);

/* Fills p with n bytes from the kernel's random source: 0 or -errno. */
int tp_random(void *p, size_t n);

/*
 * The guest's side of the exchange, first on a new connection: 0, -EACCES
 * when the host's proof is wrong (it does not know the secret), another
 * negative errno when the connection failed or the host refused (an ERROR
 * message: its text goes to why).
 */
int tp_auth_client(struct tp_chan *c, const struct tp_secret *s, char *why, size_t whylen);

/*
 * The host's side.  h and payload are the connection's first message,
 * already received.  s == NULL: this server has no secret.  Returns 1 when
 * the first message was no AUTH and none is needed (the caller handles it),
 * 0 when authenticated (the caller reads the next message), or a negative
 * errno after telling the client why with ERROR: -EACCES (no AUTH where
 * needed, a wrong proof, AUTH to a server without a secret), -EPROTO.
 */
int tp_auth_server(struct tp_chan *c, const struct tp_secret *s, const struct vg_hdr *h,
		   const void *payload, size_t n);

/* Sends ERROR (code: a positive errno) with a text; errors are ignored:
 * the sender closes next anyway. */
void tp_send_error(struct tp_chan *c, uint32_t code, const char *text);

#endif
