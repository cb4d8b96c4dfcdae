/*
 * The proof of path every GPU-suite program prints (tests/gpu/README.md):
 * "PATH file" for each libcuda the dynamic linker mapped into this process
 * ("PATH none" when none), then "NVML yes|no".  No CUDA headers needed.
 */
#ifndef VGPU_PATHPROOF_H
#define VGPU_PATHPROOF_H

/* Prints the lines; 0, or -1 when /proc/self/maps could not be read. */
int vg_print_path_proof(void);

#endif
