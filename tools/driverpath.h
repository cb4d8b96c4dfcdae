/*
 * Where NVIDIA's libcuda.so.1 is on this machine, for the daemon and the CLI.
 *
 * A candidate is accepted only when it is a readable ELF file without the
 * "vgpu" note: vgpu's own libcuda.so.1 installed in a system directory must
 * never be mistaken for the driver.
 */
#ifndef VGPU_DRIVERPATH_H
#define VGPU_DRIVERPATH_H

#include <stddef.h>

#define VD_DRIVER_NAME "libcuda.so.1"

/*
 * 0 when path is usable as NVIDIA's driver; -ENOENT/-EACCES/... when it
 * cannot be read, -ENOEXEC when it is not ELF, -EEXIST when it is ours.
 */
int vd_driver_check(const char *path);

/*
 * Finds the driver: VGPU_DRIVER when set (then nothing else is tried: an
 * explicit setting that does not work is an error, not a hint), else the
 * ldconfig cache, else the usual directories.  Writes the path to out.
 * 0, or -ENOENT when there is none, -ENAMETOOLONG when out is too small,
 * or VGPU_DRIVER's own error.
 */
int vd_driver_find(char *out, size_t outlen);

/*
 * The search itself, with the inputs spelled out (tests use it): env is
 * VGPU_DRIVER's value or NULL, ldconfig the program to ask (NULL: do not),
 * dirs a NULL-terminated list of directories to try in order.
 */
int vd_driver_search(const char *env, const char *ldconfig, const char *const *dirs,
		     char *out, size_t outlen);

#endif
