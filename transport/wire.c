/*
 * Wire codec: a growable little-endian writer, a bounds-checked reader, and
 * the encoders/decoders of the fixed-layout messages (include/vgpu/wire.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/wire.h"

/* Where zero-length puts and gets point when the buffer has no storage:
 * arithmetic on a NULL pointer is undefined, even + 0. */
static uint8_t empty_bytes[1];

void vg_buf_init(struct vg_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void vg_buf_fini(struct vg_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void vg_buf_reset(struct vg_buf *b)
{
	b->len = 0;
	b->err = 0;
}

void *vg_put_space(struct vg_buf *b, size_t n)
{
	void *p;

	if (b->err)
		return NULL;
	if (n == 0)
		return b->p ? b->p + b->len : empty_bytes;
	if (n > VG_MSG_MAX || b->len + n > VG_MSG_MAX) {
		b->err = -EMSGSIZE;
		return NULL;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->err = -ENOMEM;
			return NULL;
		}
		b->p = np;
		b->cap = cap;
	}
	p = b->p + b->len;
	b->len += n;
	return p;
}

/* n bytes of v, little-endian, at p: one store where the host is little-endian. */
static inline void store_le(uint8_t *p, uint64_t v, int n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, &v, (size_t)n);
#else
	int i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
#endif
}

static void put_le(struct vg_buf *b, uint64_t v, int n)
{
	uint8_t *p = vg_put_space(b, (size_t)n);

	if (p)
		store_le(p, v, n);
}

void vg_put_u8(struct vg_buf *b, uint8_t v)
{
	put_le(b, v, 1);
}

void vg_put_u16(struct vg_buf *b, uint16_t v)
{
	put_le(b, v, 2);
}

void vg_put_u32(struct vg_buf *b, uint32_t v)
{
	put_le(b, v, 4);
}

void vg_put_u64(struct vg_buf *b, uint64_t v)
{
	put_le(b, v, 8);
}

void vg_put_bytes(struct vg_buf *b, const void *p, size_t n)
{
	void *q = vg_put_space(b, n);

	if (q && n)
		memcpy(q, p, n);
}

void vg_put_blob(struct vg_buf *b, const void *p, uint32_t n)
{
	if (!p) {
		vg_put_u32(b, VG_NULL_LEN);
		return;
	}
	if (n == VG_NULL_LEN) {
		b->err = -EMSGSIZE;
		return;
	}
	vg_put_u32(b, n);
	vg_put_bytes(b, p, n);
}

void vg_rd_init(struct vg_rd *r, const void *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->off = 0;
	r->err = 0;
}

