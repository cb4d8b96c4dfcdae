/* The proof of path (pathproof.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pathproof.h"

#define PP_LINE_MAX 8192
#define PP_PATHS_MAX 16

/* True when the basename of path starts with prefix. */
static int base_is(const char *path, const char *prefix)
{
	const char *base = strrchr(path, '/');

	return strncmp(base ? base + 1 : path, prefix, strlen(prefix)) == 0;
}

int vg_print_path_proof(void)
{
	char line[PP_LINE_MAX], *paths[PP_PATHS_MAX];
	int npaths = 0, nvml = 0, i, seen;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f) {
		printf("PATH ?unreadable-maps\nNVML ?\n");
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');

		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		if (base_is(path, "libnvidia-ml"))
			nvml = 1;
		if (!base_is(path, "libcuda.so") && !base_is(path, "libcuda-"))
			continue;
		for (i = 0, seen = 0; i < npaths; i++)
			seen |= strcmp(paths[i], path) == 0;
		if (!seen && npaths < PP_PATHS_MAX)
			paths[npaths++] = strdup(path);
	}
	fclose(f);
	if (npaths == 0)
		printf("PATH none\n");
	for (i = 0; i < npaths; i++) {
		printf("PATH %s\n", paths[i] ? paths[i] : "?");
		free(paths[i]);
	}
	printf("NVML %s\n", nvml ? "yes" : "no");
	return 0;
}
