/*
 * Finds a note owned by "vgpu" in an ELF file's note sections or segments.
 * The file is untrusted: every offset and size is checked against the file.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfnote.h"

#define NOTE_OWNER "vgpu"

static int in_file(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/* Walks one note area [off, off+len). */
static int notes_have_vgpu(const uint8_t *p, uint64_t size, uint64_t off, uint64_t len)
{
	uint64_t end;

	if (!in_file(off, len, size))
		return 0;
	end = off + len;
	while (end - off >= 12) {
		uint32_t namesz, descsz;
		uint64_t name, next;

		memcpy(&namesz, p + off, 4);
		memcpy(&descsz, p + off + 4, 4);
		name = off + 12;
		next = name + (((uint64_t)namesz + 3) & ~3ull);
		next += ((uint64_t)descsz + 3) & ~3ull;
		if (next > end || next <= off)
			return 0;
		if (namesz == sizeof(NOTE_OWNER) && !memcmp(p + name, NOTE_OWNER, sizeof(NOTE_OWNER)))
			return 1;
		off = next;
	}
	return 0;
}

static int scan64(const uint8_t *p, uint64_t size)
{
	Elf64_Ehdr eh;
	uint64_t i;

	if (size < sizeof(eh))
		return 0;
	memcpy(&eh, p, sizeof(eh));
	if (eh.e_phentsize == sizeof(Elf64_Phdr) &&
	    in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), size)) {
		for (i = 0; i < eh.e_phnum; i++) {
			Elf64_Phdr ph;

			memcpy(&ph, p + eh.e_phoff + i * sizeof(ph), sizeof(ph));
			if (ph.p_type == PT_NOTE && notes_have_vgpu(p, size, ph.p_offset, ph.p_filesz))
				return 1;
		}
	}
	if (eh.e_shentsize == sizeof(Elf64_Shdr) &&
	    in_file(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf64_Shdr), size)) {
		for (i = 0; i < eh.e_shnum; i++) {
			Elf64_Shdr sh;

			memcpy(&sh, p + eh.e_shoff + i * sizeof(sh), sizeof(sh));
			if (sh.sh_type == SHT_NOTE && notes_have_vgpu(p, size, sh.sh_offset, sh.sh_size))
				return 1;
		}
	}
	return 0;
}

static int scan32(const uint8_t *p, uint64_t size)
{
	Elf32_Ehdr eh;
	uint64_t i;

	if (size < sizeof(eh))
		return 0;
	memcpy(&eh, p, sizeof(eh));
	if (eh.e_phentsize == sizeof(Elf32_Phdr) &&
	    in_file(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf32_Phdr), size)) {
		for (i = 0; i < eh.e_phnum; i++) {
			Elf32_Phdr ph;

			memcpy(&ph, p + eh.e_phoff + i * sizeof(ph), sizeof(ph));
			if (ph.p_type == PT_NOTE && notes_have_vgpu(p, size, ph.p_offset, ph.p_filesz))
				return 1;
		}
	}
	if (eh.e_shentsize == sizeof(Elf32_Shdr) &&
	    in_file(eh.e_shoff, (uint64_t)eh.e_shnum * sizeof(Elf32_Shdr), size)) {
		for (i = 0; i < eh.e_shnum; i++) {
			Elf32_Shdr sh;

			memcpy(&sh, p + eh.e_shoff + i * sizeof(sh), sizeof(sh));
			if (sh.sh_type == SHT_NOTE && notes_have_vgpu(p, size, sh.sh_offset, sh.sh_size))
				return 1;
		}
	}
	return 0;
}

int vd_elf_has_vgpu_note(const char *path)
{
	struct stat st;
	uint8_t *p;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (st.st_size < EI_NIDENT) {
		close(fd);
		return -ENOEXEC;
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -errno;
	if (memcmp(p, ELFMAG, SELFMAG) != 0)
		ret = -ENOEXEC;
	else if (p[EI_CLASS] == ELFCLASS64)
		ret = scan64(p, (uint64_t)st.st_size);
	else if (p[EI_CLASS] == ELFCLASS32)
		ret = scan32(p, (uint64_t)st.st_size);
	else
		ret = -ENOEXEC;
	munmap(p, (size_t)st.st_size);
	return ret;
}
