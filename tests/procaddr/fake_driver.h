/* The driver calls the export tables make, answered from memory for tests. */
#ifndef VGPU_FAKE_DRIVER_H
#define VGPU_FAKE_DRIVER_H

#include "vgpu/cuda_types.h"

#define FAKE_CTX_A ((CUcontext)0x1000)	/* primary context of device 0 */
#define FAKE_CTX_B ((CUcontext)0x2000)

extern const unsigned char fake_uuid[16];
extern int fake_primary_refs;
extern int fake_ctxid_calls;
extern int fake_streamid_calls;

/* The context ended on the "host": its next id is new. */
void fake_ctx_forget(CUcontext ctx);

#endif
