#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One-off importer: draft include/vgpu/cuda_types.h and include/cuda.spec.

It reads the toolkit's driver headers through clang's JSON AST (facts only:
names, values, layouts, signatures) and writes them in our own format.  It
never copies the toolkit's text or comments.  The build never runs it; its
output is committed and from then on edited by hand.  Re-running it on the
same toolkit gives byte-identical files, so a regeneration can be diffed.

usage: tools/import_cuda_h.py [--toolkit DIR] [--exports FILE] [--outdir DIR]
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

CLANG = 'clang-14'

# Types of foreign interop APIs (OpenGL, EGL, VDPAU).  The interop headers
# need them; we give clang minimal stand-ins with the same ABI and write every
# parameter of such a type as its underlying C type, so that our headers never
# need GL, EGL or VDPAU.
STUB_FILES = {
	'GL/gl.h': 'typedef unsigned int GLuint;\ntypedef unsigned int GLenum;\n',
	'EGL/egl.h': ('typedef int EGLint;\ntypedef void *EGLImageKHR;\n'
		      'typedef void *EGLStreamKHR;\ntypedef void *EGLSyncKHR;\n'),
	'EGL/eglext.h': '',
}
STUB_WRAPPER = '''\
#include <cuda.h>
#include <cudaProfiler.h>
#include <cudaGL.h>
#include <cudaEGL.h>
typedef unsigned int VdpDevice;
typedef unsigned int VdpVideoSurface;
typedef unsigned int VdpOutputSurface;
typedef unsigned int VdpFuncId;
typedef int VdpStatus;
typedef int VdpChromaType;
typedef int VdpRGBAFormat;
typedef VdpStatus VdpGetProcAddress(VdpDevice, VdpFuncId, void **);
#include <cudaVDPAU.h>
'''
STUB_TYPES = {'GLuint', 'GLenum', 'EGLint', 'EGLImageKHR', 'EGLStreamKHR',
	      'EGLSyncKHR', 'VdpDevice', 'VdpVideoSurface', 'VdpOutputSurface',
	      'VdpFuncId', 'VdpStatus', 'VdpChromaType', 'VdpRGBAFormat',
	      'VdpGetProcAddress'}

HEADER_NAMES = ('cuda.h', 'cudaProfiler.h', 'cudaGL.h', 'cudaEGL.h', 'cudaVDPAU.h')

BUILTIN_INTS = {'char', 'signed char', 'unsigned char', 'short', 'unsigned short',
		'int', 'unsigned int', 'long', 'unsigned long', 'long long',
		'unsigned long long', 'size_t'}
BUILTIN_FLOATS = {'float', 'double'}

# Exports that no toolkit header declares.  Signatures by the base function
# where there is one; otherwise unknown, and then (void) is the safe choice:
# on x86-64 a callee that ignores its arguments is correct for any caller.
UNDECLARED = {
	'cuEGLApiInit': ('void', '# signature unverified: internal, no public declaration'),
	'cuMemGetAttribute': ('void', '# signature unverified: no public declaration'),
	'cuMemGetAttribute_v2': ('void', '# signature unverified: no public declaration'),
}

LOCAL = {
	'cuDriverGetVersion', 'cuGetErrorString', 'cuGetErrorName', 'cuGetProcAddress',
	'cuGetProcAddress_v2', 'cuGetExportTable', 'cuDeviceGet', 'cuDeviceGetCount',
	'cuDeviceGetName', 'cuDeviceGetUuid', 'cuDeviceGetUuid_v2', 'cuDeviceGetLuid',
	'cuDeviceGetPCIBusId', 'cuDeviceGetByPCIBusId', 'cuDeviceTotalMem',
	'cuDeviceTotalMem_v2', 'cuDeviceGetAttribute', 'cuDeviceComputeCapability',
	'cuDeviceGetProperties',
}

MANUAL_EXACT = {
	'cuInit', 'cuModuleLoad', 'cuModuleLoadData', 'cuModuleLoadDataEx',
	'cuModuleLoadFatBinary', 'cuLibraryLoadData', 'cuLibraryLoadFromFile',
	'cuLaunchKernel', 'cuLaunchKernel_ptsz', 'cuLaunchKernelEx', 'cuLaunchKernelEx_ptsz',
	'cuLaunchCooperativeKernel', 'cuLaunchCooperativeKernel_ptsz',
	'cuMemHostAlloc', 'cuMemFreeHost', 'cuMemHostGetFlags', 'cuMemHostUnregister',
	'cuOccupancyMaxPotentialBlockSize', 'cuOccupancyMaxPotentialBlockSizeWithFlags',
	'cuPointerGetAttribute', 'cuPointerGetAttributes',
	'cuLaunchHostFunc', 'cuLaunchHostFunc_ptsz',
	'cuStreamAddCallback', 'cuStreamAddCallback_ptsz',
	'cuCtxGetCurrent', 'cuCtxSetCurrent', 'cuCtxPushCurrent_v2', 'cuCtxPopCurrent_v2',
	# The pre-_v2 forms have the same signature and touch the same
	# per-thread context stack, so they share the hand-written code.
	'cuCtxPushCurrent', 'cuCtxPopCurrent',
}
MANUAL_PREFIX = ('cuMemcpy2D', 'cuMemcpy3D', 'cuMemAllocHost',
		 'cuMemHostGetDevicePointer', 'cuMemHostRegister')

