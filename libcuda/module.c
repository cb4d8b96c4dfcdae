/*
 * Module loading: find how long an image is (PTX text, ELF cubin, fatbin,
 * or the fatbin wrapper cudart registers) and ship it with VG_OP_MODULE_LOAD.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lc.h"
#include "tp.h"


#define FATBIN_MAGIC   0xBA55ED50u
#define WRAPPER_MAGIC  0x466243b1u

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

/* An ELF image ends where its furthest header table or section ends. */
static size_t elf_size(const uint8_t *p)
{
	uint64_t shoff, phoff, end;
	uint16_t shentsize, shnum, phentsize, phnum, i;

	if (p[4] != 2)		/* ELFCLASS64 only: that is what nvcc emits */
		return 0;
	phoff = rd64(p + 0x20);
	shoff = rd64(p + 0x28);
	phentsize = rd16(p + 0x36);
	phnum = rd16(p + 0x38);
	shentsize = rd16(p + 0x3a);
	shnum = rd16(p + 0x3c);
	end = 64;
	if (phoff + (uint64_t)phnum * phentsize > end)
		end = phoff + (uint64_t)phnum * phentsize;
	if (shoff + (uint64_t)shnum * shentsize > end)
		end = shoff + (uint64_t)shnum * shentsize;
	for (i = 0; i < shnum && shentsize >= 0x28; i++) {
		const uint8_t *sh = p + shoff + (uint64_t)i * shentsize;
		uint32_t type = rd32(sh + 4);
		uint64_t off = rd64(sh + 0x18), size = rd64(sh + 0x20);

		if (type != 8 /* SHT_NOBITS */ && off + size > end)
			end = off + size;
	}
	for (i = 0; i < phnum && phentsize >= 0x38; i++) {
		const uint8_t *ph = p + phoff + (uint64_t)i * phentsize;
		uint64_t off = rd64(ph + 0x08), filesz = rd64(ph + 0x20);

		if (off + filesz > end)
			end = off + filesz;
	}
	return end > VG_MSG_MAX ? 0 : (size_t)end;
}

/*
 * The bytes to ship for an image, or 0 when its format is not recognised.
 * *start may move: a wrapper points at the fatbin it wraps.
 */
size_t lc_image_size(const void **start);
size_t lc_image_size(const void **start)
{
	const uint8_t *p = *start;
	uint32_t magic;

	if (!p)
		return 0;
	magic = rd32(p);
	if (magic == WRAPPER_MAGIC) {
		p = (const uint8_t *)(uintptr_t)rd64(p + 8);
		if (!p)
			return 0;
		*start = p;
		magic = rd32(p);
	}
	if (magic == FATBIN_MAGIC) {
		uint64_t n = (uint64_t)rd16(p + 6) + rd64(p + 8);

		return n > VG_MSG_MAX ? 0 : (size_t)n;
	}
	if (!memcmp(p, "\177ELF", 4))
		return elf_size(p);
	/* PTX (or anything textual): up to and including the NUL. */
	return strnlen((const char *)p, VG_MSG_MAX - 1) + 1;
}

/*
 * An image as the host gets it (include/vgpu/ops.h, VG_IMG_*): the image,
 * then u32 n and the fatbins of a version-2 wrapper's NULL-terminated list
 * (relocatable device code), which the host puts back into a wrapper of its
 * own.  Large pieces are offered by hash when the worker keeps a cache;
 * pieces the worker asked for (want_inline) go as bytes.
 */

struct lc_image {
	const void *piece[VG_IMG_PIECES_MAX];
	size_t len[VG_IMG_PIECES_MAX];
	uint32_t n;			/* pieces: the image and the wrapper's fatbins */
	uint8_t hashed[VG_IMG_PIECES_MAX];
	uint8_t hash[VG_IMG_PIECES_MAX][TP_SHA256_LEN];
	uint8_t want_inline[VG_IMG_PIECES_MAX];
};