const void *vg_get_bytes(struct vg_rd *r, size_t n)
{
	const void *p;

	if (r->err)
		return NULL;
	if (n > r->len - r->off) {
		r->err = -EBADMSG;
		return NULL;
	}
	if (n == 0)
		return r->p ? r->p + r->off : empty_bytes;
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t vg_get_u8(struct vg_rd *r)
{
	return (uint8_t)vg_get_le(r, 1);
}

uint16_t vg_get_u16(struct vg_rd *r)
{
	return (uint16_t)vg_get_le(r, 2);
}

const void *vg_get_blob(struct vg_rd *r, uint32_t max, uint32_t *n, int *is_null)
{
	uint32_t len = vg_get_u32(r);
	const void *p;

	*is_null = 0;
	*n = 0;
	if (r->err)
		return NULL;
	if (len == VG_NULL_LEN) {
		*is_null = 1;
		return NULL;
	}
	if (len > max) {
		r->err = -EMSGSIZE;
		return NULL;
	}
	/* A zero-length blob is not NULL: vg_get_bytes points it somewhere. */
	p = vg_get_bytes(r, len);
	if (p)
		*n = len;
	return p;
}


void vg_hdr_encode(const struct vg_hdr *h, uint8_t out[VG_HDR_SIZE])
{
	store_le(out + 0, h->len, 4);
	store_le(out + 4, h->kind, 2);
	store_le(out + 6, h->flags, 2);
	store_le(out + 8, h->op, 4);
	store_le(out + 12, h->tid, 4);
	store_le(out + 16, h->seq, 8);
	store_le(out + 24, (uint32_t)h->status, 4);
	store_le(out + 28, 0, 4);
}

int vg_hdr_decode(const uint8_t in[VG_HDR_SIZE], struct vg_hdr *h)
{
	h->len = (uint32_t)vg_load_le(in + 0, 4);
	h->kind = (uint16_t)vg_load_le(in + 4, 2);
	h->flags = (uint16_t)vg_load_le(in + 6, 2);
	h->op = (uint32_t)vg_load_le(in + 8, 4);
	h->tid = (uint32_t)vg_load_le(in + 12, 4);
	h->seq = vg_load_le(in + 16, 8);
	h->status = (int32_t)(uint32_t)vg_load_le(in + 24, 4);
	h->reserved = (uint32_t)vg_load_le(in + 28, 4);
	if (h->len > VG_MSG_MAX)
		return -EMSGSIZE;
	if (h->len < VG_HDR_SIZE)
		return -EPROTO;
	if (h->kind < VG_MSG_HELLO || h->kind > VG_MSG_KIND_MAX)
		return -EPROTO;
	if (h->flags & ~VG_F_FLAGS_KNOWN)
		return -EPROTO;
	if (h->reserved != 0)
		return -EPROTO;
	return 0;
}

/*
 * The verdict of a decoder once its last field is read: a blob over its
 * maximum is a size error, any other overrun (truncation) or leftover bytes
 * a protocol error.
 */
static int rd_finish(const struct vg_rd *r)
{
	if (r->err == -EMSGSIZE)
		return -EMSGSIZE;
	if (r->err || r->off != r->len)
		return -EPROTO;
	return 0;
}

/* A decoder's verdict in the middle: 1 while the reader is still sound. */
static int rd_ok(const struct vg_rd *r)
{
	return r->err == 0;
}

int vg_hello_encode(const struct vg_hello *m, struct vg_buf *b)
{
	uint32_t i;

	if (m->nenv > VG_ENV_MAX)
		return -EMSGSIZE;
	for (i = 0; i < m->nenv; i++)
		if (m->env_len[i] == 0 || m->env_len[i] > VG_ENV_ENTRY_MAX || !m->env[i])
			return -EMSGSIZE;
	vg_put_u32(b, m->magic);
	vg_put_u16(b, m->version);
	vg_put_u16(b, m->min_version);
	vg_put_u64(b, m->caps);
	vg_put_u32(b, (uint32_t)m->driver_version);
	vg_put_u32(b, m->pid);
	vg_put_u32(b, m->nenv);
	for (i = 0; i < m->nenv; i++) {
		vg_put_u32(b, m->env_len[i]);
		vg_put_bytes(b, m->env[i], m->env_len[i]);
	}
	return b->err;
}

int vg_hello_decode(struct vg_rd *r, struct vg_hello *m)
{
	uint32_t i;

	memset(m, 0, sizeof(*m));
	m->magic = vg_get_u32(r);
	m->version = vg_get_u16(r);
	m->min_version = vg_get_u16(r);
	m->caps = vg_get_u64(r);
	m->driver_version = (int32_t)vg_get_u32(r);
	m->pid = vg_get_u32(r);
	m->nenv = vg_get_u32(r);
	if (!rd_ok(r))
		return -EPROTO;
	/* Wrong magic: not our protocol at all, whatever follows. */
	if (m->magic != VG_WIRE_MAGIC || m->min_version > m->version)
		return -EPROTO;
	if (m->nenv > VG_ENV_MAX) {
		m->nenv = 0;
		return -EMSGSIZE;
	}
	for (i = 0; i < m->nenv; i++) {
		uint32_t n = vg_get_u32(r);

		if (!rd_ok(r) || n == 0)
			return -EPROTO;
		if (n > VG_ENV_ENTRY_MAX)
			return -EMSGSIZE;
		m->env_len[i] = n;
		m->env[i] = vg_get_bytes(r, n);
		if (!rd_ok(r))
			return -EPROTO;
	}
	return rd_finish(r);
}

int vg_hello_check_version(const struct vg_hello *m)
{
	if (m->min_version > VG_WIRE_VERSION || m->version < VG_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	return 0;
}

int vg_welcome_encode(const struct vg_welcome *m, struct vg_buf *b)
{
	if (m->ntext > VG_TEXT_MAX || (m->ntext && !m->text))
		return -EMSGSIZE;
	vg_put_u16(b, m->version);
	vg_put_u16(b, 0);
	vg_put_u64(b, m->caps);
	vg_put_u32(b, (uint32_t)m->driver_version);
	vg_put_u32(b, m->worker_pid);
	vg_put_u32(b, m->ntext);
	vg_put_bytes(b, m->text, m->ntext);
	return b->err;
}

int vg_welcome_decode(struct vg_rd *r, struct vg_welcome *m)
{
	uint16_t reserved;

	memset(m, 0, sizeof(*m));
	m->version = vg_get_u16(r);
	reserved = vg_get_u16(r);
	m->caps = vg_get_u64(r);
	m->driver_version = (int32_t)vg_get_u32(r);
	m->worker_pid = vg_get_u32(r);
	m->ntext = vg_get_u32(r);
	if (!rd_ok(r) || reserved != 0)
		return -EPROTO;
	if (m->ntext > VG_TEXT_MAX) {
		m->ntext = 0;
		return -EMSGSIZE;
	}
	m->text = vg_get_bytes(r, m->ntext);
	return rd_finish(r);
}

int vg_thread_open_encode(const struct vg_thread_open *m, struct vg_buf *b)
{
	vg_put_u32(b, m->guest_tid);
	return b->err;
}

int vg_thread_open_decode(struct vg_rd *r, struct vg_thread_open *m)
{
	m->guest_tid = vg_get_u32(r);
	return rd_finish(r);
}

int vg_thread_opened_encode(const struct vg_thread_opened *m, struct vg_buf *b)
{
	vg_put_u32(b, m->tid);
	vg_put_u32(b, m->status);
	return b->err;
}

int vg_thread_opened_decode(struct vg_rd *r, struct vg_thread_opened *m)
{
	m->tid = vg_get_u32(r);
	m->status = vg_get_u32(r);
	return rd_finish(r);
}

int vg_attach_encode(const struct vg_attach *m, struct vg_buf *b)
{
	vg_put_bytes(b, m->session, VG_SESSION_ID_SIZE);
	vg_put_u32(b, m->tid);
	vg_put_bytes(b, m->token, VG_TOKEN_SIZE);
	return b->err;
}

int vg_attach_decode(struct vg_rd *r, struct vg_attach *m)
{
	const void *p;

	memset(m, 0, sizeof(*m));
	p = vg_get_bytes(r, VG_SESSION_ID_SIZE);
	if (p)
		memcpy(m->session, p, VG_SESSION_ID_SIZE);
	m->tid = vg_get_u32(r);
	p = vg_get_bytes(r, VG_TOKEN_SIZE);
	if (p)
		memcpy(m->token, p, VG_TOKEN_SIZE);
	return rd_finish(r);
}

int vg_auth_encode(const struct vg_auth *m, struct vg_buf *b)
{
	if (m->step < 1 || m->step > 3)
		return -EPROTO;
	vg_put_u32(b, m->step);
	if (m->step <= 2)
		vg_put_bytes(b, m->nonce, VG_AUTH_NONCE_SIZE);
	if (m->step >= 2)
		vg_put_bytes(b, m->proof, VG_AUTH_PROOF_SIZE);
	return b->err;
}

int vg_auth_decode(struct vg_rd *r, struct vg_auth *m)
{
	const void *p;

	memset(m, 0, sizeof(*m));
	m->step = vg_get_u32(r);
	if (rd_ok(r) && (m->step < 1 || m->step > 3))
		return -EPROTO;
	if (m->step <= 2) {
		p = vg_get_bytes(r, VG_AUTH_NONCE_SIZE);
		if (p)
			memcpy(m->nonce, p, VG_AUTH_NONCE_SIZE);
	}
	if (m->step >= 2) {
		p = vg_get_bytes(r, VG_AUTH_PROOF_SIZE);
		if (p)
			memcpy(m->proof, p, VG_AUTH_PROOF_SIZE);
	}
	return rd_finish(r);
}

int vg_error_encode(const struct vg_error *m, struct vg_buf *b)
{
	if (m->ntext > VG_TEXT_MAX || (m->ntext && !m->text))
		return -EMSGSIZE;
	vg_put_u32(b, m->code);
	/* Never NULL on the wire: a missing text is an empty one. */
	vg_put_blob(b, m->ntext ? m->text : "", m->ntext);
	return b->err;
}

int vg_error_decode(struct vg_rd *r, struct vg_error *m)
{
	int is_null;

	memset(m, 0, sizeof(*m));
	m->code = vg_get_u32(r);
	m->text = vg_get_blob(r, VG_TEXT_MAX, &m->ntext, &is_null);
	if (rd_ok(r) && is_null)
		return -EPROTO;
	return rd_finish(r);
}

int vg_stats_encode(struct vg_buf *b)
{
	return b->err;
}

int vg_stats_decode(struct vg_rd *r)
{
	return rd_finish(r);
}

int vg_stats_reply_encode(const struct vg_stat *v, uint32_t n, struct vg_buf *b)
{
	uint32_t i;

	if (n > VG_STATS_MAX)
		return -EMSGSIZE;
	vg_put_u32(b, n);
	for (i = 0; i < n; i++) {
		vg_put_u32(b, v[i].fn);
		vg_put_u64(b, v[i].count);
	}
	return b->err;
}

int vg_stats_reply_decode(struct vg_rd *r, struct vg_stat *v, uint32_t max, uint32_t *n)
{
	uint32_t i, cnt;

	*n = 0;
	cnt = vg_get_u32(r);
	if (!rd_ok(r))
		return -EPROTO;
	if (cnt > VG_STATS_MAX || cnt > max)
		return -EMSGSIZE;
	for (i = 0; i < cnt; i++) {
		v[i].fn = vg_get_u32(r);
		v[i].count = vg_get_u64(r);
	}
	if (!rd_ok(r))
		return -EPROTO;
	*n = cnt;
	return rd_finish(r);
}
