/*
 * The API descriptor: what the generator (tools/vgpu_gen.py) knows about each
 * driver function, shared by the guest library and the worker.
 *
 * Generic calls (classes sync and async) are marshalled by walking the
 * descriptor.  CALL payload, argument by argument, in declaration order:
 *
 *   VG_A_SCALAR   u64 (the value's bits, zero-extended; floats as their bits)
 *   VG_A_DEVICE   u32 host device ordinal
 *   VG_A_HANDLE   u64 handle id (0, 1, 2 are NULL, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD)
 *   VG_A_STR      blob (u32 length incl. NUL, or VG_NULL_LEN; then bytes)
 *   VG_A_IN       blob of count elements; handle elements travel as u64 ids
 *   VG_A_INOUT    the same as IN
 *   VG_A_OUT      u32 element count, or VG_NULL_LEN for a NULL pointer; for
 *                 handle elements then count x u64 proposed ids
 *
 * A data pointer (VG_E_DATA) into guest pinned memory that is shared with
 * the worker (same address on both sides, VG_OP_HOST_MEM) travels instead as
 * u32 VG_SHARED_LEN then u64 address: no bytes are copied, and such an
 * output is not part of the reply.  The worker checks the whole range lies
 * in memory this client shared.
 *
 * REPLY payload: for each OUT and INOUT argument that was not NULL, in order,
 * a blob with its contents after the call (handle elements as u64 final ids,
 * device elements as u32 ordinals).  The header's status is the CUresult.
 */
#ifndef VGPU_API_H
#define VGPU_API_H

#include <stdint.h>

enum vg_class {
	VG_CLASS_LOCAL = 1,
	VG_CLASS_SYNC = 2,
	VG_CLASS_ASYNC = 3,
	VG_CLASS_MANUAL = 4,
	VG_CLASS_UNSUPPORTED = 5,
};

enum vg_arg_kind {
	VG_A_SCALAR = 1,
	VG_A_DEVICE,
	VG_A_HANDLE,
	VG_A_STR,
	VG_A_IN,
	VG_A_OUT,
	VG_A_INOUT,
	VG_A_OPAQUE,	/* manual functions only: never marshalled generically */
};

/* What one element behind an IN/OUT/INOUT pointer is. */
enum vg_elem_kind {
	VG_E_DATA = 1,	/* plain bytes, elem_size each */
	VG_E_HANDLE,	/* a handle: u64 id on the wire, pointer-sized in memory */
	VG_E_DEVICE,	/* a CUdevice ordinal */
};

#define VG_ARG_FLOAT    0x1	/* SCALAR: float (elem_size 4) or double (8) */
#define VG_ARG_DESTROY  0x2	/* HANDLE: the call ends this handle's life */

#define VG_STR_MAX      (64u << 10)	/* one string argument, bytes */
#define VG_SHARED_LEN   0xfffffffeu	/* a pointer into shared pinned memory follows */

struct vg_arg_desc {
	uint8_t kind;		/* enum vg_arg_kind */
	uint8_t elem;		/* enum vg_elem_kind, pointer kinds only */
	uint8_t flags;		/* VG_ARG_* */
	int8_t count_arg;	/* index of the argument giving the count, or -1 */
	uint16_t htype;		/* handle type (VG_H_*), handle kinds only */
	uint32_t elem_size;	/* bytes of one element (scalars: the value's size) */
	uint32_t count;		/* fixed element count when count_arg < 0 */
};

struct vg_fn_desc {
	const char *name;	/* NULL: no function has this id */
	uint8_t cls;		/* enum vg_class */
	uint8_t generic;	/* every argument can be marshalled generically */
	uint8_t nargs;
	const struct vg_arg_desc *args;
};

#endif
