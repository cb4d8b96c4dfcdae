/*
 * AF_VSOCK channels: the stream channel of transport/unix.c on a vsock
 * socket (QEMU with vhost-vsock).  A VMM's hybrid vsock (Firecracker, Cloud
 * Hypervisor) reaches the host as a unix socket instead: "unix-nofd:".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "tp.h"

static int parse_u32(const char *s, char **end, unsigned int *v)
{
	unsigned long x;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	x = strtoul(s, end, 10);
	if (errno || x > 0xffffffffu)
		return -EINVAL;
	*v = (unsigned int)x;
	return 0;
}

int tp_vsock_connect(const char *cidport, struct tp_chan **out)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK };
	unsigned int cid, port;
	char *end;
	int fd, ret;

	if (parse_u32(cidport, &end, &cid) < 0 || *end != ':' || parse_u32(end + 1, &end, &port) < 0 || *end)
		return -EINVAL;
	sa.svm_cid = cid;
	sa.svm_port = port;
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = tp_stream_wrap(fd, out);
	if (ret < 0)
		close(fd);
	return ret;
}

int tp_vsock_listen(unsigned int port, int *listen_fd)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port };
	int fd, ret;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	*listen_fd = fd;
	return 0;
}
