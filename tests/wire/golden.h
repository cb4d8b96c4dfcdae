/*
 * Golden messages of wire protocol v1, written byte by byte by hand from the
 * layouts documented in include/vgpu/wire.h (never produced by the encoder).
 * Each is a whole message: the 32-byte header, then the payload.
 */
#ifndef VGPU_TEST_GOLDEN_H
#define VGPU_TEST_GOLDEN_H

#include <stddef.h>
#include <stdint.h>

struct golden {
	const char *name;
	const uint8_t *bytes;
	size_t len;
};

extern const struct golden golden_hello;         /* two environment entries */
extern const struct golden golden_welcome;       /* a refusal with text */
extern const struct golden golden_thread_open;
extern const struct golden golden_thread_opened;
extern const struct golden golden_call;          /* NO_REPLY, 12-byte payload */
extern const struct golden golden_reply;         /* status 700, no payload */
extern const struct golden golden_host_call;
extern const struct golden golden_host_return;
extern const struct golden golden_error;
extern const struct golden golden_stats;
extern const struct golden golden_stats_reply;
extern const struct golden golden_attach;
extern const struct golden golden_auth1;         /* AUTH step 1: the guest's nonce */
extern const struct golden golden_auth2;         /* AUTH step 2: nonce and proof */
extern const struct golden golden_auth3;         /* AUTH step 3: the guest's proof */

/* Every golden above, in kind order. */
extern const struct golden *const golden_all[];
extern const size_t golden_count;

#endif