# cuGraphics* covers the generic half of graphics interop too: without the
# registration functions no CUgraphicsResource can exist.
UNSUPPORTED_PREFIX = ('cuGraphics', 'cuGL', 'cuEGL', 'cuVDPAU', 'cuGraphicsEGL',
		      'cuGraphicsVDPAU', 'cuGraphicsD3D', 'cuWGL', 'cuMemGetAttribute')
UNSUPPORTED_EXACT = {'cuEventCreateFromEGLSync'}

# Records whose integer fields carry a device ordinal (CUmemLocation.id when
# its type is a device).  They count as pointer-bearing: the guest must map
# the ordinal, so no generic code may pass them through.
ORDINAL_RECORDS = {'CUmemLocation_st'}

BYTE_COUNT_NAMES = ('ByteCount', 'byteCount', 'bytesize', 'size', 'sizeInBytes', 'bytes',
		    'count')

# Hand review of the draft: parameters whose direction or count the
# heuristics cannot see.  (function, parameter) -> annotated text.
PARAM_OVERRIDES = {
	('cuDeviceGetLuid', 'luid'): 'out char *luid[8]',
	('cuDeviceGetPCIBusId', 'pciBusId'): 'out char *pciBusId[len]',
	('cuDeviceGetByPCIBusId', 'pciBusId'): 'str const char *pciBusId',
	('cuGetErrorString', 'pStr'): 'opaque const char **pStr',
	('cuGetErrorName', 'pStr'): 'opaque const char **pStr',
	('cuGetExportTable', 'ppExportTable'): 'opaque const void **ppExportTable',
	('cuGetProcAddress', 'pfn'): 'opaque void **pfn',
	('cuGetProcAddress_v2', 'pfn'): 'opaque void **pfn',
	('cuGetProcAddress_v2', 'symbolStatus'): 'out CUdriverProcAddressQueryResult *symbolStatus',
	('cuModuleGetGlobal_v2', 'dptr'): 'out CUdeviceptr *dptr',
	('cuModuleGetGlobal_v2', 'bytes'): 'out size_t *bytes',
	('cuModuleGetGlobal', 'dptr'): 'out CUdeviceptr_v1 *dptr',
	('cuModuleGetGlobal', 'bytes'): 'out unsigned int *bytes',
	('cuLibraryGetGlobal', 'bytes'): 'out size_t *bytes',
	('cuLibraryGetManaged', 'bytes'): 'out size_t *bytes',
	('cuMemGetAddressRange_v2', 'psize'): 'out size_t *psize',
	('cuMemGetAddressRange', 'psize'): 'out unsigned int *psize',
	('cuMemAllocPitch_v2', 'pPitch'): 'out size_t *pPitch',
	('cuMemAllocPitch', 'pPitch'): 'out unsigned int *pPitch',
	('cuMemGetInfo_v2', 'free'): 'out size_t *free',
	('cuMemGetInfo_v2', 'total'): 'out size_t *total',
	('cuMemGetInfo', 'free'): 'out unsigned int *free',
	('cuMemGetInfo', 'total'): 'out unsigned int *total',
	('cuDeviceGetName', 'name'): 'out char *name[len]',
	('cuGraphInstantiate', 'logBuffer'): 'out char *logBuffer[bufferSize]',
	('cuGraphInstantiate_v2', 'logBuffer'): 'out char *logBuffer[bufferSize]',
	('cuMemcpy3DBatchAsync', 'opList'): 'in CUDA_MEMCPY3D_BATCH_OP *opList[numOps]',
	('cuMemcpy3DBatchAsync_ptsz', 'opList'): 'in CUDA_MEMCPY3D_BATCH_OP *opList[numOps]',
	('cuMemcpy3DBatchAsync_v2', 'opList'): 'in CUDA_MEMCPY3D_BATCH_OP *opList[numOps]',
	('cuMemcpy3DBatchAsync_v2_ptsz', 'opList'): 'in CUDA_MEMCPY3D_BATCH_OP *opList[numOps]',
	('cuPointerGetAttributes', 'attributes'): 'in CUpointer_attribute *attributes[numAttributes]',
	('cuMemHostRegister', 'p'): 'opaque void *p',
	('cuMemHostRegister_v2', 'p'): 'opaque void *p',
	('cuMemRangeGetAttribute', 'data'): 'out void *data[dataSize]',
	('cuMemGetHandleForAddressRange', 'handle'):
		('opaque void *handle', 'output size depends on handleType'),
	('cuCheckpointProcessCheckpoint', 'args'): 'in CUcheckpointCheckpointArgs *args',
	('cuCheckpointProcessLock', 'args'): 'in CUcheckpointLockArgs *args',
	('cuCheckpointProcessUnlock', 'args'): 'in CUcheckpointUnlockArgs *args',
	('cuDevResourceGenerateDesc', 'resources'): 'in CUdevResource *resources[nbResources]',
	('cuMemPoolImportPointer', 'shareData'): 'in CUmemPoolPtrExportData *shareData',
	('cuTexRefSetBorderColor', 'pBorderColor'): 'in float *pBorderColor[4]',
	('cuTexRefGetBorderColor', 'pBorderColor'): 'out float *pBorderColor[4]',
	('cuThreadExchangeStreamCaptureMode', 'mode'): 'inout CUstreamCaptureMode *mode',
	('cuLogsDumpToFile', 'iterator'): 'inout CUlogIterator *iterator',
	('cuGraphMemsetNodeGetParams', 'nodeParams'): 'out CUDA_MEMSET_NODE_PARAMS *nodeParams',
}
# Edge lists: from[i] -> to[i], with optional per-edge data.
for _f in ('cuGraphAddDependencies', 'cuGraphAddDependencies_v2',
	   'cuGraphRemoveDependencies', 'cuGraphRemoveDependencies_v2'):
	PARAM_OVERRIDES[(_f, 'from')] = 'in const CUgraphNode *from[numDependencies]'
	PARAM_OVERRIDES[(_f, 'to')] = 'in const CUgraphNode *to[numDependencies]'
	PARAM_OVERRIDES[(_f, 'edgeData')] = 'in const CUgraphEdgeData *edgeData[numDependencies]'
