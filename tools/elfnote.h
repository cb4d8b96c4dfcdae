/*
 * ELF notes of driver files: the worker refuses to load a "driver" that is
 * really vgpu's own libcuda.so.1 (it carries a note owned by "vgpu").
 */
#ifndef VGPU_ELFNOTE_H
#define VGPU_ELFNOTE_H

/*
 * 1 when the ELF file at path has a note owned by "vgpu" of type 1 (in a
 * PT_NOTE segment or an SHT_NOTE section), 0 when not, -errno on error
 * (-ENOEXEC: not a regular ELF file).
 */
int vd_elf_has_vgpu_note(const char *path);

#endif
