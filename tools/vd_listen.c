/*
 * The daemon's listeners: parsing --listen addresses, opening them (with
 * the checks that belong to each kind), removing socket files at exit.
 * Accepting and starting workers stays in vgpud.c: the same for every kind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tp.h"
#include "vd_listen.h"

int vd_listener_parse(const char *address, struct vd_listener *l)
{
	static const struct {
		const char *prefix;
		enum vd_listen_kind kind;
	} kinds[] = {
		{ "unix:", VD_L_UNIX },
		{ "vsock-uds:", VD_L_VSOCK_UDS },
		{ "tcp:", VD_L_TCP },
		{ "vsock:", VD_L_VSOCK },
		{ "ivshmem:", VD_L_IVSHMEM },
	};
	size_t i;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->address = address;
	snprintf(l->shown, sizeof(l->shown), "%s", address);
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t n = strlen(kinds[i].prefix);

		if (strncmp(address, kinds[i].prefix, n) != 0)
			continue;
		l->kind = kinds[i].kind;
		l->rest = address + n;
		if (!*l->rest)
			break;
		if (l->kind == VD_L_IVSHMEM &&
		    tp_ivshmem_parse_listen(l->rest, l->region_path, sizeof(l->region_path), &l->region_size,
					    &l->ring_bytes) < 0) {
			fprintf(stderr, "vgpud: --listen %s: expected ivshmem:PATH[,size=N][,ring=N]\n", address);
			return -EINVAL;
		}
		if (l->kind == VD_L_VSOCK) {
			char *end;
			unsigned long port = strtoul(l->rest, &end, 10);

			if (*end || port > 0xffffffffu || l->rest[0] < '0' || l->rest[0] > '9') {
				fprintf(stderr, "vgpud: --listen %s: vsock:PORT wants a port number\n", address);
				return -EINVAL;
			}
		}
		return 0;
	}
	fprintf(stderr, "vgpud: --listen %s: use unix:PATH, tcp:HOST:PORT, vsock:PORT, vsock-uds:PATH or "
		"ivshmem:PATH\n", address);
	return -EINVAL;
}

int vd_listener_passes_fds(const struct vd_listener *l)
{
	return l->kind == VD_L_UNIX;
}

/* Refuse to take over a path another daemon is serving (tp_unix_listen
 * removes a stale socket file). */
static int unix_open(struct vd_listener *l)
{
	struct tp_chan *c;
	int ret;

	if (tp_unix_connect(l->rest, &c) == 0) {
		tp_chan_destroy(c);
		fprintf(stderr, "vgpud: another vgpud is already listening at %s\n", l->rest);
		return -EADDRINUSE;
	}
	ret = tp_unix_listen(l->rest, &l->fd);
	if (ret < 0) {
		fprintf(stderr, "vgpud: cannot listen at %s: %s\n", l->rest, strerror(-ret));
		return ret;
	}
	if (l->rest[0] != '@')
		stat(l->rest, &l->bound);
	return 0;
}

/* "tcp:ADDR:PORT" as bound, so that port 0 shows the one the kernel chose. */
static void tcp_shown(struct vd_listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(l->shown, sizeof(l->shown), "tcp:%s:%d", host, port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(l->shown, sizeof(l->shown), "tcp:[%s]:%d", host, port);
	}
}

int vd_listener_open(struct vd_listener *l, int have_secret)
{
	int ret, loopback = 0;

	switch (l->kind) {
	case VD_L_UNIX:
	case VD_L_VSOCK_UDS:
		ret = unix_open(l);
		break;
	case VD_L_TCP:
		ret = tp_tcp_listen(l->rest, &l->fd, &loopback);
		if (ret < 0) {
			fprintf(stderr, "vgpud: cannot listen at %s: %s\n", l->address, strerror(-ret));
			break;
		}
		if (!loopback && !have_secret) {
			fprintf(stderr, "vgpud: --listen %s is not a loopback address: refusing to listen "
				"without --secret-file\n", l->address);
			close(l->fd);
			l->fd = -1;
			ret = -EACCES;
			break;
		}
		tcp_shown(l);
		break;
	case VD_L_VSOCK:
		ret = tp_vsock_listen((unsigned int)strtoul(l->rest, NULL, 10), &l->fd);
		if (ret < 0)
			fprintf(stderr, "vgpud: cannot listen at %s: %s%s\n", l->address, strerror(-ret),
				ret == -EAFNOSUPPORT ? " (is the vsock module loaded?)" : "");
		break;
	case VD_L_IVSHMEM:
		ret = tp_ivshmem_region_create(l->region_path, l->region_size, l->ring_bytes, &l->region);
		if (ret < 0)
			fprintf(stderr, "vgpud: cannot serve the ivshmem region %s: %s\n", l->region_path,
				ret == -EADDRINUSE ? "another vgpud serves it" :
				ret == -EFBIG ? "the file exists with another size (a VM may map it: give its "
						"size, or no size=)" : strerror(-ret));
		else
			snprintf(l->shown, sizeof(l->shown), "ivshmem:%.100s (%u connection slots)",
				 l->region_path, tp_ivshmem_nslots(l->region));
		return ret;
	default:
		ret = -EINVAL;
	}
	if (ret == 0)
		fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
	return ret;
}

void vd_listener_close(struct vd_listener *l)
{
	struct stat now;

	if (l->region) {
		tp_ivshmem_region_destroy(l->region);
		l->region = NULL;
	}
	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	if ((l->kind != VD_L_UNIX && l->kind != VD_L_VSOCK_UDS) || l->rest[0] == '@')
		return;
	/* Only our own socket file: a successor may have bound the path. */
	if (stat(l->rest, &now) == 0 && now.st_ino == l->bound.st_ino && now.st_dev == l->bound.st_dev)
		unlink(l->rest);
}