static CUresult image_parse(struct lc_image *im, const void *image)
{
	const uint8_t *w = image;
	const void *const *list = NULL;
	const void *start = image;
	uint32_t i;

	memset(im, 0, sizeof(*im));
	if (rd32(w) == WRAPPER_MAGIC && rd32(w + 4) == 2)
		list = (const void *const *)(uintptr_t)rd64(w + 16);
	im->len[0] = lc_image_size(&start);
	im->piece[0] = start;
	if (!im->len[0]) {
		VG_WARN("an image in an unknown format (first bytes %08x %08x %08x %08x): refused",
			rd32(w), rd32(w + 4), rd32(w + 8), rd32(w + 12));
		return CUDA_ERROR_INVALID_IMAGE;
	}
	im->n = 1;
	while (list && list[im->n - 1] && im->n < VG_IMG_PIECES_MAX) {
		const void *f = list[im->n - 1];

		im->len[im->n] = lc_image_size(&f);
		im->piece[im->n] = f;
		if (!im->len[im->n])
			return CUDA_ERROR_INVALID_IMAGE;
		im->n++;
	}
	VG_DEBUG("image: %zu bytes%s, %u more fatbins", im->len[0], start != image ? " (wrapped)" : "", im->n - 1);
	for (i = 0; i < im->n; i++)
		im->want_inline[i] = !(lc.caps & VG_CAP_MODCACHE) || im->len[i] < VG_IMG_CACHE_MIN;
	return CUDA_SUCCESS;
}

static void image_put(struct vg_buf *b, struct lc_image *im)
{
	uint32_t i;

	for (i = 0; i < im->n; i++) {
		if (i == 1)
			vg_put_u32(b, im->n - 1);
		if (im->want_inline[i]) {
			vg_put_u32(b, VG_IMG_INLINE);
			vg_put_blob(b, im->piece[i], (uint32_t)im->len[i]);
			continue;
		}
		if (!im->hashed[i]) {
			tp_sha256(im->piece[i], im->len[i], im->hash[i]);
			im->hashed[i] = 1;
		}
		vg_put_u32(b, VG_IMG_CACHED);
		vg_put_bytes(b, im->hash[i], TP_SHA256_LEN);
		vg_put_u32(b, (uint32_t)im->len[i]);
	}
	if (im->n == 1)
		vg_put_u32(b, 0);
}

/*
 * The worker's answer to a load: the new object's id, or the pieces its
 * cache lacks (marked want_inline; *again set).  0 or a CUresult.
 */
static CUresult image_reply(struct lc_image *im, struct vg_buf *rep, uint64_t *id, int *again)
{
	struct vg_rd r;
	uint32_t n, i, k;

	*again = 0;
	vg_rd_init(&r, rep->p, rep->len);
	*id = vg_get_u64(&r);
	if (r.err)
		return CUDA_ERROR_UNKNOWN;
	if (*id)
		return r.off == r.len ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
	n = vg_get_u32(&r);
	if (r.err || !n || n > im->n)
		return CUDA_ERROR_UNKNOWN;
	for (i = 0; i < n; i++) {
		k = vg_get_u32(&r);
		if (r.err || k >= im->n || im->want_inline[k])
			return CUDA_ERROR_UNKNOWN;
		im->want_inline[k] = 1;
	}
	*again = 1;
	return r.off == r.len ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
}

/*
 * Sends a load (head: the fields before the image; tail: after it) until
 * the worker has every piece: at most once per piece it lacks, since each
 * answer moves pieces to inline for good.
 */
static CUresult image_load(uint32_t op, struct lc_image *im, const struct vg_buf *head, const struct vg_buf *tail,
			   uint64_t *id)
{
	struct vg_buf *b, rep;
	CUresult res;
	int again;

	vg_buf_init(&rep);
	do {
		b = lc_scratch();
		if (!b) {
			res = CUDA_ERROR_DEVICE_UNAVAILABLE;
			break;
		}
		vg_put_bytes(b, head->p, head->len);
		image_put(b, im);
		if (tail)
			vg_put_bytes(b, tail->p, tail->len);
		res = lc_rpc(op, b, &rep);
		if (res != CUDA_SUCCESS)
			break;
		res = image_reply(im, &rep, id, &again);
		if (res != CUDA_SUCCESS)
			VG_WARN("malformed answer to a module load");
	} while (res == CUDA_SUCCESS && again);
	vg_buf_fini(&rep);
	return res;
}

