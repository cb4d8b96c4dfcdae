/* SPDX-License-Identifier: MIT */
/*
 * Modules: an image is accepted when it names at least one of the test
 * kernels, which the driver then "contains".  PTX is searched for
 * `.entry NAME(`, an ELF cubin's symbol table for function symbols, and a
 * fatbin (or its wrapper) for the names as whole words in its bytes (the
 * cubins inside a fatbin carry them in their string tables; an entry
 * compressed by nvcc does not, and is not looked into).
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "td.h"

#define TD_ELF_MAGIC		0x464c457fu	/* "\x7fELF" */
#define TD_FATBIN_MAGIC		0xba55ed50u
#define TD_FATBIN_WRAPPER	0x466243b1u
#define TD_COUNTER		"vg_counter"

static int td_ident_char(int ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || ch == '_' || ch == '$';
}

/* name occurs in [p, p + n) as a whole identifier. */
static int td_has_word(const unsigned char *p, size_t n, const char *name)
{
	size_t len = strlen(name);
	const unsigned char *q = p, *end = p + n;

	while ((size_t)(end - q) >= len) {
		q = memmem(q, (size_t)(end - q), name, len);
		if (!q)
			return 0;
		if ((q == p || !td_ident_char(q[-1])) &&
		    (q + len == end || !td_ident_char(q[len])))
			return 1;
		q++;
	}
	return 0;
}

static void td_scan_words(const unsigned char *p, size_t n, unsigned *present, int *counter)
{
	int i;

	for (i = 0; i < TD_KERNEL_COUNT; i++)
		if (td_has_word(p, n, td_kernels[i].name))
			*present |= 1u << i;
	*counter = td_has_word(p, n, TD_COUNTER);
}

/* PTX: `.entry NAME (`, with any blanks between. */
static void td_scan_ptx(const char *text, size_t n, unsigned *present, int *counter)
{
	const char *q = text, *end = text + n;
	int i;

	while ((q = memmem(q, (size_t)(end - q), ".entry", 6)) != NULL) {
		const char *name;
		size_t len;

		q += 6;
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
			q++;
		name = q;
		while (q < end && td_ident_char((unsigned char)*q))
			q++;
		len = (size_t)(q - name);
		while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
			q++;
		if (q == end || *q != '(')
			continue;
		for (i = 0; i < TD_KERNEL_COUNT; i++)
			if (strlen(td_kernels[i].name) == len &&
			    !memcmp(td_kernels[i].name, name, len))
				*present |= 1u << i;
	}
	*counter = td_has_word((const unsigned char *)text, n, TD_COUNTER);
}

/* Bytes an ELF image spans, from its headers; 0 when they are not sane. */
static size_t td_elf_size(const unsigned char *p)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)p;
	size_t size, i;

	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    eh->e_shoff > TD_IMAGE_MAX || eh->e_shnum > 4096)
		return 0;
	size = eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr);
	for (i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(p + eh->e_shoff) + i;

		if (sh->sh_type == SHT_NOBITS)
			continue;
		if (sh->sh_offset > TD_IMAGE_MAX || sh->sh_size > TD_IMAGE_MAX)
			return 0;
		if (sh->sh_offset + sh->sh_size > size)
			size = sh->sh_offset + sh->sh_size;
	}
	return size;
}

/* Function symbols named like a test kernel; an object named vg_counter. */
static void td_scan_elf(const unsigned char *p, size_t n, unsigned *present, int *counter)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)p;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(p + eh->e_shoff);
	size_t i, j;
	int k;

	for (i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *st;
		const Elf64_Sym *sym;

		if (sh[i].sh_type != SHT_SYMTAB || sh[i].sh_link >= eh->e_shnum)
			continue;
		st = &sh[sh[i].sh_link];
		if (sh[i].sh_offset + sh[i].sh_size > n || st->sh_offset + st->sh_size > n)
			continue;
		sym = (const Elf64_Sym *)(p + sh[i].sh_offset);
		for (j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); j++) {
			const char *name = (const char *)p + st->sh_offset + sym[j].st_name;
			size_t room;

			if (sym[j].st_name >= st->sh_size)
				continue;
			room = st->sh_size - sym[j].st_name;
			if (!memchr(name, '\0', room))
				continue;
			if (ELF64_ST_TYPE(sym[j].st_info) == STT_OBJECT && !strcmp(name, TD_COUNTER))
				*counter = 1;
			if (ELF64_ST_TYPE(sym[j].st_info) != STT_FUNC)
				continue;
			for (k = 0; k < TD_KERNEL_COUNT; k++)
				if (!strcmp(name, td_kernels[k].name))
					*present |= 1u << k;
		}
	}
}

