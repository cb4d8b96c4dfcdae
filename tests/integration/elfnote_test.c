/*
 * Unit tests of the driver-file checks: vd_elf_has_vgpu_note on real shared
 * objects built by this test's meson file (one with the note, one without),
 * on vgpu's own libcuda.so.1, and on hand-built ELF files, well-formed and
 * hostile; vd_driver_search's order and refusals.
 *
 * IT_LIB_NOTE, IT_LIB_PLAIN, IT_LIBCUDA: paths of the built objects.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "driverpath.h"
#include "elfnote.h"

static char tmpdir[PATH_MAX];

static const char *tmp_path(const char *name)
{
	static char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

static const char *write_file(const char *name, const void *p, size_t n)
{
	const char *path = tmp_path(name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
	return path;
}

/* ---- hand-built ELF files ---------------------------------------------- */

/* One note: owner, type, descriptor "libcuda", padded to 4 bytes. */
static size_t note_build(uint8_t *p, const char *owner, uint32_t type)
{
	uint32_t namesz = (uint32_t)strlen(owner) + 1, descsz = 8;
	size_t off = 0;

	memcpy(p + off, &namesz, 4), off += 4;
	memcpy(p + off, &descsz, 4), off += 4;
	memcpy(p + off, &type, 4), off += 4;
	memset(p + off, 0, (namesz + 3) & ~3u);
	memcpy(p + off, owner, namesz), off += (namesz + 3) & ~3u;
	memcpy(p + off, "libcuda", 8), off += 8;
	return off;
}

enum { IN_SEGMENT = 1, IN_SECTION = 2 };

/*
 * A 64-bit ELF: header, one program header, one section header (plus the
 * null section), then the note area.  where says which table points at it.
 */
static size_t elf64_build(uint8_t *p, size_t cap, const char *owner, uint32_t type, int where)
{
	Elf64_Ehdr eh = { 0 };
	Elf64_Phdr ph = { 0 };
	Elf64_Shdr sh[2] = { { 0 } };
	size_t off_ph = sizeof(eh), off_sh = off_ph + sizeof(ph), off_note = off_sh + sizeof(sh);
	size_t nlen;

	assert_true(cap >= off_note + 64);
	memset(p, 0, cap);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_DYN;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = sizeof(eh);
	eh.e_phoff = off_ph;
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	eh.e_shoff = off_sh;
	eh.e_shentsize = sizeof(sh[0]);
	eh.e_shnum = 2;
	nlen = note_build(p + off_note, owner, type);
	ph.p_type = (where & IN_SEGMENT) ? PT_NOTE : PT_LOAD;
	ph.p_offset = off_note;
	ph.p_filesz = nlen;
	sh[1].sh_type = (where & IN_SECTION) ? SHT_NOTE : SHT_PROGBITS;
	sh[1].sh_offset = off_note;
	sh[1].sh_size = nlen;
	memcpy(p, &eh, sizeof(eh));
	memcpy(p + off_ph, &ph, sizeof(ph));
	memcpy(p + off_sh, sh, sizeof(sh));
	return off_note + nlen;
}

static size_t elf32_build(uint8_t *p, size_t cap, const char *owner, uint32_t type, int where)
{
	Elf32_Ehdr eh = { 0 };
	Elf32_Phdr ph = { 0 };
	Elf32_Shdr sh[2] = { { 0 } };
	size_t off_ph = sizeof(eh), off_sh = off_ph + sizeof(ph), off_note = off_sh + sizeof(sh);
	size_t nlen;

	assert_true(cap >= off_note + 64);
	memset(p, 0, cap);
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_DYN;
	eh.e_machine = EM_386;
	eh.e_version = EV_CURRENT;
	eh.e_ehsize = sizeof(eh);
	eh.e_phoff = (Elf32_Off)off_ph;
	eh.e_phentsize = sizeof(ph);
	eh.e_phnum = 1;
	eh.e_shoff = (Elf32_Off)off_sh;
	eh.e_shentsize = sizeof(sh[0]);
	eh.e_shnum = 2;
	nlen = note_build(p + off_note, owner, type);
	ph.p_type = (where & IN_SEGMENT) ? PT_NOTE : PT_LOAD;
	ph.p_offset = (Elf32_Off)off_note;
	ph.p_filesz = (Elf32_Word)nlen;
	sh[1].sh_type = (where & IN_SECTION) ? SHT_NOTE : SHT_PROGBITS;
	sh[1].sh_offset = (Elf32_Off)off_note;
	sh[1].sh_size = (Elf32_Word)nlen;
	memcpy(p, &eh, sizeof(eh));
	memcpy(p + off_ph, &ph, sizeof(ph));
	memcpy(p + off_sh, sh, sizeof(sh));
	return off_note + nlen;
}