static CUresult module_load(CUmodule *module, const void *image, uint32_t kind)
{
	struct lc_image *im;
	struct vg_buf head;
	CUresult res = lc_check();
	uint64_t id = 0;

	if (res != CUDA_SUCCESS)
		return res;
	if (!module || !image)
		return CUDA_ERROR_INVALID_VALUE;
	im = malloc(sizeof(*im));
	if (!im)
		return CUDA_ERROR_OUT_OF_MEMORY;
	res = image_parse(im, image);
	if (res == CUDA_SUCCESS) {
		vg_buf_init(&head);
		vg_put_u32(&head, kind);
		vg_put_u64(&head, lc_handle_propose());
		res = head.err ? CUDA_ERROR_OUT_OF_MEMORY : image_load(VG_OP_MODULE_LOAD, im, &head, NULL, &id);
		vg_buf_fini(&head);
	}
	free(im);
	if (res == CUDA_SUCCESS) {
		lc_handle_add(id, VG_H_CUmodule);
		*module = (CUmodule)(uintptr_t)id;
	}
	return res;
}

VG_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
	return module_load(module, image, VG_MOD_DATA);
}

VG_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
	return module_load(module, fatCubin, VG_MOD_FATBIN);
}

/*
 * JIT options are not forwarded yet: the image is compiled with the
 * host's defaults.  Output options get empty logs and zero times, so
 * callers that print them see nothing rather than garbage.
 */
VG_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
				      CUjit_option *options, void **optionValues)
{
	unsigned int i;
	CUresult res;

	if (numOptions && (!options || !optionValues))
		return CUDA_ERROR_INVALID_VALUE;
	res = module_load(module, image, VG_MOD_DATA_EX);
	for (i = 0; i < numOptions; i++) {
		switch ((int)options[i]) {
		case CU_JIT_WALL_TIME: {
			float z = 0;

			memcpy(&optionValues[i], &z, sizeof(z));
			break;
		}
		case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
		case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
			optionValues[i] = NULL;
			break;
		case CU_JIT_INFO_LOG_BUFFER:
		case CU_JIT_ERROR_LOG_BUFFER:
			if (optionValues[i])
				*(char *)optionValues[i] = '\0';
			break;
		default:
			break;
		}
	}
	return res;
}

/* Reads an image file whole, NUL-terminated (PTX is text). */
static CUresult read_image_file(const char *fname, void **out, size_t *len)
{
	struct stat st;
	char *img;
	ssize_t got;
	size_t off = 0;
	int fd;

	fd = open(fname, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CUDA_ERROR_FILE_NOT_FOUND;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > VG_MSG_MAX - 4096) {
		close(fd);
		return CUDA_ERROR_INVALID_IMAGE;
	}
	img = malloc((size_t)st.st_size + 1);
	if (!img) {
		close(fd);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	while (off < (size_t)st.st_size) {
		got = read(fd, img + off, (size_t)st.st_size - off);
		if (got <= 0)
			break;
		off += (size_t)got;
	}
	close(fd);
	if (off != (size_t)st.st_size) {
		free(img);
		return CUDA_ERROR_FILE_NOT_FOUND;
	}
	img[off] = '\0';
	*out = img;
	*len = off;
	return CUDA_SUCCESS;
}

VG_EXPORT CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
	CUresult res = lc_check();
	void *img = NULL;
	size_t n = 0;

	if (res != CUDA_SUCCESS)
		return res;
	if (!module || !fname)
		return CUDA_ERROR_INVALID_VALUE;
	res = read_image_file(fname, &img, &n);
	if (res == CUDA_SUCCESS)
		res = module_load(module, img, VG_MOD_DATA);
	free(img);
	return res;
}

/*
 * Libraries (cudart 12+ loads its fatbins this way).  Of the options, the
 * host-side symbol relocations (CU_JIT_GLOBAL_SYMBOL_NAMES / ADDRESSES /
 * COUNT: device globals another module defines, by name and device address)
 * are forwarded; the others are not needed by the host's load.
 *
 * LIBRARY_LOAD: u64 proposed id, image, u32 nsyms (<= VG_GLOBAL_SYMS_MAX),
 * nsyms x (blob name, u64 device address).  Reply: u64 library id.
 */
