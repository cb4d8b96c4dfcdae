/*
 * The built libcuda.so.1 itself: its cuGetProcAddress_v2 hands out the
 * address that dlsym gives for the measured export name, for the first
 * version of every measured row and for cudart 13's lookups, before cuInit;
 * its cuGetExportTable serves the nine tables.
 *
 * usage: test_libcuda LIBCUDA DATA_DIR
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "vgpu/cuda_types.h"

typedef CUresult (*gpa_fn)(const char *, void **, int, cuuint64_t,
			   CUdriverProcAddressQueryResult *);
typedef CUresult (*get_fn)(const void **, const CUuuid *);

static int check_rows(void *lib, gpa_fn gpa, const char *path, int requests)
{
	char line[512], name[96], exp[96];
	int flags, ver, res, st, n = 0, bad = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "cannot open %s\n", path);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		CUdriverProcAddressQueryResult got_st = (CUdriverProcAddressQueryResult)77;
		void *p = NULL, *want;
		CUresult got;

		if (requests) {
			if (line[0] == '#' || !strncmp(line, "symbol\t", 7))
				continue;
			if (sscanf(line, "%95[^\t]\t%d\t%d\t%95s", name, &ver, &flags, exp) != 4)
				return -1;
			res = 0;
			st = 0;
		} else if (sscanf(line, "%95[^\t]\t%d\t%d\t%95[^\t]\t%d\t%d", name, &flags, &ver,
				  exp, &res, &st) != 6) {
			return -1;
		}
		if (!strcmp(name, "(empty)"))
			name[0] = 0;
		n++;
		want = strcmp(exp, "-") ? dlsym(lib, exp) : NULL;
		got = gpa(name, &p, ver, (cuuint64_t)flags, &got_st);
		if ((int)got != res || (res == 0 && ((int)got_st != st || p != want)) ||
		    (strcmp(exp, "-") && !want)) {
			if (bad++ < 10)
				fprintf(stderr, "%s v%d flags %d: got %d/%d/%p, want %d/%d/%s=%p\n",
					name, ver, flags, (int)got, (int)got_st, p, res, st, exp, want);
		}
	}
	fclose(f);
	printf("%s: %d lookups, %d differ\n", path, n, bad);
	return bad;
}

int main(int argc, char **argv)
{
	static const char *const tables[] = {
		"6bd5fb6c5bf4e74a8987d93912fd9df9", "a094798c2e742e7493f20800200c0a66",
		"42d85a8123f6cb478298f6e78a3aecdc", "c693336e1121df11a8c368f355d89593",
		"263e88607cd2614392f6bbd5006dfa7e", "d4082055bde6704b8d34ba123c66e1f2",
		"21318c60971432488ca641ff7324c8f2", "6e163fbeb958444d835ce182aff1991e",
		"1734dc26800d47458726c0f1e7dd8bca",
	};
	char path[4096];
	void *lib;
	gpa_fn gpa;
	get_fn get;
	unsigned i, k;
	int bad = 0, r;

	if (argc != 3) {
		fprintf(stderr, "usage: %s LIBCUDA DATA_DIR\n", argv[0]);
		return 2;
	}
	lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	gpa = (gpa_fn)dlsym(lib, "cuGetProcAddress_v2");
	get = (get_fn)dlsym(lib, "cuGetExportTable");
	if (!gpa || !get) {
		fprintf(stderr, "cuGetProcAddress_v2 or cuGetExportTable not exported\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/procaddress-580.tsv", argv[2]);
	r = check_rows(lib, gpa, path, 0);
	bad += r ? 1 : 0;
	snprintf(path, sizeof(path), "%s/cudart13-getprocaddress-requests.tsv", argv[2]);
	r = check_rows(lib, gpa, path, 1);
	bad += r ? 1 : 0;
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		const void *t = NULL;
		CUuuid u;
		unsigned v;

		for (k = 0; k < 16; k++) {
			sscanf(tables[i] + 2 * k, "%2x", &v);
			u.bytes[k] = (char)v;
		}
		if (get(&t, &u) != CUDA_SUCCESS || !t) {
			fprintf(stderr, "table %s not served\n", tables[i]);
			bad++;
		}
	}
	return bad ? 1 : 0;
}