for _f in ('cuStreamBeginCaptureToGraph', 'cuStreamBeginCaptureToGraph_ptsz',
	   'cuStreamUpdateCaptureDependencies_v2', 'cuStreamUpdateCaptureDependencies_v2_ptsz'):
	PARAM_OVERRIDES[(_f, 'dependencyData')] = \
		'in const CUgraphEdgeData *dependencyData[numDependencies]'


ASYNC_PREFIX = ('cuLaunch', 'cuEventRecord', 'cuStreamWaitEvent', 'cuGraphLaunch')


def die(msg):
	print('import_cuda_h: ' + msg, file=sys.stderr)
	sys.exit(1)


# ---------------------------------------------------------------- AST input

def run_clang(toolkit, args, src):
	with tempfile.TemporaryDirectory() as tmp:
		for rel, text in STUB_FILES.items():
			path = os.path.join(tmp, rel)
			os.makedirs(os.path.dirname(path), exist_ok=True)
			with open(path, 'w') as f:
				f.write(text)
		wrapper = os.path.join(tmp, 'w.c')
		with open(wrapper, 'w') as f:
			f.write(src)
		cmd = [CLANG, '-x', 'c', '-std=gnu11', '-D__CUDA_API_VERSION_INTERNAL',
		       '-I' + tmp, '-I' + os.path.join(toolkit, 'include')] + args + [wrapper]
		res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
				     check=False, universal_newlines=True)
		if res.returncode != 0:
			die('clang failed: ' + res.stderr[:2000])
		return res.stdout


def load_ast(toolkit):
	out = run_clang(toolkit, ['-Xclang', '-ast-dump=json', '-fsyntax-only'], STUB_WRAPPER)
	return json.loads(out)


def tag_files(nodes):
	"""clang prints a location's file only when it changes: replay the
	document order to learn which header each top-level declaration is in."""
	state = {'file': None}

	def walk(obj):
		if isinstance(obj, dict):
			for k, v in obj.items():
				if k == 'file':
					state['file'] = v
				elif k in ('loc', 'range', 'spellingLoc', 'expansionLoc',
					   'begin', 'end', 'inner'):
					walk(v)
		elif isinstance(obj, list):
			for x in obj:
				walk(x)

	for n in nodes:
		loc = n.get('loc', {})
		walk(loc.get('spellingLoc', {}))
		walk(loc.get('expansionLoc', loc) if 'expansionLoc' in loc else loc)
		n['_file'] = os.path.basename(state['file'] or '')
		walk(n.get('range', {}))
		walk(n.get('inner', []))


