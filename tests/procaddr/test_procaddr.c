/*
 * cuGetProcAddress_v2 against NVIDIA driver 580's measured answers.
 *
 * usage: test_procaddr DATA_DIR [--perturb-row N]
 * With --perturb-row the N-th row's expected answer (0-based, data lines
 * only) is changed, so the comparison must fail: the negative control.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vgpu/cuda_types.h"
#include "pa_stub.h"

CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion,
			  cuuint64_t flags);
CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion,
			     cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus);

#define VERSION_LO 1000		/* the measurement's range */
#define VERSION_HI 13090
#define STATUS_UNTOUCHED ((CUdriverProcAddressQueryResult)0x5a5a)
#define REPORT_MAX 10

struct row {
	char name[96];
	int flags;
	int from;
	void *expect_fn;	/* NULL for '-' */
	char export[96];
	int result;
	int status;		/* -1: not written */
};

static const char *data_dir;
static long perturb_row = -1;

static struct row *rows;
static size_t nrows;

static void *stub_addr(const char *name)
{
	unsigned i;

	for (i = 0; i < pa_stub_nsyms; i++)
		if (!strcmp(pa_stub_syms[i].name, name))
			return (void *)pa_stub_syms[i].fn;
	return NULL;
}

static const char *stub_name(void *p)
{
	unsigned i;

	if (!p)
		return "-";
	for (i = 0; i < pa_stub_nsyms; i++)
		if ((void *)pa_stub_syms[i].fn == p)
			return pa_stub_syms[i].name;
	return "(not an export)";
}

static FILE *open_data(const char *file)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", data_dir, file);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	return f;
}

static void perturb(struct row *r)
{
	if (r->expect_fn) {
		r->expect_fn = (void *)(r->expect_fn == (void *)pa_stub_syms[0].fn ?
					pa_stub_syms[1].fn : pa_stub_syms[0].fn);
	} else if (r->status == -1) {
		r->result = 0;
		r->status = 1;
	} else {
		r->status = r->status == 1 ? 2 : 1;
	}
}

static int load_rows(void **state)
{
	char line[512], exp[96], name[96];
	size_t cap = 0;
	FILE *f = open_data("procaddress-580.tsv");

	(void)state;
	while (fgets(line, sizeof(line), f)) {
		struct row r;

		memset(&r, 0, sizeof(r));
		if (sscanf(line, "%95[^\t]\t%d\t%d\t%95[^\t]\t%d\t%d", name, &r.flags,
			   &r.from, exp, &r.result, &r.status) != 6)
			fail_msg("bad row: %s", line);
		strcpy(r.name, strcmp(name, "(empty)") ? name : "");
		strcpy(r.export, exp);
		if (strcmp(exp, "-")) {
			r.expect_fn = stub_addr(exp);
			if (!r.expect_fn)
				fail_msg("row names %s, which the table does not export", exp);
		}
		if (nrows == cap) {
			cap = cap ? 2 * cap : 1024;
			rows = realloc(rows, cap * sizeof(*rows));
			assert_non_null(rows);
		}
		if ((long)nrows == perturb_row)
			perturb(&r);
		rows[nrows++] = r;
	}
	fclose(f);
	assert_true(nrows > 4000);
	return 0;
}

static int free_rows(void **state)
{
	(void)state;
	free(rows);
	return 0;
}

/* One lookup compared with one measured answer; 0 when equal. */
static int check_one(const struct row *r, int version, unsigned *reported)
{
	CUdriverProcAddressQueryResult st = STATUS_UNTOUCHED;
	void *p = (void *)&st;	/* anything but NULL: the call must write it */
	CUresult res = cuGetProcAddress_v2(r->name, &p, version, (cuuint64_t)r->flags, &st);
	int want_st = r->status == -1 ? (int)STATUS_UNTOUCHED : r->status;
	int bad;

	bad = (int)res != r->result || (int)st != want_st ||
	      (r->result == 0 && p != r->expect_fn);
	if (bad && (*reported)++ < REPORT_MAX)
		print_error("'%s' v%d flags %d: got (%s, %d, %d), measured (%s, %d, %d)\n",
			    r->name, version, r->flags, res == 0 ? stub_name(p) : "?",
			    (int)res, (int)st == (int)STATUS_UNTOUCHED ? -1 : (int)st,
			    r->result == 0 ? stub_name(r->expect_fn) : "?",
			    r->result, r->status);
	return bad;
}

/*
 * Every row, at its own version and every version up to the next row.  The
 * driver was measured every 10 versions: where the answer changes between
 * two measured versions, the nine versions in between are not known and
 * are not checked (the integers where both neighbours agree are).
 */