/* Fatbin header: u32 magic, u16 version, u16 header size, u64 payload size. */
static size_t td_fatbin_size(const unsigned char *p)
{
	uint16_t hsize;
	uint64_t fsize;

	memcpy(&hsize, p + 6, 2);
	memcpy(&fsize, p + 8, 8);
	if (hsize < 16 || fsize > TD_IMAGE_MAX)
		return 0;
	return hsize + (size_t)fsize;
}

/* What the image holds; CUDA_ERROR_INVALID_IMAGE when no test kernel. */
CUresult td_image_scan(const void *image, unsigned *present, int *counter)
{
	const unsigned char *p = image;
	uint32_t magic;
	size_t n;

	*present = 0;
	*counter = 0;
	if (!image)
		return CUDA_ERROR_INVALID_VALUE;
	memcpy(&magic, p, 4);
	if (magic == TD_FATBIN_WRAPPER) {
		const void *data;

		/* int magic, int version, const void *data, void *filename */
		memcpy(&data, p + 8, sizeof(data));
		if (!data)
			return CUDA_ERROR_INVALID_IMAGE;
		p = data;
		memcpy(&magic, p, 4);
		if (magic != TD_FATBIN_MAGIC)
			return CUDA_ERROR_INVALID_IMAGE;
	}
	if (magic == TD_FATBIN_MAGIC) {
		n = td_fatbin_size(p);
		if (n)
			td_scan_words(p, n, present, counter);
	} else if (magic == TD_ELF_MAGIC) {
		n = td_elf_size(p);
		if (n)
			td_scan_elf(p, n, present, counter);
	} else {
		n = strnlen((const char *)p, TD_IMAGE_MAX);
		td_scan_ptx((const char *)p, n, present, counter);
	}
	return *present ? CUDA_SUCCESS : CUDA_ERROR_INVALID_IMAGE;
}

void td_module_init(struct td_module *m, struct td_ctx *c, unsigned present,
		    struct td_alloc *counter)
{
	int i;

	m->magic = TD_MAGIC_MODULE;
	m->ctx = c;
	m->present = present;
	m->counter = counter;
	for (i = 0; i < TD_KERNEL_COUNT; i++) {
		struct td_func *f = &m->funcs[i];

		f->magic = TD_MAGIC_FUNC;
		f->mod = m;
		f->k = &td_kernels[i];
		f->max_dyn_smem = TD_SMEM_DEFAULT;
		f->carveout = -1;
	}
}

static CUresult td_module_create(CUmodule *module, const void *image)
{
	struct td_ctx *c;
	struct td_module *m;
	struct td_alloc *a = NULL;
	unsigned present;
	int counter;
	CUresult res = td_ctx_get(&c);

	if (res != CUDA_SUCCESS)
		return res;
	if (!module || !image)
		return CUDA_ERROR_INVALID_VALUE;
	res = td_image_scan(image, &present, &counter);
	if (res != CUDA_SUCCESS)
		return res;
	m = calloc(1, sizeof(*m));
	if (!m)
		return CUDA_ERROR_OUT_OF_MEMORY;
	if (counter) {
		/* A __device__ variable is device memory, zeroed at load. */
		res = td_alloc_device(c, 4, TD_ALLOC_GLOBAL, &a);
		if (res != CUDA_SUCCESS) {
			free(m);
			return res;
		}
	}
	td_module_init(m, c, present, a);
	td_lock();
	m->next = c->modules;
	c->modules = m;
	td.live_modules++;
	td_unlock();
	*module = (CUmodule)m;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
	return td_module_create(module, image);
}

/* JIT options are accepted and have no effect on a CPU. */
TD_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions,
				      CUjit_option *options, void **optionValues)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (numOptions && (!options || !optionValues))
		return CUDA_ERROR_INVALID_VALUE;
	return td_module_create(module, image);
}

TD_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin)
{
	return td_module_create(module, fatCubin);
}