def load_macros(toolkit):
	"""Object-like macros the driver headers define, minus the C library's."""
	inc = '#include <cuda.h>\n#include <cudaProfiler.h>\n#include <cudaEGL.h>\n'
	base = '#include <stdlib.h>\n#include <stdint.h>\n'
	full = run_clang(toolkit, ['-E', '-dM'], inc)
	libc = set(run_clang(toolkit, ['-E', '-dM'], base).splitlines())
	macros = []
	for line in full.splitlines():
		if line in libc:
			continue
		m = re.match(r'#define (\w+) (.*)$', line)
		if not m:
			continue
		name, val = m.group(1), ' '.join(m.group(2).split())
		if not re.match(r'^CU', name) or not val:
			continue
		if re.match(r'^_*cu[A-Za-z]', val) or '__CUDA_API' in val:
			continue	# a renaming macro: our exports carry the real names
		if name in ('CUDAAPI', 'CUDA_CB', 'CUDAGL_H', 'CUDAEGL_H', 'CUDAVDPAU_H'):
			continue
		macros.append((name, val))
	return dict(macros)


# ---------------------------------------------------------------- types

def owned_tag(td):
	"""The id of the anonymous struct/union/enum a typedef defines, if any."""
	for c in td.get('inner', []):
		if c.get('kind') == 'ElaboratedType' and 'ownedTagDecl' in c:
			if not c['ownedTagDecl'].get('name'):
				return c['ownedTagDecl']['id']
	return None


class Types:
	"""Everything known about the driver's type names."""

	def __init__(self, nodes):
		self.records = {}	# tag -> RecordDecl with a definition
		self.by_id = {}
		self.typedefs = {}	# name -> TypedefDecl
		self.enums = {}
		self.owned = {}		# id of an anonymous tag -> its typedef name
		for n in nodes:
			self._index(n)
		# A typedef of an anonymous tag stands for the tag itself.
		self.anon = {}
		for tid, name in self.owned.items():
			tag = self.by_id[tid]
			if tag['kind'] == 'EnumDecl':
				self.anon[name] = 'enum ' + name
			else:
				self.anon[name] = tag['tagUsed'] + ' ' + name
				self.records[name] = tag

	def _index(self, n):
		self.by_id[n['id']] = n
		if n['kind'] == 'RecordDecl' and n.get('completeDefinition') and n.get('name'):
			self.records[n['name']] = n
		elif n['kind'] == 'TypedefDecl':
			self.typedefs.setdefault(n['name'], n)
			owned = owned_tag(n)
			if owned is not None:
				self.owned[owned] = n['name']
		elif n['kind'] == 'EnumDecl' and n.get('name'):
			self.enums[n['name']] = n
		for c in n.get('inner', []):
			if c.get('kind') in ('RecordDecl', 'EnumDecl'):
				self._index(c)

	def resolve(self, t):
		"""Strip typedefs from the outermost type name, keep qualifiers."""
		t = t.replace('const ', '').strip()
		seen = 0
		while t in self.typedefs and seen < 20:
			if t in self.anon:
				return self.anon[t]
			td = self.typedefs[t]['type']
			t = td.get('desugaredQualType', td['qualType']).replace('const ', '').strip()
			seen += 1
		return t

	def kind(self, t):
		"""scalar | float | double | handle | struct | callback | pointer | void"""
		r = self.resolve(t)
		if r in BUILTIN_FLOATS:
			return r
		if r in BUILTIN_INTS or r.startswith('enum '):
			return 'scalar'
		if r == 'void':
			return 'void'
		if '(*)' in r:
			return 'callback'
		m = re.match(r'^(struct|union) (\w+) \*$', r)
		if m and m.group(2) not in self.records:
			return 'handle'
		if re.match(r'^(struct|union) \w+$', r):
			return 'struct'
		return 'pointer'

	def record_has_pointers(self, rec, depth=0):
		if rec.get('name') in ORDINAL_RECORDS:
			return True
		for c in rec.get('inner', []):
			if c['kind'] == 'RecordDecl':
				if self.record_has_pointers(c, depth + 1):
					return True
			elif c['kind'] == 'FieldDecl':
				if self.type_has_pointers(c['type']['qualType'], depth):
					return True
		return False

	def type_has_pointers(self, t, depth=0):
		if depth > 30:
			die('type nesting too deep at ' + t)
		base = re.sub(r'\[\d+\]', '', t).strip()
		names = base.replace('const ', '').strip()
		if names in ('CUdevice', 'CUdevice_v1'):
			return True	# a device ordinal: the guest maps it
		if '*' in base or '(' in base and 'unnamed' not in base and 'anonymous' not in base:
			return True
		if names in self.typedefs:
			return self.type_has_pointers(self.typedefs[names]['type']['qualType'], depth + 1)
		m = re.match(r'^(struct|union) (\w+)$', names)
		if m:
			rec = self.records.get(m.group(2))
			return rec is not None and self.record_has_pointers(rec, depth + 1)
		return False