static void test_every_row_and_version(void **state)
{
	unsigned reported = 0;
	size_t i, bad = 0, checked = 0;

	(void)state;
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		int hi = VERSION_HI, v;

		/* Rows of one (name, flags) run in increasing versions. */
		if (i + 1 < nrows && !strcmp(rows[i + 1].name, r->name) &&
		    rows[i + 1].flags == r->flags) {
			assert_true(rows[i + 1].from > r->from);
			hi = rows[i + 1].from - 10;
		}
		if (i == 0 || strcmp(rows[i - 1].name, r->name) || rows[i - 1].flags != r->flags)
			assert_int_equal(r->from, VERSION_LO);
		for (v = r->from; v <= hi; v++) {
			bad += check_one(r, v, &reported);
			checked++;
		}
	}
	print_message("%zu lookups over %zu measured rows, %zu differ\n", checked, nrows, bad);
	assert_int_equal(bad, 0);
}

/* The 439 lookups cudart 13.0 makes at start-up resolve as listed. */
static void test_cudart13_requests(void **state)
{
	char line[512], name[96], exp[96];
	unsigned n = 0, bad = 0;
	int ver, flags;
	FILE *f = open_data("cudart13-getprocaddress-requests.tsv");

	(void)state;
	while (fgets(line, sizeof(line), f)) {
		CUdriverProcAddressQueryResult st = STATUS_UNTOUCHED;
		void *p = NULL;
		CUresult res;

		if (line[0] == '#' || !strncmp(line, "symbol\t", 7))
			continue;
		if (sscanf(line, "%95[^\t]\t%d\t%d\t%95s", name, &ver, &flags, exp) != 4)
			fail_msg("bad request line: %s", line);
		n++;
		res = cuGetProcAddress_v2(name, &p, ver, (cuuint64_t)flags, &st);
		if (res != CUDA_SUCCESS || st != CU_GET_PROC_ADDRESS_SUCCESS ||
		    !p || strcmp(stub_name(p), exp)) {
			if (bad++ < REPORT_MAX)
				print_error("%s v%d flags %d: got %s (%d, %d), cudart expects %s\n",
					    name, ver, flags, stub_name(p), (int)res, (int)st, exp);
		}
	}
	fclose(f);
	assert_int_equal(n, 439);
	assert_int_equal(bad, 0);
}

/* cudart's first call: the empty name at version 0 must not look like a stub. */
static void test_cudart_probe(void **state)
{
	CUdriverProcAddressQueryResult st = STATUS_UNTOUCHED;
	void *p = (void *)&st;

	(void)state;
	assert_int_equal(cuGetProcAddress_v2("", &p, 0, 0, &st), CUDA_SUCCESS);
	assert_null(p);
	assert_int_equal(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
	/* A status pointer is optional. */
	p = (void *)&st;
	assert_int_equal(cuGetProcAddress_v2("cuInit", &p, 2000, 0, NULL), CUDA_SUCCESS);
	assert_ptr_equal(p, stub_addr("cuInit"));
}

static void test_argument_errors(void **state)
{
	CUdriverProcAddressQueryResult st = STATUS_UNTOUCHED;
	void *p = NULL;

	(void)state;
	assert_int_equal(cuGetProcAddress_v2(NULL, &p, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGetProcAddress_v2("cuInit", NULL, 13000, 0, &st),
			 CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGetProcAddress_v2("cuInit", &p, 13001, 0, &st),
			 CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGetProcAddress_v2("cuNotAFunction", &p, 0x7fffffff, 2, &st),
			 CUDA_ERROR_INVALID_VALUE);
	/* Not measured: flags outside 0..2 are refused like other bad arguments. */
	assert_int_equal(cuGetProcAddress_v2("cuInit", &p, 13000, 3, &st),
			 CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(cuGetProcAddress_v2("cuInit", &p, 13000, 4, &st),
			 CUDA_ERROR_INVALID_VALUE);
	assert_int_equal(st, STATUS_UNTOUCHED);
}

/* The v1 entry point gives v2's pointer and result for every row. */
static void test_v1_matches_v2(void **state)
{
	size_t i, bad = 0;

	(void)state;
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		void *p1 = (void *)&bad, *p2 = (void *)&bad;
		CUresult r1 = cuGetProcAddress(r->name, &p1, r->from, (cuuint64_t)r->flags);
		CUresult r2 = cuGetProcAddress_v2(r->name, &p2, r->from, (cuuint64_t)r->flags, NULL);

		bad += r1 != r2 || (r1 == CUDA_SUCCESS && p1 != p2) || (int)r1 != r->result;
	}
	assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_row_and_version),
		cmocka_unit_test(test_cudart13_requests),
		cmocka_unit_test(test_cudart_probe),
		cmocka_unit_test(test_argument_errors),
		cmocka_unit_test(test_v1_matches_v2),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s DATA_DIR [--perturb-row N]\n", argv[0]);
		return 2;
	}
	data_dir = argv[1];
	if (argc == 4 && !strcmp(argv[2], "--perturb-row"))
		perturb_row = strtol(argv[3], NULL, 10);
	return cmocka_run_group_tests(tests, load_rows, free_rows);
}
