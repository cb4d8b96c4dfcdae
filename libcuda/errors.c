/*
 * cuGetErrorName / cuGetErrorString: answered locally, in our own words.
 * The names are the ABI's; the descriptions are vgpu's.  Tests compare
 * codes, never strings.
 */
#include <stddef.h>

#include "lc.h"

struct lc_err {
	int code;
	const char *name;
	const char *text;
};

#define E(sym, text) { sym, #sym, text }

static const struct lc_err lc_errs[] = {
	E(CUDA_SUCCESS, "no error"),
	E(CUDA_ERROR_INVALID_VALUE, "an argument is outside its allowed range"),
	E(CUDA_ERROR_OUT_OF_MEMORY, "not enough memory to complete the request"),
	E(CUDA_ERROR_NOT_INITIALIZED, "the driver is not initialised (call cuInit first; a forked child must not reuse its parent's session)"),
	E(CUDA_ERROR_DEINITIALIZED, "the driver is shutting down"),
	E(CUDA_ERROR_PROFILER_DISABLED, "the profiler is disabled for this run"),
	E(CUDA_ERROR_PROFILER_NOT_INITIALIZED, "the profiler was not initialised (deprecated)"),
	E(CUDA_ERROR_PROFILER_ALREADY_STARTED, "profiling was already started (deprecated)"),
	E(CUDA_ERROR_PROFILER_ALREADY_STOPPED, "profiling was already stopped (deprecated)"),
	E(CUDA_ERROR_STUB_LIBRARY, "a stub driver library was loaded instead of a real one"),
	E(CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER, "this call needs a newer driver"),
	E(CUDA_ERROR_DEVICE_UNAVAILABLE, "the device is unavailable (for vgpu: the connection to vgpud was lost)"),
	E(CUDA_ERROR_NO_DEVICE, "no CUDA device is available (for vgpu: no vgpud could be reached)"),
	E(CUDA_ERROR_INVALID_DEVICE, "the device ordinal does not name a device"),
	E(CUDA_ERROR_DEVICE_NOT_LICENSED, "the device lacks a licence for this operation"),
	E(CUDA_ERROR_INVALID_IMAGE, "the module image is not valid"),
	E(CUDA_ERROR_INVALID_CONTEXT, "no valid context for this call"),
	E(CUDA_ERROR_CONTEXT_ALREADY_CURRENT, "the context is already current (deprecated)"),
	E(CUDA_ERROR_MAP_FAILED, "mapping failed"),
	E(CUDA_ERROR_UNMAP_FAILED, "unmapping failed"),
	E(CUDA_ERROR_ARRAY_IS_MAPPED, "the array is mapped and cannot be destroyed"),
	E(CUDA_ERROR_ALREADY_MAPPED, "the resource is already mapped"),
	E(CUDA_ERROR_NO_BINARY_FOR_GPU, "the image holds no code that runs on this device"),
	E(CUDA_ERROR_ALREADY_ACQUIRED, "the resource was already acquired"),
	E(CUDA_ERROR_NOT_MAPPED, "the resource is not mapped"),
	E(CUDA_ERROR_NOT_MAPPED_AS_ARRAY, "the mapped resource is not an array"),
	E(CUDA_ERROR_NOT_MAPPED_AS_POINTER, "the mapped resource is not a pointer"),
	E(CUDA_ERROR_ECC_UNCORRECTABLE, "an uncorrectable memory (ECC) error happened"),
	E(CUDA_ERROR_UNSUPPORTED_LIMIT, "this limit is not supported by the device"),
	E(CUDA_ERROR_CONTEXT_ALREADY_IN_USE, "the context is already in use by another thread"),
	E(CUDA_ERROR_PEER_ACCESS_UNSUPPORTED, "peer access between these devices is not supported"),
	E(CUDA_ERROR_INVALID_PTX, "PTX compilation failed"),
	E(CUDA_ERROR_INVALID_GRAPHICS_CONTEXT, "the graphics context is not valid"),
	E(CUDA_ERROR_NVLINK_UNCORRECTABLE, "an uncorrectable NVLink error happened"),
	E(CUDA_ERROR_JIT_COMPILER_NOT_FOUND, "the PTX JIT compiler library is missing"),
	E(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, "the PTX version is newer than this toolchain supports"),
	E(CUDA_ERROR_JIT_COMPILATION_DISABLED, "JIT compilation is disabled"),
	E(CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY, "this execution affinity is not supported"),
	E(CUDA_ERROR_UNSUPPORTED_DEVSIDE_SYNC, "device-side synchronisation is not supported here"),
	E(CUDA_ERROR_CONTAINED, "an error was contained to this context"),
	E(CUDA_ERROR_INVALID_SOURCE, "the kernel source is not valid"),
	E(CUDA_ERROR_FILE_NOT_FOUND, "the file was not found"),
	E(CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND, "a shared-object symbol could not be resolved"),
	E(CUDA_ERROR_SHARED_OBJECT_INIT_FAILED, "a shared object failed to initialise"),
	E(CUDA_ERROR_OPERATING_SYSTEM, "an operating-system call failed"),
	E(CUDA_ERROR_INVALID_HANDLE, "the handle does not name a live object"),
	E(CUDA_ERROR_ILLEGAL_STATE, "the object is in a state that forbids this call"),
	E(CUDA_ERROR_LOSSY_QUERY, "the answer would lose information"),
	E(CUDA_ERROR_NOT_FOUND, "the named symbol or object was not found"),
	E(CUDA_ERROR_NOT_READY, "the work has not finished yet"),
	E(CUDA_ERROR_ILLEGAL_ADDRESS, "a kernel accessed an illegal address; the context is unusable"),
	E(CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "the launch needs more resources than the device has"),
	E(CUDA_ERROR_LAUNCH_TIMEOUT, "the kernel ran too long and was stopped"),
	E(CUDA_ERROR_LAUNCH_INCOMPATIBLE_TEXTURING, "the launch used incompatible texturing"),
	E(CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED, "peer access is already enabled"),
	E(CUDA_ERROR_PEER_ACCESS_NOT_ENABLED, "peer access was not enabled"),
	E(CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE, "the primary context is already active"),
	E(CUDA_ERROR_CONTEXT_IS_DESTROYED, "the context has been destroyed"),
	E(CUDA_ERROR_ASSERT, "a device-side assertion failed"),
	E(CUDA_ERROR_TOO_MANY_PEERS, "too many peer mappings"),
	E(CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED, "the host memory range is already registered"),
	E(CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED, "the host memory range is not registered"),
	E(CUDA_ERROR_HARDWARE_STACK_ERROR, "a kernel hit a hardware stack error"),
	E(CUDA_ERROR_ILLEGAL_INSTRUCTION, "a kernel executed an illegal instruction"),
	E(CUDA_ERROR_MISALIGNED_ADDRESS, "a kernel used a misaligned address"),
	E(CUDA_ERROR_INVALID_ADDRESS_SPACE, "a kernel used an address in the wrong address space"),
	E(CUDA_ERROR_INVALID_PC, "a kernel's program counter became invalid"),
	E(CUDA_ERROR_LAUNCH_FAILED, "the kernel failed while running"),
	E(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "the cooperative launch has more blocks than can run at once"),
	E(CUDA_ERROR_TENSOR_MEMORY_LEAK, "a kernel exited without releasing tensor memory"),
	E(CUDA_ERROR_NOT_PERMITTED, "the operation is not permitted"),
	E(CUDA_ERROR_NOT_SUPPORTED, "the operation is not supported (for vgpu: not built yet, see the log)"),
	E(CUDA_ERROR_SYSTEM_NOT_READY, "the system is not ready for CUDA work"),
	E(CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "the driver and kernel module versions differ"),
	E(CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE, "forward compatibility is not supported on this device"),
	E(CUDA_ERROR_MPS_CONNECTION_FAILED, "connecting to the MPS server failed"),
	E(CUDA_ERROR_MPS_RPC_FAILURE, "a call to the MPS server failed"),
	E(CUDA_ERROR_MPS_SERVER_NOT_READY, "the MPS server is not ready"),
	E(CUDA_ERROR_MPS_MAX_CLIENTS_REACHED, "the MPS server has all the clients it allows"),
	E(CUDA_ERROR_MPS_MAX_CONNECTIONS_REACHED, "the MPS server has all the connections it allows"),
	E(CUDA_ERROR_MPS_CLIENT_TERMINATED, "the MPS client was terminated"),
	E(CUDA_ERROR_CDP_NOT_SUPPORTED, "dynamic parallelism is not supported here"),
	E(CUDA_ERROR_CDP_VERSION_MISMATCH, "dynamic parallelism versions differ"),
	E(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, "the operation is not allowed while a stream is capturing"),
	E(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, "the stream capture was invalidated by an earlier error"),
	E(CUDA_ERROR_STREAM_CAPTURE_MERGE, "two independent captures would be merged"),
	E(CUDA_ERROR_STREAM_CAPTURE_UNMATCHED, "the capture was not begun in this stream"),
	E(CUDA_ERROR_STREAM_CAPTURE_UNJOINED, "a forked capture stream was not joined"),
	E(CUDA_ERROR_STREAM_CAPTURE_ISOLATION, "the capture would cross its isolation boundary"),
	E(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, "the legacy stream would implicitly depend on a capturing stream"),
	E(CUDA_ERROR_CAPTURED_EVENT, "the event was recorded in a capture and cannot be used this way"),
	E(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, "the capture was begun in another thread"),
	E(CUDA_ERROR_TIMEOUT, "the wait timed out"),
	E(CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, "the executable graph could not be updated"),
	E(CUDA_ERROR_EXTERNAL_DEVICE, "an external device reported an error"),
	E(CUDA_ERROR_INVALID_CLUSTER_SIZE, "the cluster size is not valid"),
	E(CUDA_ERROR_FUNCTION_NOT_LOADED, "the function is not loaded yet"),
	E(CUDA_ERROR_INVALID_RESOURCE_TYPE, "the resource type is not valid"),
	E(CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "the resource configuration is not valid"),
	E(CUDA_ERROR_KEY_ROTATION, "a key rotation happened"),
	E(CUDA_ERROR_UNKNOWN, "an unknown internal error happened"),
};

#undef E

static const struct lc_err *err_find(CUresult error)
{
	size_t i;

	for (i = 0; i < sizeof(lc_errs) / sizeof(lc_errs[0]); i++)
		if (lc_errs[i].code == (int)error)
			return &lc_errs[i];
	return NULL;
}

VG_EXPORT CUresult cuGetErrorString(CUresult error, const char **pStr)
{
	const struct lc_err *e;

	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	e = err_find(error);
	*pStr = e ? e->text : NULL;
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

VG_EXPORT CUresult cuGetErrorName(CUresult error, const char **pStr)
{
	const struct lc_err *e;

	if (!pStr)
		return CUDA_ERROR_INVALID_VALUE;
	e = err_find(error);
	*pStr = e ? e->name : NULL;
	return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
