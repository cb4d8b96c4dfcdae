/*
 * Raw system calls.  procfake's own I/O and every pass-through that is a
 * system call go straight to the kernel, so nothing here can re-enter an
 * interposed libc function, whatever state the process is in.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "pf.h"

long pf_sys(long nr, long a, long b, long c, long d, long e)
{
	return syscall(nr, a, b, c, d, e);
}

/* Reads a whole small file; -EFBIG when it does not fit (size - 1 bytes at most). */
int pf_sys_read_file(const char *path, char *buf, size_t size, size_t *len)
{
	size_t got = 0;
	long fd, n;
	int rc = 0;

	fd = pf_sys(SYS_openat, AT_FDCWD, (long)path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0, 0);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (got == size - 1) {
			rc = -EFBIG;
			break;
		}
		n = pf_sys(SYS_read, fd, (long)(buf + got), (long)(size - 1 - got), 0, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	pf_sys(SYS_close, fd, 0, 0, 0, 0);
	buf[got] = '\0';
	*len = got;
	return rc;
}

int pf_sys_exists(const char *path)
{
	int saved = errno;
	long rc = pf_sys(SYS_faccessat, AT_FDCWD, (long)path, F_OK, 0, 0);

	errno = saved;
	return rc == 0;
}