# ---------------------------------------------------------------- header

def declarator(t, name):
	t = t.strip()
	if '(*' in t:
		i = t.index('(*') + 2
		return t[:i] + name + t[i:]
	if t.endswith(']'):
		i = t.index('[')
		base = t[:i].rstrip()
		sep = '' if base.endswith('*') else ' '
		return base + sep + name + t[i:]
	return t + ('' if t.endswith('*') else ' ') + name


def fmt_value(v):
	v = int(v)
	if 0 <= v < 4096:
		return str(v)
	if v < 0:
		return str(v)
	return '0x%x' % v


def const_value(node):
	for c in node.get('inner', []):
		if 'value' in c:
			return c['value']
		v = const_value(c)
		if v is not None:
			return v
	return None


class Writer:
	def __init__(self, types):
		self.t = types
		self.out = []

	def enum_body(self, e, ind):
		lines = []
		prev = -1
		for c in e.get('inner', []):
			if c['kind'] != 'EnumConstantDecl':
				continue
			v = const_value(c)
			v = int(v) if v is not None else prev + 1
			prev = v
			lines.append('%s%s = %s,' % ('\t' * (ind + 1), c['name'], fmt_value(v)))
		return lines

	def record_body(self, rec, ind):
		lines = []
		kids = [c for c in rec.get('inner', []) if c['kind'] in ('RecordDecl', 'FieldDecl', 'EnumDecl')]
		i = 0
		while i < len(kids):
			c = kids[i]
			tab = '\t' * (ind + 1)
			if c['kind'] in ('RecordDecl', 'EnumDecl') and not c.get('name'):
				nxt = kids[i + 1] if i + 1 < len(kids) else None
				body = (self.record_body(c, ind + 1) if c['kind'] == 'RecordDecl'
					else self.enum_body(c, ind + 1))
				kw = c.get('tagUsed', 'enum')
				if nxt is not None and nxt['kind'] == 'FieldDecl' and (
						'unnamed' in nxt['type']['qualType'] or 'anonymous' in nxt['type']['qualType']):
					suffix = nxt['type']['qualType']
					arr = re.search(r'\)((\[\d+\])+)$', suffix)
					fname = nxt.get('name')
					if fname:
						fname += arr.group(1) if arr else ''
						lines += [tab + kw + ' {'] + body + [tab + '} ' + fname + ';']
					else:
						lines += [tab + kw + ' {'] + body + [tab + '};']
					i += 2
					continue
				lines += [tab + kw + ' {'] + body + [tab + '};']
				i += 1
				continue
			if c['kind'] in ('RecordDecl', 'EnumDecl'):
				# A named tag defined inside a record, usually together
				# with the member that follows: keep them one declaration.
				d = self.tag_definition(c, ind + 1)
				nxt = kids[i + 1] if i + 1 < len(kids) else None
				kw = c.get('tagUsed', 'enum')
				if nxt is not None and nxt['kind'] == 'FieldDecl' and re.match(
						r'^%s %s(\[\d+\])*$' % (kw, c['name']), nxt['type']['qualType']):
					dims = nxt['type']['qualType'][len(kw) + 1 + len(c['name']):]
					d[-1] = d[-1][:-1] + ' ' + nxt['name'] + dims + ';'
					i += 1
				lines += d
				i += 1
				continue
			t = c['type']['qualType']
			d = declarator(t, c['name'])
			if c.get('isBitfield'):
				d += ' : %s' % const_value(c)
			for a in c.get('inner', []):
				if a['kind'] == 'AlignedAttr':
					d += ' __attribute__((aligned(%s)))' % const_value(a)
			lines.append(tab + d + ';')
			i += 1
		return lines

	def tag_definition(self, n, ind=0):
		tab = '\t' * ind
		if n['kind'] == 'EnumDecl':
			body = self.enum_body(n, ind)
			return [tab + 'enum %s {' % n['name']] + body + [tab + '};']
		body = self.record_body(n, ind)
		return [tab + '%s %s {' % (n['tagUsed'], n['name'])] + body + [tab + '};']

	def typedef(self, n):
		t = n['type']['qualType']
		owned = None
		for c in n.get('inner', []):
			if c.get('kind') == 'ElaboratedType' and 'ownedTagDecl' in c:
				owned = self.t.by_id.get(c['ownedTagDecl']['id'])
		if owned is not None and not owned.get('name'):
			if owned['kind'] == 'EnumDecl':
				body = self.enum_body(owned, 0)
				kw = 'enum'
			else:
				body = self.record_body(owned, 0)
				kw = owned['tagUsed']
			return ['typedef %s {' % kw] + body + ['} %s;' % n['name']]
		return ['typedef %s;' % declarator(t, n['name'])]