static CUresult put_global_symbols(struct vg_buf *b, const CUjit_option *opts, void *const *vals, unsigned int n)
{
	const char *const *names = NULL;
	void *const *addrs = NULL;
	uint64_t count = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (opts[i] == CU_JIT_GLOBAL_SYMBOL_NAMES)
			names = (const char *const *)vals[i];
		else if (opts[i] == CU_JIT_GLOBAL_SYMBOL_ADDRESSES)
			addrs = (void *const *)vals[i];
		else if (opts[i] == CU_JIT_GLOBAL_SYMBOL_COUNT)
			count = (uint64_t)(uintptr_t)vals[i] & 0xffffffffu;
	}
	if (!names || !addrs)
		count = 0;
	if (count > VG_GLOBAL_SYMS_MAX)
		return CUDA_ERROR_INVALID_VALUE;
	if (count)
		VG_DEBUG("library load with %llu host-side symbol relocations", (unsigned long long)count);
	vg_put_u32(b, (uint32_t)count);
	for (i = 0; i < count; i++) {
		size_t len = names[i] ? strnlen(names[i], VG_STR_MAX) : VG_STR_MAX;

		if (len >= VG_STR_MAX)
			return CUDA_ERROR_INVALID_VALUE;
		vg_put_blob(b, names[i], (uint32_t)len + 1);
		vg_put_u64(b, (uint64_t)(uintptr_t)addrs[i]);
	}
	return CUDA_SUCCESS;
}

static CUresult library_load(CUlibrary *library, const void *code, const CUjit_option *opts, void *const *vals,
			     unsigned int nopts)
{
	struct lc_image *im;
	struct vg_buf head, tail;
	CUresult res = lc_check();
	uint64_t id = 0;

	if (res != CUDA_SUCCESS)
		return res;
	if (!library || !code)
		return CUDA_ERROR_INVALID_VALUE;
	im = malloc(sizeof(*im));
	if (!im)
		return CUDA_ERROR_OUT_OF_MEMORY;
	vg_buf_init(&head);
	vg_buf_init(&tail);
	vg_put_u64(&head, lc_handle_propose());
	res = image_parse(im, code);
	if (res == CUDA_SUCCESS)
		res = put_global_symbols(&tail, opts, vals, nopts);
	if (res == CUDA_SUCCESS && (head.err || tail.err))
		res = CUDA_ERROR_OUT_OF_MEMORY;
	if (res == CUDA_SUCCESS)
		res = image_load(VG_OP_LIBRARY_LOAD, im, &head, &tail, &id);
	vg_buf_fini(&head);
	vg_buf_fini(&tail);
	free(im);
	if (res == CUDA_SUCCESS) {
		lc_handle_add(id, VG_H_CUlibrary);
		*library = (CUlibrary)(uintptr_t)id;
	}
	return res;
}

VG_EXPORT CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions,
				     void **jitOptionsValues, unsigned int numJitOptions,
				     CUlibraryOption *libraryOptions, void **libraryOptionValues,
				     unsigned int numLibraryOptions)
{
	CUresult res;

	/*
	 * Option arrays are not validated here: the options are not forwarded
	 * (save the symbol relocations), and callers such as cuBLASLt pass
	 * counts with arrays the driver does not insist on.
	 */
	(void)libraryOptions;
	(void)libraryOptionValues;
	(void)numLibraryOptions;
	res = library_load(library, code, jitOptions, jitOptionsValues, jitOptions && jitOptionsValues ? numJitOptions : 0);
	if (res != CUDA_SUCCESS)
		VG_DEBUG("cuLibraryLoadData(%p, %u jit, %u library options) failed here: %d", code, numJitOptions,
			 numLibraryOptions, res);
	return res;
}

VG_EXPORT CUresult cuLibraryLoadFromFile(CUlibrary *library, const char *fileName, CUjit_option *jitOptions,
					 void **jitOptionsValues, unsigned int numJitOptions,
					 CUlibraryOption *libraryOptions, void **libraryOptionValues,
					 unsigned int numLibraryOptions)
{
	CUresult res = lc_check();
	void *img = NULL;
	size_t n = 0;

	if (res != CUDA_SUCCESS)
		return res;
	(void)libraryOptions;
	(void)libraryOptionValues;
	(void)numLibraryOptions;
	if (!library || !fileName)
		return CUDA_ERROR_INVALID_VALUE;
	res = read_image_file(fileName, &img, &n);
	if (res == CUDA_SUCCESS)
		res = library_load(library, img, jitOptions, jitOptionsValues,
				   jitOptions && jitOptionsValues ? numJitOptions : 0);
	free(img);
	return res;
}