static int check64(const char *owner, uint32_t type, int where)
{
	uint8_t buf[512];
	size_t n = elf64_build(buf, sizeof(buf), owner, type, where);

	return vd_elf_has_vgpu_note(write_file("e64", buf, n));
}

static int check32(const char *owner, uint32_t type, int where)
{
	uint8_t buf[512];
	size_t n = elf32_build(buf, sizeof(buf), owner, type, where);

	return vd_elf_has_vgpu_note(write_file("e32", buf, n));
}

/* ---- tests ------------------------------------------------------------- */

static void built_objects(void **state)
{
	assert_int_equal(vd_elf_has_vgpu_note(IT_LIB_NOTE), 1);
	assert_int_equal(vd_elf_has_vgpu_note(IT_LIB_PLAIN), 0);
	/* The product: the worker's refusal rests on this. */
	assert_int_equal(vd_elf_has_vgpu_note(IT_LIBCUDA), 1);
}

static void hand_built_64(void **state)
{
	assert_int_equal(check64("vgpu", 1, IN_SEGMENT | IN_SECTION), 1);
	assert_int_equal(check64("vgpu", 1, IN_SEGMENT), 1);
	/* Stripped of segments' help: the section alone is enough. */
	assert_int_equal(check64("vgpu", 1, IN_SECTION), 1);
	assert_int_equal(check64("vgpu", 1, 0), 0);
	assert_int_equal(check64("vgpu", 2, IN_SEGMENT | IN_SECTION), 0);
	assert_int_equal(check64("GNU", 1, IN_SEGMENT | IN_SECTION), 0);
	assert_int_equal(check64("vgp", 1, IN_SEGMENT | IN_SECTION), 0);
	assert_int_equal(check64("vgpux", 1, IN_SEGMENT | IN_SECTION), 0);
}

static void hand_built_32(void **state)
{
	assert_int_equal(check32("vgpu", 1, IN_SEGMENT), 1);
	assert_int_equal(check32("vgpu", 1, IN_SECTION), 1);
	assert_int_equal(check32("vgpu", 1, 0), 0);
	assert_int_equal(check32("NVIDIA", 1, IN_SEGMENT | IN_SECTION), 0);
}

/* A GNU note first, ours second, in one area. */
static void second_note_in_area(void **state)
{
	uint8_t buf[512];
	size_t n = elf64_build(buf, sizeof(buf), "GNU", 3, IN_SEGMENT);
	Elf64_Phdr ph;
	size_t more;

	memcpy(&ph, buf + sizeof(Elf64_Ehdr), sizeof(ph));
	more = note_build(buf + n, "vgpu", 1);
	ph.p_filesz += more;
	memcpy(buf + sizeof(Elf64_Ehdr), &ph, sizeof(ph));
	assert_int_equal(vd_elf_has_vgpu_note(write_file("two", buf, n + more)), 1);
}