BANNER = '''\
/* SPDX-License-Identifier: MIT */
/*
 * vgpu: clean-room declarations of the CUDA driver ABI.
 *
 * Names and values are facts of the ABI: every type, enumerator, structure
 * layout and constant below has the name and value the driver's callers
 * expect, so that code built against NVIDIA's headers and code built against
 * this file agree bit for bit (tests/abi checks it against the toolkit where
 * one is installed).  Functions are not declared here: the generated g_api.h
 * declares them, under their export names, from include/cuda.spec.
 *
 * First drafted by tools/import_cuda_h.py from the toolkit's headers (facts
 * only), then maintained by hand.
 */
#ifndef VGPU_CUDA_TYPES_H
#define VGPU_CUDA_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The driver API version whose types, tables and exports we implement. */
#define CUDA_VERSION %d

'''

TRAILER = '''
#ifdef __cplusplus
}
#endif

#endif /* VGPU_CUDA_TYPES_H */
'''

SECTION = {
	'cuda.h': 'Core driver API',
	'cudaProfiler.h': 'Profiler control',
	'cudaGL.h': 'OpenGL interoperability (exported, not supported)',
	'cudaEGL.h': 'EGL interoperability (exported, not supported)',
	'cudaVDPAU.h': 'VDPAU interoperability (exported, not supported)',
}


def write_types(nodes, types, macros, path):
	w = Writer(types)
	version = int(macros.get('CUDA_VERSION', '0'))
	if version != 13000:
		die('toolkit CUDA_VERSION is %d, expected 13000' % version)
	out = [BANNER % version]
	section = None
	emitted_owned = set()
	for n in nodes:
		if n.get('isImplicit') or n['_file'] not in HEADER_NAMES:
			continue
		if n.get('name') in STUB_TYPES:
			continue
		if n['_file'] != section:
			section = n['_file']
			out.append('/* ---- %s ---- */\n' % SECTION[section])
		k = n['kind']
		if k == 'TypedefDecl':
			out += w.typedef(n)
			out.append('')
		elif k in ('RecordDecl', 'EnumDecl'):
			if not n.get('name'):
				if k == 'EnumDecl' and n['id'] not in types.owned:
					out += ['enum {'] + w.enum_body(n, 0) + ['};', '']
				continue	# emitted with its typedef
			if k == 'RecordDecl' and not n.get('completeDefinition'):
				continue	# a tag only ever used behind a pointer
			if n['id'] in emitted_owned:
				continue
			emitted_owned.add(n['id'])
			out += w.tag_definition(n)
			out.append('')
	out.append('/* ---- Constants ---- */\n')
	for name in sorted(macros):
		if name == 'CUDA_VERSION':
			continue
		out.append('#define %s %s' % (name, macros[name]))
	text = '\n'.join(out).rstrip('\n') + '\n' + TRAILER
	text = re.sub(r'\n{3,}', '\n\n', text)
	with open(path, 'w') as f:
		f.write(text)


# ---------------------------------------------------------------- spec

class Fn:
	def __init__(self, name, params, note=None):
		self.name = name
		self.params = params	# [(type text, name)]
		self.note = note
		self.cls = None
		self.why = None
		self.ann = []


def fn_params(node):
	ps = []
	for c in node.get('inner', []):
		if c['kind'] != 'ParmVarDecl':
			continue
		t = c['type']
		q = t['qualType']
		if any(re.search(r'\b%s\b' % s, q) for s in STUB_TYPES):
			q = t.get('desugaredQualType', q)
			if '(*)' in q or 'Vdp' in q:
				q = 'void *'
		ps.append((q, c.get('name') or 'arg%d' % len(ps)))
	return ps


def count_param(fn, idx, bytes_only):
	"""The integer parameter that counts the elements behind parameter idx."""
	ints = [(i, n) for i, (t, n) in enumerate(fn.params)
		if i != idx and '*' not in t and fn_types.kind(t) == 'scalar']
	names = [n for _, n in ints]
	pname = fn.params[idx][1]
	if bytes_only:
		for cand in BYTE_COUNT_NAMES:
			if cand in names:
				return cand
		return None
	# An explicit pairing first: fooArray/numFoo, dependencies/numDependencies.
	stem = re.sub(r'(Array|List|s)$', '', pname)
	for n in names:
		if n.lower() in ('num' + stem.lower(), 'num' + pname.lower(), 'num' + stem.lower() + 's'):
			return n
	plural = re.search(r'(Array|List|s)$', pname) is not None
	for n in names:
		if plural and n in ('count', 'len', 'length', 'bufferSize'):
			return n
	return None


