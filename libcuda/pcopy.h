/*
 * A large memcpy split over helper threads (pcopy.c, VGPU_COPY_THREADS).
 */
#ifndef VGPU_LC_PCOPY_H
#define VGPU_LC_PCOPY_H

#include <stddef.h>

/* memcpy(dst, src, n), with helper threads when n is large (no overlap). */
void lc_pcopy(void *dst, const void *src, size_t n);
/* Helper threads running (0 before the first large copy, or when off). */
int lc_pcopy_helpers(void);

#endif