static void not_elf(void **state)
{
	static const char text[] = "#!/bin/sh\necho not a library\n";
	uint8_t buf[512];
	size_t n;

	assert_int_equal(vd_elf_has_vgpu_note(write_file("text", text, sizeof(text))), -ENOEXEC);
	assert_int_equal(vd_elf_has_vgpu_note(write_file("empty", "", 0)), -ENOEXEC);
	assert_int_equal(vd_elf_has_vgpu_note(write_file("short", "\177ELF", 4)), -ENOEXEC);
	n = elf64_build(buf, sizeof(buf), "vgpu", 1, IN_SEGMENT);
	buf[EI_CLASS] = 7;
	assert_int_equal(vd_elf_has_vgpu_note(write_file("class", buf, n)), -ENOEXEC);
	assert_int_equal(vd_elf_has_vgpu_note(tmp_path("does-not-exist")), -ENOENT);
	assert_int_equal(vd_elf_has_vgpu_note(tmpdir), -ENOEXEC);
}

/* A FIFO must not block the check (nobody will ever write to it). */
static void fifo(void **state)
{
	const char *path = tmp_path("fifo");

	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(vd_elf_has_vgpu_note(path), -ENOEXEC);
	assert_int_equal(vd_driver_check(path), -ENOEXEC);
}

/*
 * Hostile headers: tables and notes that point outside the file, sizes that
 * would wrap, counts that would run for ever.  None may crash, and a note
 * that does not fit in the file is not a note.
 */
static void hostile(void **state)
{
	uint8_t buf[512], work[512];
	size_t n = elf64_build(buf, sizeof(buf), "vgpu", 1, IN_SEGMENT);
	size_t off_ph = sizeof(Elf64_Ehdr), off_note;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	uint32_t v;
	size_t cut;

	memcpy(&ph, buf + off_ph, sizeof(ph));
	off_note = ph.p_offset;

	/* Every truncation of the file: never a crash; a whole note or nothing. */
	for (cut = 0; cut < n; cut++) {
		int r = vd_elf_has_vgpu_note(write_file("cut", buf, cut));

		assert_true(r == 0 || r == -ENOEXEC);
	}

	/* Program header table past the end of the file. */
	memcpy(work, buf, n);
	memcpy(&eh, work, sizeof(eh));
	eh.e_phoff = UINT64_MAX - 8;
	memcpy(work, &eh, sizeof(eh));
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h1", work, n)), 0);

	/* A huge entry count. */
	memcpy(work, buf, n);
	eh.e_phoff = off_ph;
	eh.e_phnum = 0xffff;
	memcpy(work, &eh, sizeof(eh));
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h2", work, n)), 0);

	/* A wrong entry size. */
	memcpy(work, buf, n);
	memcpy(&eh, work, sizeof(eh));
	eh.e_phentsize = 7;
	memcpy(work, &eh, sizeof(eh));
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h3", work, n)), 0);

	/* A note area whose offset + size wraps. */
	memcpy(work, buf, n);
	ph.p_offset = UINT64_MAX - 3;
	ph.p_filesz = 64;
	memcpy(work + off_ph, &ph, sizeof(ph));
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h4", work, n)), 0);

	/* A note area larger than the file. */
	memcpy(&ph, buf + off_ph, sizeof(ph));
	ph.p_filesz = 1u << 30;
	memcpy(work + off_ph, &ph, sizeof(ph));
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h5", work, n)), 0);

	/* namesz / descsz that overrun the area, or are as large as they get. */
	memcpy(work, buf, n);
	v = 0xffffffffu;
	memcpy(work + off_note, &v, 4);
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h6", work, n)), 0);
	memcpy(work, buf, n);
	memcpy(work + off_note + 4, &v, 4);
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h7", work, n)), 0);
	v = 0xfffffffdu;	/* rounds up to a multiple of 4 */
	memcpy(work + off_note + 4, &v, 4);
	assert_int_equal(vd_elf_has_vgpu_note(write_file("h8", work, n)), 0);
}

/* ---- the driver search ------------------------------------------------- */

static const char *mkdir_tmp(const char *name)
{
	static char paths[4][PATH_MAX + 64];
	static int next;
	char *p = paths[next++ % 4];

	snprintf(p, sizeof(paths[0]), "%s/%s", tmpdir, name);
	assert_int_equal(mkdir(p, 0755), 0);
	return p;
}

static void link_driver(const char *dir, const char *target)
{
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/" VD_DRIVER_NAME, dir);
	assert_int_equal(symlink(target, path), 0);
}