def annotate_param(fn, idx, types):
	"""Return (annotated text, problem or None)."""
	t, name = fn.params[idx]
	ov = PARAM_OVERRIDES.get((fn.name, name))
	if isinstance(ov, tuple):
		return ov
	if ov:
		return ov, None
	if '*' not in t:
		k = types.kind(t)
		if k in ('scalar', 'float', 'double', 'handle', 'callback'):
			return '%s %s' % (t, name), (None if k != 'callback' else 'callback')
		if k == 'struct':
			return '%s %s' % (t, name), 'struct by value'
		return '%s %s' % (t, name), 'unknown type ' + t
	def decl(d, extra=''):
		return '%s %s%s%s%s' % (d, t, '' if t.endswith('*') else ' ', name, extra)
	body = t
	is_const = body.startswith('const ')
	pointee = body[:body.rindex('*')].strip()
	stars = body.count('*')
	if stars > 1:
		return decl('opaque'), 'pointer to pointer'
	bare = pointee.replace('const ', '').strip()
	pk = types.kind(bare)
	getter = 'Get' in fn.name or 'Enumerate' in fn.name or 'Query' in fn.name
	if bare == 'char':
		if is_const:
			return decl('str'), None
		c = count_param(fn, idx, False)
		if c:
			return decl('out', '[%s]' % c), None
		return decl('opaque'), 'char buffer without length'
	if pk == 'void':
		c = count_param(fn, idx, True)
		if c:
			return decl('in' if is_const else 'out', '[%s]' % c), None
		return decl('opaque'), 'void pointer without size'
	if pk in ('scalar', 'float', 'double', 'handle', 'struct'):
		if pk == 'struct':
			rec_t = types.resolve(bare)
			tag = rec_t.split()[1]
			rec = types.records.get(tag)
			if rec is None or types.record_has_pointers(rec):
				return decl('in' if is_const else 'out'), 'pointer-bearing struct ' + bare
		c = count_param(fn, idx, False)
		if is_const:
			return decl('in', '[%s]' % c if c else ''), None
		if c:
			return decl('out' if getter else 'in', '[%s]' % c), None
		if getter and name.startswith(('num', 'nb')) and pk == 'scalar' and any(
				'*' in pt and types.kind(pt.replace('*', '').strip()) in ('handle', 'struct')
				for pt, _ in fn.params):
			return decl('inout'), 'array counted through a pointer'
		return decl('out'), None
	if pk == 'callback':
		return decl('opaque'), 'callback pointer'
	return decl('opaque'), 'unknown pointee ' + bare


fn_types = None


def is_manual(name):
	return name in MANUAL_EXACT or name.startswith(MANUAL_PREFIX)


def classify(fn, types):
	problems = []
	fn.ann = []
	for i in range(len(fn.params)):
		a, p = annotate_param(fn, i, types)
		fn.ann.append(a)
		if p:
			problems.append('%s: %s' % (fn.params[i][1], p))
	n = fn.name
	if n in UNDECLARED:
		fn.cls = 'unsupported'
		return
	if is_manual(n):
		fn.cls = 'manual'
		return
	if n in LOCAL:
		fn.cls = 'local'
		return
	if n.startswith(UNSUPPORTED_PREFIX) or n in UNSUPPORTED_EXACT:
		fn.cls = 'unsupported'
		return
	if problems:
		fn.cls = 'unsupported'
		fn.why = '; '.join(problems)
		return
	has_out = any(a.startswith(('out ', 'inout ')) for a in fn.ann)
	has_host = any(a.startswith(('in ', 'out ', 'inout ', 'str ')) and 'void' in a for a in fn.ann)
	# Memsets and copies only when they name a stream: the stream-less forms
	# are ordered against the host for pageable memory, so they stay sync.
	asy = n.startswith(ASYNC_PREFIX) or (
		n.startswith(('cuMemcpy', 'cuMemsetD')) and 'Async' in n and not has_host)
	fn.cls = 'async' if asy and not has_out and not has_host else 'sync'


def spec_decls(fns, types):
	"""scalar/handle/struct/callback lines for every type the functions use."""
	scal, hand, strs, cbs = {}, set(), {}, set()
	for fn in fns:
		for t, _ in fn.params:
			bare = re.sub(r'\*', '', t).replace('const ', '').strip()
			if bare == 'void':
				continue
			k = types.kind(bare)
			if k in ('scalar', 'float', 'double'):
				scal[bare] = k
			elif k == 'handle':
				hand.add(bare)
			elif k == 'callback':
				cbs.add(bare)
			elif k == 'struct':
				tag = types.resolve(bare).split()[1]
				rec = types.records.get(tag)
				ptrs = rec is None or types.record_has_pointers(rec)
				strs[bare] = 'pointers' if ptrs else 'plain'
			else:
				die('%s: type %s has no spec class' % (fn.name, t))
	lines = []
	for s in sorted(scal):
		lines.append('scalar %s%s' % (s, '' if scal[s] == 'scalar' else ' ' + scal[s]))
	lines.append('')
	for h in sorted(hand):
		lines.append('handle %s' % h)
	lines.append('')
	for s in sorted(strs):
		lines.append('struct %s %s' % (s, strs[s]))
	lines.append('')
	for c in sorted(cbs):
		lines.append('callback %s' % c)
	return lines