/* A file's bytes, with one NUL past the end so that PTX text is a string. */
CUresult td_image_read(const char *path, char **out)
{
	CUresult res = CUDA_SUCCESS;
	struct stat st;
	char *buf;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return CUDA_ERROR_FILE_NOT_FOUND;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (uint64_t)st.st_size > TD_IMAGE_MAX) {
		close(fd);
		return CUDA_ERROR_INVALID_IMAGE;
	}
	buf = calloc(1, (size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return CUDA_ERROR_OUT_OF_MEMORY;
	}
	if (read(fd, buf, (size_t)st.st_size) != st.st_size)
		res = CUDA_ERROR_FILE_NOT_FOUND;
	close(fd);
	if (res != CUDA_SUCCESS) {
		free(buf);
		return res;
	}
	*out = buf;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuModuleLoad(CUmodule *module, const char *fname)
{
	CUresult res = td_check_init();
	char *buf;

	if (res != CUDA_SUCCESS)
		return res;
	if (!module || !fname)
		return CUDA_ERROR_INVALID_VALUE;
	res = td_image_read(fname, &buf);
	if (res != CUDA_SUCCESS)
		return res;
	res = td_module_create(module, buf);
	free(buf);
	return res;
}

/* A context's module, or a library's function module. */
int td_module_live_locked(const struct td_module *m)
{
	const struct td_ctx *c;
	const struct td_module *x;
	const struct td_library *l;

	for (c = td.ctxs; c; c = c->next)
		for (x = c->modules; x; x = x->next)
			if (x == m)
				return 1;
	for (l = td.libs; l; l = l->next)
		if (&l->fmod == m)
			return 1;
	return 0;
}

CUresult td_module_get(CUmodule h, struct td_module **out)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	if (!h || !td_module_live_locked((struct td_module *)h))
		res = CUDA_ERROR_INVALID_HANDLE;
	td_unlock();
	if (res == CUDA_SUCCESS)
		*out = (struct td_module *)h;
	return res;
}

/* Unlinks m from its context's list (td.lock held). */
static void td_module_bury_locked(struct td_module *m)
{
	struct td_module **pp;

	for (pp = &m->ctx->modules; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	}
	if (m->counter)
		td_alloc_free_locked(m->counter);
	m->counter = NULL;
	m->magic = 0;
	m->next = td.dead_modules;
	td.dead_modules = m;
	td.live_modules--;
}

TD_EXPORT CUresult cuModuleUnload(CUmodule hmod)
{
	struct td_module *m;
	CUresult res = td_module_get(hmod, &m);

	if (res != CUDA_SUCCESS)
		return res;
	/* A library's module goes with the library only. */
	if (!m->ctx)
		return CUDA_ERROR_INVALID_HANDLE;
	/* Kernels of the module may still be queued. */
	td_ctx_sync(m->ctx);
	td_lock();
	if (td_module_live_locked(m))
		td_module_bury_locked(m);
	else
		res = CUDA_ERROR_INVALID_HANDLE;
	td_unlock();
	return res;
}

/* Streams of c have stopped: nothing runs its kernels any more. */
void td_modules_teardown(struct td_ctx *c)
{
	td_lock();
	while (c->modules)
		td_module_bury_locked(c->modules);
	td_unlock();
}

TD_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
	struct td_module *m;
	CUresult res = td_module_get(hmod, &m);
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!hfunc || !name)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < TD_KERNEL_COUNT; i++) {
		if ((m->present & (1u << i)) && !strcmp(name, td_kernels[i].name)) {
			*hfunc = (CUfunction)&m->funcs[i];
			return CUDA_SUCCESS;
		}
	}
	return CUDA_ERROR_NOT_FOUND;
}

TD_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod,
					const char *name)
{
	struct td_module *m;
	CUresult res = td_module_get(hmod, &m);

	if (res != CUDA_SUCCESS)
		return res;
	if (!name)
		return CUDA_ERROR_INVALID_VALUE;
	if (!m->counter || strcmp(name, TD_COUNTER))
		return CUDA_ERROR_NOT_FOUND;
	if (dptr)
		*dptr = m->counter->base;
	if (bytes)
		*bytes = m->counter->size;
	return CUDA_SUCCESS;
}

static int td_func_in(struct td_module *m, CUfunction h, struct td_func **out)
{
	int i;

	for (i = 0; i < TD_KERNEL_COUNT; i++) {
		if ((m->present & (1u << i)) && (CUfunction)&m->funcs[i] == h) {
			*out = &m->funcs[i];
			return 1;
		}
	}
	return 0;
}

/* A live function: a present kernel of a live module or library. */
CUresult td_func_resolve_locked(CUfunction h, struct td_func **out)
{
	const struct td_ctx *c;
	struct td_library *l;
	struct td_module *m;

	if (!h)
		return CUDA_ERROR_INVALID_HANDLE;
	for (c = td.ctxs; c; c = c->next)
		for (m = c->modules; m; m = m->next)
			if (td_func_in(m, h, out))
				return CUDA_SUCCESS;
	for (l = td.libs; l; l = l->next)
		if (td_func_in(&l->kmod, h, out) || td_func_in(&l->fmod, h, out))
			return CUDA_SUCCESS;
	return CUDA_ERROR_INVALID_HANDLE;
}

static CUresult td_func_get(CUfunction h, struct td_func **out)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	td_lock();
	res = td_func_resolve_locked(h, out);
	td_unlock();
	return res;
}

