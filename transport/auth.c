/*
 * The AUTH exchange (include/vgpu/wire.h): mutual challenge-response with
 * HMAC-SHA256 over fresh nonces from getrandom, so the secret never crosses
 * the wire and a recorded exchange is worth nothing later.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "tp.h"

#define AUTH_LABEL_HOST  "vgpu-auth-1 host"
#define AUTH_LABEL_GUEST "vgpu-auth-1 guest"

int tp_random(void *p, size_t n)
{
	uint8_t *q = p;

	while (n) {
		ssize_t r = getrandom(q, n, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

int tp_secret_load(const char *path, struct tp_secret *s, char *why, size_t whylen)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, ret = 0;

	memset(s, 0, sizeof(*s));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		snprintf(why, whylen, "cannot open the secret file %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "the secret file %s is not a regular file", path);
		ret = -EINVAL;
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, whylen, "the secret file %s is accessible to its group or others "
			 "(mode %03o): chmod 600 it", path, (unsigned int)(st.st_mode & 0777));
		ret = -EPERM;
		goto out;
	}
	for (;;) {
		n = read(fd, s->key + got, sizeof(s->key) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(why, whylen, "cannot read the secret file %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof(s->key)) {
			snprintf(why, whylen, "the secret file %s is longer than %u bytes", path, TP_SECRET_MAX - 1);
			ret = -EINVAL;
			goto out;
		}
	}
	while (got && (s->key[got - 1] == '\n' || s->key[got - 1] == '\r' || s->key[got - 1] == ' '))
		got--;
	if (got < TP_SECRET_MIN) {
		snprintf(why, whylen, "the secret in %s is shorter than %u bytes", path, TP_SECRET_MIN);
		ret = -EINVAL;
		goto out;
	}
	s->len = got;
out:
	close(fd);
	if (ret < 0)
		memset(s, 0, sizeof(*s));
	return ret;
}

void tp_send_error(struct tp_chan *c, uint32_t code, const char *text)
{
	struct vg_error e = { .code = code, .text = text, .ntext = (uint32_t)strlen(text) };
	struct vg_hdr h = { .kind = VG_MSG_ERROR };
	struct vg_buf b;

	if (e.ntext > VG_TEXT_MAX)
		e.ntext = VG_TEXT_MAX;
	vg_buf_init(&b);
	if (vg_error_encode(&e, &b) == 0)
		tp_send_msg(c, &h, b.p, b.len, -1);
	vg_buf_fini(&b);
}

static void proof(const struct tp_secret *s, const char *label, const uint8_t *n1, const uint8_t *n2,
		  uint8_t out[TP_SHA256_SIZE])
{
	struct iovec v[3] = {
		{ (void *)label, strlen(label) },
		{ (void *)n1, VG_AUTH_NONCE_SIZE },
		{ (void *)n2, VG_AUTH_NONCE_SIZE },
	};

	tp_hmac_sha256(s->key, s->len, v, 3, out);
}

static int auth_send(struct tp_chan *c, const struct vg_auth *m)
{
	struct vg_hdr h = { .kind = VG_MSG_AUTH };
	struct vg_buf b;
	int ret;

	vg_buf_init(&b);
	ret = vg_auth_encode(m, &b);
	if (ret == 0)
		ret = tp_send_msg(c, &h, b.p, b.len, -1);
	vg_buf_fini(&b);
	return ret;
}

/* The next message, which must be AUTH at step; ERROR's text goes to why. */
static int auth_recv(struct tp_chan *c, uint32_t step, struct vg_auth *m, char *why, size_t whylen)
{
	struct vg_hdr h;
	struct vg_buf b;
	struct vg_rd r;
	int ret;

	vg_buf_init(&b);
	ret = tp_recv_msg(c, &h, &b, VG_TEXT_MAX + 64, NULL);
	if (ret < 0)
		goto out;
	vg_rd_init(&r, b.p, b.len);
	if (h.kind == VG_MSG_ERROR && why) {
		struct vg_error e;

		if (vg_error_decode(&r, &e) == 0) {
			snprintf(why, whylen, "%.*s", (int)e.ntext, e.text);
			ret = e.code ? -(int)e.code : -EPROTO;
		} else {
			ret = -EPROTO;
		}
		goto out;
	}
	if (h.kind != VG_MSG_AUTH || vg_auth_decode(&r, m) < 0 || m->step != step)
		ret = -EPROTO;
out:
	vg_buf_fini(&b);
	return ret;
}

int tp_auth_client(struct tp_chan *c, const struct tp_secret *s, char *why, size_t whylen)
{
	struct vg_auth m1 = { .step = 1 }, m2, m3 = { .step = 3 };
	uint8_t want[TP_SHA256_SIZE];
	int ret;

	if (why && whylen)
		why[0] = '\0';
	ret = tp_random(m1.nonce, sizeof(m1.nonce));
	if (ret < 0)
		return ret;
	ret = auth_send(c, &m1);
	if (ret < 0)
		return ret;
	ret = auth_recv(c, 2, &m2, why, whylen);
	if (ret < 0)
		return ret;
	proof(s, AUTH_LABEL_HOST, m1.nonce, m2.nonce, want);
	if (!tp_mem_equal(want, m2.proof, sizeof(want))) {
		if (why)
			snprintf(why, whylen, "vgpud proved a secret other than ours (VGPU_SECRET_FILE)");
		return -EACCES;
	}
	proof(s, AUTH_LABEL_GUEST, m2.nonce, m1.nonce, m3.proof);
	return auth_send(c, &m3);
}

int tp_auth_server(struct tp_chan *c, const struct tp_secret *s, const struct vg_hdr *h,
		   const void *payload, size_t n)
{
	struct vg_auth m1, m2 = { .step = 2 }, m3;
	uint8_t want[TP_SHA256_SIZE];
	struct vg_rd r;
	int ret;

	if (h->kind != VG_MSG_AUTH) {
		if (!s)
			return 1;
		tp_send_error(c, EACCES, "authentication required: this vgpud has a secret "
			      "(give the guest the same one with VGPU_SECRET_FILE)");
		return -EACCES;
	}
	if (!s) {
		tp_send_error(c, EACCES, "this vgpud has no secret (start it with --secret-file) "
			      "but the guest sent one");
		return -EACCES;
	}
	vg_rd_init(&r, payload, n);
	if (vg_auth_decode(&r, &m1) < 0 || m1.step != 1) {
		tp_send_error(c, EPROTO, "malformed AUTH");
		return -EPROTO;
	}
	ret = tp_random(m2.nonce, sizeof(m2.nonce));
	if (ret < 0)
		return ret;
	proof(s, AUTH_LABEL_HOST, m1.nonce, m2.nonce, m2.proof);
	ret = auth_send(c, &m2);
	if (ret < 0)
		return ret;
	ret = auth_recv(c, 3, &m3, NULL, 0);
	if (ret < 0) {
		if (ret == -EPROTO)
			tp_send_error(c, EPROTO, "malformed AUTH");
		return ret;
	}
	proof(s, AUTH_LABEL_GUEST, m2.nonce, m1.nonce, want);
	if (!tp_mem_equal(want, m3.proof, sizeof(want))) {
		tp_send_error(c, EACCES, "authentication failed: the guest's secret differs from vgpud's");
		return -EACCES;
	}
	return 0;
}
