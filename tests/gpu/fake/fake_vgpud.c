/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for vgpud in the runner's self-test: it takes the same command
 * line, listens on the unix socket (so the runner sees the daemon come up),
 * tells the fake cases where the stats directory is (PATH.stats-dir), and
 * waits to be killed.  It runs no driver and answers nobody.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *listen_on = NULL, *stats = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char note[sizeof(sa.sun_path) + 16];
	FILE *f;
	int i, fd;

	for (i = 1; i < argc - 1; i++) {
		if (strcmp(argv[i], "--listen") == 0)
			listen_on = argv[++i];
		else if (strcmp(argv[i], "--stats-dir") == 0)
			stats = argv[++i];
	}
	if (!listen_on || strncmp(listen_on, "unix:", 5) != 0 || !stats ||
	    strlen(listen_on + 5) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "fake-vgpud: bad command line\n");
		return 2;
	}
	strcpy(sa.sun_path, listen_on + 5);
	snprintf(note, sizeof(note), "%s.stats-dir", sa.sun_path);
	f = fopen(note, "w");
	if (!f || fprintf(f, "%s\n", stats) < 0 || fclose(f) != 0) {
		fprintf(stderr, "fake-vgpud: %s: %s\n", note, strerror(errno));
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 8) != 0) {
		fprintf(stderr, "fake-vgpud: %s: %s\n", sa.sun_path, strerror(errno));
		return 1;
	}
	fprintf(stderr, "fake-vgpud: listening on %s\n", sa.sun_path);
	for (;;)
		pause();
}