SPEC_BANNER = '''\
# vgpu API spec: every function our libcuda.so.1 exports, one per line.
#
# First drafted by tools/import_cuda_h.py (signatures are facts of the ABI),
# reviewed and from then on edited by hand.  The format and the dispatch
# classes are described in DESIGN.md and read by tools/vgpu_gen.py:
#
#   scalar <Type> [float|double]    a by-value argument type
#   handle <Type>                   an opaque handle (pointer to an incomplete struct)
#   struct <Type> plain|pointers    'pointers': holds a pointer, handle, callback or
#                                   device ordinal somewhere inside
#   callback <Type>                 a function-pointer type
#   <id> <class> <name>(<params>)   every function returns CUresult
#
# Pointer parameters carry one of in, out, inout, str, opaque, and an optional
# [count]: a literal or the name of an integer parameter (bytes for void *).
# Ids are stable: never renumber, never reuse; new functions take the next id.
'''


def write_spec(fns, types, path):
	out = [SPEC_BANNER]
	out += spec_decls(fns, types)
	out.append('')
	for i, fn in enumerate(fns, 1):
		if fn.note:
			out.append(fn.note)
		if fn.why:
			out.append('# unsupported by the draft: ' + fn.why)
		out.append('%d %s %s(%s)' % (i, fn.cls, fn.name, ', '.join(fn.ann) or 'void'))
	text = re.sub(r'\n{3,}', '\n\n', '\n'.join(out) + '\n')
	with open(path, 'w') as f:
		f.write(text)


def main():
	global fn_types
	ap = argparse.ArgumentParser()
	here = os.path.dirname(os.path.abspath(__file__))
	ap.add_argument('--toolkit', default='/usr/local/cuda')
	ap.add_argument('--exports', default='/work/shared/data/libcuda-580-exports.txt')
	ap.add_argument('--outdir', default=os.path.join(here, '..', 'include'))
	args = ap.parse_args()

	ast = load_ast(args.toolkit)
	nodes = ast['inner']
	tag_files(nodes)
	types = Types(nodes)
	fn_types = types
	macros = load_macros(args.toolkit)

	decls = {}
	for n in nodes:
		if n['kind'] == 'FunctionDecl' and n['_file'] in HEADER_NAMES \
				and n.get('storageClass') != 'static':
			if not n['type']['qualType'].startswith('CUresult ('):
				die('%s does not return CUresult' % n['name'])
			decls.setdefault(n['name'], n)

	with open(args.exports) as f:
		names = [l.strip() for l in f if l.strip()]
	cu = [n for n in names if n.startswith('cu') and not n.startswith('cudbg')]
	dbg = [n for n in names if n.startswith('cudbg')]
	if len(cu) != 674 or len(dbg) != 33:
		die('expected 674 cu* and 33 cudbg* exports, got %d and %d' % (len(cu), len(dbg)))

	fns = []
	for name in cu:
		note = None
		node = decls.get(name)
		if node is None and name.endswith(('_ptds', '_ptsz')):
			node = decls.get(name[:-5])
		if node is not None:
			fn = Fn(name, fn_params(node))
		elif name in UNDECLARED:
			fn = Fn(name, [], UNDECLARED[name][1])
		else:
			die('no declaration for export ' + name)
		fn.note = note or fn.note
		classify(fn, types)
		fns.append(fn)

	write_types(nodes, types, macros, os.path.join(args.outdir, 'vgpu', 'cuda_types.h'))
	write_spec(fns, types, os.path.join(args.outdir, 'cuda.spec'))
	with open(os.path.join(args.outdir, 'cudbg-excluded.txt'), 'w') as f:
		f.write('# Exports of NVIDIA\'s libcuda.so.1 (driver 580) that vgpu does not export.\n'
			'# They are the CUDA debugger\'s interface to the driver, not part of the\n'
			'# driver API: several are data objects, not functions, and a remoted\n'
			'# driver cannot serve a local debugger.  One name per line.\n')
		f.write('\n'.join(dbg) + '\n')

	counts = {}
	for fn in fns:
		counts[fn.cls] = counts.get(fn.cls, 0) + 1
	print('classes: ' + ', '.join('%s %d' % (k, counts[k]) for k in sorted(counts)))
	print('unsupported because a parameter could not be annotated:')
	for fn in fns:
		if fn.why:
			print('  %s: %s' % (fn.name, fn.why))
	return 0


if __name__ == '__main__':
	sys.exit(main())