static void driver_env(void **state)
{
	char out[PATH_MAX];
	static const char *const none[] = { NULL };

	assert_int_equal(vd_driver_search(IT_LIB_PLAIN, NULL, none, out, sizeof(out)), 0);
	assert_string_equal(out, IT_LIB_PLAIN);
	/* An explicit VGPU_DRIVER that is ours, or missing, is an error, and
	 * nothing else is tried. */
	assert_int_equal(vd_driver_search(IT_LIB_NOTE, NULL, none, out, sizeof(out)), -EEXIST);
	assert_int_equal(vd_driver_search(IT_LIBCUDA, NULL, none, out, sizeof(out)), -EEXIST);
	assert_int_equal(vd_driver_search(tmp_path("nope.so"), NULL, none, out, sizeof(out)), -ENOENT);
	assert_int_equal(vd_driver_search(IT_LIB_PLAIN, NULL, none, out, 4), -ENAMETOOLONG);
	assert_int_equal(vd_driver_check(IT_LIB_PLAIN), 0);
	assert_int_equal(vd_driver_check(IT_LIB_NOTE), -EEXIST);
}

static void driver_dirs(void **state)
{
	const char *ours = mkdir_tmp("d-ours"), *empty = mkdir_tmp("d-empty");
	const char *nv = mkdir_tmp("d-nv");
	const char *dirs[] = { empty, ours, nv, NULL };
	char out[PATH_MAX], want[PATH_MAX + 64];

	link_driver(ours, IT_LIB_NOTE);
	link_driver(nv, IT_LIB_PLAIN);
	assert_int_equal(vd_driver_search(NULL, NULL, dirs, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/" VD_DRIVER_NAME, nv);
	assert_string_equal(out, want);
	dirs[2] = NULL;
	assert_int_equal(vd_driver_search("", NULL, dirs, out, sizeof(out)), -ENOENT);
}

/* A stand-in ldconfig: its listing names our library first, then a plain one. */
static void driver_ldconfig(void **state)
{
	const char *dirs[] = { NULL };
	char script[4096], out[PATH_MAX], prog[PATH_MAX + 64];
	int n;

	n = snprintf(script, sizeof(script),
		     "#!/bin/sh\n"
		     "[ \"$1\" = -p ] || exit 1\n"
		     "echo '3 libs found in cache `/etc/ld.so.cache'\\'\n"
		     "printf '\\tlibcudart.so.13 (libc6,x86-64) => /nonexistent/libcudart.so.13\\n'\n"
		     "printf '\\tlibcuda.so.1 (libc6,x86-64) => %s\\n'\n"
		     "printf '\\tlibcuda.so.1 (libc6,x86-64) => %s\\n'\n"
		     "printf '\\tlibcuda.so.1 (libc6) => /nonexistent/32/libcuda.so.1\\n'\n",
		     IT_LIB_NOTE, IT_LIB_PLAIN);
	assert_true(n > 0 && (size_t)n < sizeof(script));
	snprintf(prog, sizeof(prog), "%s", write_file("ldconfig", script, (size_t)n));
	assert_int_equal(chmod(prog, 0755), 0);
	assert_int_equal(vd_driver_search(NULL, prog, dirs, out, sizeof(out)), 0);
	assert_string_equal(out, IT_LIB_PLAIN);
	/* An ldconfig that cannot be run is not fatal: nothing is found. */
	assert_int_equal(vd_driver_search(NULL, tmp_path("no-ldconfig"), dirs, out, sizeof(out)), -ENOENT);
}

static int setup(void **state)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/vgpu-elfnote.XXXXXX", base && *base ? base : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 32];

	/* The directory holds only what these tests wrote. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(built_objects),
		cmocka_unit_test(hand_built_64),
		cmocka_unit_test(hand_built_32),
		cmocka_unit_test(second_note_in_area),
		cmocka_unit_test(not_elf),
		cmocka_unit_test(fifo),
		cmocka_unit_test(hostile),
		cmocka_unit_test(driver_env),
		cmocka_unit_test(driver_dirs),
		cmocka_unit_test(driver_ldconfig),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
