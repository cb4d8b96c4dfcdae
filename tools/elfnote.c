/*
 * Finds a note owned by "vgpu" in an ELF file's note sections or segments.
 *
 * The file is untrusted: every offset and size is checked against the
 * file's size, and the file is read with pread rather than mapped, so a
 * file truncated while we look at it gives a short read, never SIGBUS.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfnote.h"

#define NOTE_OWNER "vgpu"
#define NOTE_TYPE  1u
/* Real note areas are a few hundred bytes; larger ones are not read. */
#define VD_NOTE_AREA_MAX (1u << 20)
/* Header tables beyond this many entries are not ELF files we load. */
#define VD_ELF_ENTRIES_MAX 65535u

/* The fields both ELF classes share, widened. */
struct elf_table {
	uint64_t off;		/* file offset of the table */
	uint64_t entsize;	/* bytes per entry, as the file says */
	uint64_t num;
};

struct elf_file {
	int fd;
	uint64_t size;
	int is64;
};

static int in_file(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int read_at(const struct elf_file *f, void *p, size_t n, uint64_t off)
{
	size_t done = 0;

	if (!in_file(off, n, f->size))
		return -ENOEXEC;
	while (done < n) {
		ssize_t r = pread(f->fd, (char *)p + done, n - done, (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENOEXEC;	/* shrank under us */
		done += (size_t)r;
	}
	return 0;
}

/* Walks one note area [off, off+len): 1 when it holds our note. */
static int area_has_vgpu(const struct elf_file *f, uint64_t off, uint64_t len)
{
	uint8_t *p;
	uint64_t pos = 0;
	int ret = 0;

	if (len < 12 || !in_file(off, len, f->size) || len > VD_NOTE_AREA_MAX)
		return 0;
	p = malloc(len);
	if (!p)
		return -ENOMEM;
	if (read_at(f, p, len, off) < 0)
		goto out;
	while (len - pos >= 12) {
		uint32_t namesz, descsz, type;
		uint64_t name, next;

		memcpy(&namesz, p + pos, 4);
		memcpy(&descsz, p + pos + 4, 4);
		memcpy(&type, p + pos + 8, 4);
		name = pos + 12;
		/* Both sizes are 32-bit, so the sum cannot wrap 64 bits. */
		next = name + (((uint64_t)namesz + 3) & ~3ull) + (((uint64_t)descsz + 3) & ~3ull);
		if (next > len)
			break;
		if (type == NOTE_TYPE && namesz == sizeof(NOTE_OWNER) &&
		    !memcmp(p + name, NOTE_OWNER, sizeof(NOTE_OWNER))) {
			ret = 1;
			break;
		}
		pos = next;
	}
out:
	free(p);
	return ret;
}

/*
 * Reads entry i of a program or section header table and returns its type,
 * note-area offset and size.  The class decides the layout.
 */
static int entry_read(const struct elf_file *f, const struct elf_table *t, uint64_t i, int phdr,
		      uint32_t *type, uint64_t *off, uint64_t *len)
{
	union {
		Elf64_Phdr p64;
		Elf32_Phdr p32;
		Elf64_Shdr s64;
		Elf32_Shdr s32;
	} u;
	size_t n;
	int ret;

	if (phdr)
		n = f->is64 ? sizeof(u.p64) : sizeof(u.p32);
	else
		n = f->is64 ? sizeof(u.s64) : sizeof(u.s32);
	ret = read_at(f, &u, n, t->off + i * t->entsize);
	if (ret < 0)
		return ret;
	if (phdr && f->is64)
		*type = u.p64.p_type, *off = u.p64.p_offset, *len = u.p64.p_filesz;
	else if (phdr)
		*type = u.p32.p_type, *off = u.p32.p_offset, *len = u.p32.p_filesz;
	else if (f->is64)
		*type = u.s64.sh_type, *off = u.s64.sh_offset, *len = u.s64.sh_size;
	else
		*type = u.s32.sh_type, *off = u.s32.sh_offset, *len = u.s32.sh_size;
	return 0;
}

static int table_has_vgpu(const struct elf_file *f, const struct elf_table *t, int phdr)
{
	size_t want;
	uint64_t i;

	if (phdr)
		want = f->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	else
		want = f->is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
	/* A table we cannot read whole is ignored: the other table may do. */
	if (t->num == 0 || t->entsize != want || t->num > VD_ELF_ENTRIES_MAX ||
	    !in_file(t->off, t->num * t->entsize, f->size))
		return 0;
	for (i = 0; i < t->num; i++) {
		uint64_t off, len;
		uint32_t type;
		int ret;

		if (entry_read(f, t, i, phdr, &type, &off, &len) < 0)
			return 0;
		if (type != (phdr ? PT_NOTE : SHT_NOTE))
			continue;
		ret = area_has_vgpu(f, off, len);
		if (ret != 0)
			return ret;
	}
	return 0;
}

static int scan(const struct elf_file *f)
{
	struct elf_table ph, sh;
	int ret;

	if (f->is64) {
		Elf64_Ehdr eh;

		ret = read_at(f, &eh, sizeof(eh), 0);
		if (ret < 0)
			return ret;
		ph = (struct elf_table){ eh.e_phoff, eh.e_phentsize, eh.e_phnum };
		sh = (struct elf_table){ eh.e_shoff, eh.e_shentsize, eh.e_shnum };
	} else {
		Elf32_Ehdr eh;

		ret = read_at(f, &eh, sizeof(eh), 0);
		if (ret < 0)
			return ret;
		ph = (struct elf_table){ eh.e_phoff, eh.e_phentsize, eh.e_phnum };
		sh = (struct elf_table){ eh.e_shoff, eh.e_shentsize, eh.e_shnum };
	}
	/* A stripped file may lack sections; a linked one always has segments. */
	ret = table_has_vgpu(f, &ph, 1);
	if (ret == 0)
		ret = table_has_vgpu(f, &sh, 0);
	return ret;
}

int vd_elf_has_vgpu_note(const char *path)
{
	unsigned char id[EI_NIDENT];
	struct elf_file f;
	struct stat st;
	int ret;

	/* O_NONBLOCK: opening a FIFO planted at the path must not block. */
	f.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (f.fd < 0)
		return -errno;
	if (fstat(f.fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -ENOEXEC;
		goto out;
	}
	f.size = (uint64_t)st.st_size;
	ret = read_at(&f, id, sizeof(id), 0);
	if (ret < 0)
		goto out;
	if (memcmp(id, ELFMAG, SELFMAG) != 0 ||
	    (id[EI_CLASS] != ELFCLASS64 && id[EI_CLASS] != ELFCLASS32) ||
	    id[EI_DATA] != ELFDATA2LSB) {
		ret = -ENOEXEC;
		goto out;
	}
	f.is64 = id[EI_CLASS] == ELFCLASS64;
	ret = scan(&f);
out:
	close(f.fd);
	return ret;
}