TD_EXPORT CUresult cuFuncGetName(const char **name, CUfunction hfunc)
{
	struct td_func *f;
	CUresult res = td_func_get(hfunc, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (!name)
		return CUDA_ERROR_INVALID_VALUE;
	*name = f->k->name;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset,
				      size_t *paramSize)
{
	struct td_func *f;
	CUresult res = td_func_get(func, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (paramIndex >= (size_t)f->k->nparams)
		return CUDA_ERROR_INVALID_VALUE;
	if (paramOffset)
		*paramOffset = f->k->off[paramIndex];
	if (paramSize)
		*paramSize = f->k->size[paramIndex];
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuFuncGetAttribute(int *pi, CUfunction_attribute attrib, CUfunction hfunc)
{
	struct td_func *f;
	CUresult res = td_func_get(hfunc, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (!pi)
		return CUDA_ERROR_INVALID_VALUE;
	switch (attrib) {
	case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
		*pi = 1024;
		break;
	case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES:
	case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES:
	case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES:
	case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA:
		*pi = 0;
		break;
	case CU_FUNC_ATTRIBUTE_NUM_REGS:
		*pi = f->k->num_regs;
		break;
	case CU_FUNC_ATTRIBUTE_PTX_VERSION:
	case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
		*pi = 90;
		break;
	case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
		*pi = f->max_dyn_smem;
		break;
	case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
		*pi = f->carveout;
		break;
	case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET:
		*pi = 0;
		break;
	case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
	case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
	case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
		*pi = f->cluster[attrib - CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH];
		break;
	case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
		*pi = f->non_portable;
		break;
	case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
		*pi = f->sched_policy;
		break;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
{
	struct td_func *f;
	CUresult res = td_func_get(hfunc, &f);

	if (res != CUDA_SUCCESS)
		return res;
	switch (attrib) {
	case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
		if (value < 0 || value > TD_SMEM_OPTIN_MAX)
			return CUDA_ERROR_INVALID_VALUE;
		f->max_dyn_smem = value;
		break;
	case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
		if (value < -1 || value > 100)
			return CUDA_ERROR_INVALID_VALUE;
		f->carveout = value;
		break;
	case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
	case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
	case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
		if (value < 0 || value > 8)
			return CUDA_ERROR_INVALID_VALUE;
		f->cluster[attrib - CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH] = value;
		break;
	case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
		if (value < 0 || value > 1)
			return CUDA_ERROR_INVALID_VALUE;
		f->non_portable = value;
		break;
	case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
		if (value < 0 || value > 2)
			return CUDA_ERROR_INVALID_VALUE;
		f->sched_policy = value;
		break;
	default:
		return CUDA_ERROR_INVALID_VALUE;
	}
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config)
{
	struct td_func *f;
	CUresult res = td_func_get(hfunc, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if ((unsigned)config > CU_FUNC_CACHE_PREFER_EQUAL)
		return CUDA_ERROR_INVALID_VALUE;
	f->cache = (int)config;
	return CUDA_SUCCESS;
}

/* Every image is scanned whole at load: loading is eager. */
TD_EXPORT CUresult cuModuleGetLoadingMode(CUmoduleLoadingMode *mode)
{
	CUresult res = td_check_init();

	if (res != CUDA_SUCCESS)
		return res;
	if (!mode)
		return CUDA_ERROR_INVALID_VALUE;
	*mode = CU_MODULE_EAGER_LOADING;
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuModuleGetFunctionCount(unsigned int *count, CUmodule mod)
{
	struct td_module *m;
	CUresult res = td_module_get(mod, &m);

	if (res != CUDA_SUCCESS)
		return res;
	if (!count)
		return CUDA_ERROR_INVALID_VALUE;
	*count = (unsigned)__builtin_popcount(m->present);
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuModuleEnumerateFunctions(CUfunction *functions, unsigned int numFunctions,
					      CUmodule mod)
{
	struct td_module *m;
	CUresult res = td_module_get(mod, &m);
	unsigned n = 0;
	int i;

	if (res != CUDA_SUCCESS)
		return res;
	if (!functions)
		return CUDA_ERROR_INVALID_VALUE;
	for (i = 0; i < TD_KERNEL_COUNT && n < numFunctions; i++)
		if (m->present & (1u << i))
			functions[n++] = (CUfunction)&m->funcs[i];
	return CUDA_SUCCESS;
}

TD_EXPORT CUresult cuFuncGetModule(CUmodule *hmod, CUfunction hfunc)
{
	struct td_func *f;
	CUresult res = td_func_get(hfunc, &f);

	if (res != CUDA_SUCCESS)
		return res;
	if (!hmod)
		return CUDA_ERROR_INVALID_VALUE;
	*hmod = (CUmodule)f->mod;
	return CUDA_SUCCESS;
}
