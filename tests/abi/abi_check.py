#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ABI test: our clean-room driver types and spec against the toolkit's cuda.h.

Each side is one header: the toolkit's driver headers on one side; our
include/vgpu/cuda_types.h plus prototypes written from include/cuda.spec on
the other.  The names never meet in one translation unit (they collide);
instead, for each side we

  1. preprocess the header and scan the declarations that come from that
     side's own files (typedefs, struct/union tags and their members, enum
     constants, functions), plus its object-like CU* macros;
  2. write a C program that includes only that side's header and prints a
     table: sizes and alignments, member offsets and sizes, enumerator and
     macro values as the compiler evaluates them, and for each typedef and
     function a canonical type string (typedefs resolved to struct tags and
     builtin types, parameter names dropped);
  3. compile and run it.

The two tables are then diffed: every line the toolkit has and we lack, we
have and it lacks, or that differs, fails the test unless its name is in
tests/abi/exceptions.txt with a reason.

usage:
  abi_check.py check --cc CC... --toolkit DIR --include DIR --spec FILE
                     --exceptions FILE --workdir DIR
  abi_check.py table --cc CC... --include DIR --spec FILE --out FILE --workdir DIR
  abi_check.py compare A B [--exceptions FILE]
  abi_check.py negative --cc CC... --include DIR --spec FILE --workdir DIR
  abi_check.py exports --spec FILE --exports FILE --excluded FILE
  abi_check.py headers --cc CC... [--cxx CXX] --include DIR --workdir DIR
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

SKIP = 77

KEYWORDS = {'const', 'volatile', 'signed', 'unsigned', 'short', 'long', 'int', 'char',
	    'float', 'double', 'void', '_Bool', 'struct', 'union', 'enum', 'restrict',
	    '__restrict', 'typedef', 'extern', 'static', 'inline', '__inline'}
BASE_WORDS = {'signed', 'unsigned', 'short', 'long', 'int', 'char', 'float', 'double',
	      'void', '_Bool'}
# Attribute-like tokens that carry no ABI fact for this comparison.
DROP = {'__extension__', '__restrict', 'restrict', '__inline', 'inline', 'extern'}
ALIGN_ATTRS = ('aligned', '__aligned__')

# Interop headers need a few foreign types; these stand-ins have the ABI of
# the real ones (GL and VDPAU ids are 32-bit integers, EGL handles pointers).
STUBS = {
	'GL/gl.h': 'typedef unsigned int GLuint;\ntypedef unsigned int GLenum;\n',
	'EGL/egl.h': ('typedef int EGLint;\ntypedef void *EGLImageKHR;\n'
		      'typedef void *EGLStreamKHR;\ntypedef void *EGLSyncKHR;\n'),
	'EGL/eglext.h': '',
}
TOOLKIT_HEADER = '''\
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


class Fail(Exception):
	pass


# ------------------------------------------------------------ running the compiler

def run(cmd, **kw):
	res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
			     universal_newlines=True, check=False, **kw)
	if res.returncode != 0:
		raise Fail('command failed: %s\n%s' % (' '.join(shlex.quote(c) for c in cmd),
							  res.stderr[-4000:]))
	return res.stdout


# ------------------------------------------------------------ scanning declarations

TOKEN_RE = re.compile(r'''\s*(?:
	(?P<id>[A-Za-z_]\w*) |
	(?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*) |
	(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*') |
	(?P<punct>\.\.\.|->|<<|>>|[{}()\[\];,*=:.<>+\-~!&|^/%?#])
	)''', re.X)


def tokenize(text):
	toks = []
	pos = 0
	text = text.rstrip()
	while pos < len(text):
		m = TOKEN_RE.match(text, pos)
		if not m or m.end() == pos:
			raise Fail('cannot tokenize near: %r' % text[pos:pos + 60])
		pos = m.end()
		toks.append(m.group(m.lastgroup))
	return toks


def own_text(pre, keep):
	"""Keep the preprocessed lines that come from files accepted by keep()."""
	out, on = [], False
	for line in pre.splitlines():
		m = re.match(r'^# \d+ "([^"]*)"', line)
		if m:
			on = keep(m.group(1))
			continue
		if on:
			out.append(line)
	return '\n'.join(out)


def strip_attributes(toks):
	"""Drop __attribute__((...)) (keeping alignment as a pseudo token)."""
	out, i = [], 0
	while i < len(toks):
		t = toks[i]
		if t in ('__attribute__', '__attribute', '__declspec', '__asm__', '__asm'):
			depth, j = 0, i + 1
			while j < len(toks):
				if toks[j] == '(':
					depth += 1
				elif toks[j] == ')':
					depth -= 1
					if depth == 0:
						break
				j += 1
			inner = toks[i + 1:j + 1]
			for k, x in enumerate(inner):
				if x in ALIGN_ATTRS:
					out.append('@align')
			i = j + 1
			continue
		if t in ('_Alignas', 'alignas'):
			out.append('@align')
			depth, j = 0, i + 1
			while j < len(toks):
				if toks[j] == '(':
					depth += 1
				elif toks[j] == ')':
					depth -= 1
					if depth == 0:
						break
				j += 1
			i = j + 1
			continue
		if t in DROP:
			i += 1
			continue
		out.append(t)
		i += 1
	return out


def split_top(toks, sep):
	"""Split at sep outside (), [], {}."""
	parts, cur, depth = [], [], 0
	for t in toks:
		if t in '([{':
			depth += 1
		elif t in ')]}':
			depth -= 1
		if t == sep and depth == 0:
			parts.append(cur)
			cur = []
		else:
			cur.append(t)
	if cur:
		parts.append(cur)
	return parts


def match_close(toks, i):
	pair = {'(': ')', '[': ']', '{': '}'}
	o, c, depth = toks[i], pair[toks[i]], 0
	for j in range(i, len(toks)):
		if toks[j] == o:
			depth += 1
		elif toks[j] == c:
			depth -= 1
			if depth == 0:
				return j
	raise Fail('unbalanced %s' % o)


class Scan:
	"""Names declared by one side, with enough structure to write the table."""

	def __init__(self):
		self.typedefs = {}	# name -> (spec tokens, declarator tokens)
		self.typedef_order = []
		self.tags = {}		# 'struct X' -> [(path, is_bitfield)]
		self.tag_order = []
		self.enums = []		# enumerator names in order
		self.funcs = {}		# name -> [param token lists]
		self.anon = 0
		self.hidden = set()	# typedefs from stand-in headers: resolved, not listed

	# -- type specifiers ------------------------------------------------

	def parse_spec(self, toks, i):
		"""Parse a declaration specifier at toks[i]; return (spec tokens, next i)."""
		spec = []
		seen_type = False
		while i < len(toks):
			t = toks[i]
			if t in ('const', 'volatile', 'typedef', 'static', '@align'):
				spec.append(t)
				i += 1
			elif t in BASE_WORDS:
				spec.append(t)
				seen_type = True
				i += 1
			elif t in ('struct', 'union', 'enum'):
				kw = t
				i += 1
				tag = None
				if i < len(toks) and re.match(r'^[A-Za-z_]\w*$', toks[i]):
					tag = toks[i]
					i += 1
				if i < len(toks) and toks[i] == '{':
					j = match_close(toks, i)
					body = toks[i + 1:j]
					if tag is None:
						self.anon += 1
						tag = '@anon%d' % self.anon
					if kw == 'enum':
						self.parse_enum(body)
					else:
						self.parse_record(kw + ' ' + tag, body)
					i = j + 1
				spec += [kw, tag]
				seen_type = True
			elif re.match(r'^[A-Za-z_]\w*$', t) and not seen_type and t not in KEYWORDS:
				spec.append(t)
				seen_type = True
				i += 1
			else:
				break
		return spec, i

	def parse_enum(self, body):
		for part in split_top(body, ','):
			if part:
				self.enums.append(part[0])

	def parse_record(self, key, body):
		fields = []
		self.tags[key] = fields
		self.tag_order.append(key)
		for member in split_top(body, ';'):
			if not member:
				continue
			spec, i = self.parse_spec(member, 0)
			decls = split_top(member[i:], ',')
			inner = self.inner_tag(spec)
			if not decls:
				# An anonymous struct/union member: its fields belong here.
				if inner is not None:
					for p, bf in self.tags.get(inner, []):
						fields.append((p, bf))
				continue
			for d in decls:
				name = declarator_name(d)
				bitfield = ':' in d
				fields.append((name, bitfield))
				if inner is not None and '@anon' in inner and not bitfield:
					sub = name + ('[0]' if '[' in d else '')
					for p, bf in self.tags.get(inner, []):
						fields.append((sub + '.' + p, bf))

	@staticmethod
	def inner_tag(spec):
		for k in range(len(spec) - 1):
			if spec[k] in ('struct', 'union'):
				return spec[k] + ' ' + spec[k + 1]
		return None

	# -- top level -------------------------------------------------------

	def parse_unit(self, toks):
		i = 0
		decl = []
		depth = 0
		while i < len(toks):
			t = toks[i]
			if t in '({[':
				depth += 1
			elif t in ')}]':
				depth -= 1
			if depth == 0 and t == ';':
				self.parse_decl(decl)
				decl = []
			elif depth == 0 and t == '}' and decl and decl[0] != 'typedef' and \
					self.is_function_body(decl):
				decl = []	# an inline function definition: nothing to compare
			else:
				decl.append(t)
			i += 1

	@staticmethod
	def is_function_body(decl):
		if '{' not in decl:
			return False
		k = decl.index('{')
		return k > 0 and decl[k - 1] == ')'

	def parse_decl(self, decl):
		if not decl:
			return
		spec, i = self.parse_spec(decl, 0)
		rest = decl[i:]
		if 'typedef' in spec:
			base = [t for t in spec if t != 'typedef']
			for d in split_top(rest, ','):
				name = declarator_name(d)
				if name is None:
					continue
				self.typedefs[name] = (base, d)
				self.typedef_order.append(name)
			return
		if not rest:
			return		# a tag definition alone: already recorded
		for d in split_top(rest, ','):
			name = declarator_name(d)
			if name is None or '(' not in d:
				continue
			k = d.index(name)
			if k + 1 < len(d) and d[k + 1] == '(':
				j = match_close(d, k + 1)
				params = split_top(d[k + 2:j], ',')
				if params == [['void']]:
					params = []
				self.funcs[name] = (spec, params)

	# -- canonical types -------------------------------------------------

	def canon(self, spec, decl, depth=0):
		"""A canonical string for the type spec + abstract declarator."""
		if depth > 40:
			raise Fail('typedef loop at %s' % spec)
		spec = [t for t in spec if t not in ('typedef', 'static', '@align')]
		const = 'const' in spec
		words = [t for t in spec if t not in ('const', 'volatile')]
		if words and words[0] in ('struct', 'union', 'enum'):
			tag = words[1]
			if tag.startswith('@anon'):
				tag = '<anon>'
			base = '%s %s' % (words[0], tag)
		elif len(words) == 1 and words[0] in self.typedefs:
			tspec, tdecl = self.typedefs[words[0]]
			base = self.canon(tspec, abstract(tdecl), depth + 1)
		else:
			base = normal_builtin(words)
		d = [t for t in decl if not re.match(r'^[A-Za-z_]\w*$', t) or t in ('const',)]
		d = drop_param_names(self, decl)
		text = ('const ' if const else '') + base
		return combine(text, d)

	def func_sig(self, name):
		spec, params = self.funcs[name]
		ret = self.canon(spec, [])
		ps = []
		for p in params:
			pspec, i = self.parse_spec(p, 0)
			ad = abstract(p[i:], strip_name=True)
			t = self.canon(pspec, ad)
			# Top-level qualifiers on a parameter are not part of the type.
			if '*' not in t and '(' not in t and t.startswith('const '):
				t = t[len('const '):]
			ps.append(t)
		return '%s (%s)' % (ret, ', '.join(ps) if ps else 'void')


def declarator_name(d):
	"""The identifier a declarator declares (None for an abstract one)."""
	depth = 0
	for k, t in enumerate(d):
		if t == '(':
			# '(' after a name (or at depth 0 after an identifier) starts params
			depth += 1
		elif t == ')':
			depth -= 1
		elif t in ('[', ':'):
			return None
		elif re.match(r'^[A-Za-z_]\w*$', t) and t not in KEYWORDS and t != '@align':
			return t
	return None


def abstract(d, strip_name=True):
	"""Remove the declared name from a declarator."""
	name = declarator_name(d)
	if name is None:
		return list(d)
	k = d.index(name)
	return list(d[:k]) + ['@'] + list(d[k + 1:])


def drop_param_names(scan, d):
	"""Canonicalize parameter lists inside a declarator (function pointers)."""
	out, i = [], 0
	while i < len(d):
		t = d[i]
		if t == '(' and i > 0 and d[i - 1] == ')':
			j = match_close(d, i)
			params = split_top(d[i + 1:j], ',')
			if params == [['void']]:
				params = []
			ps = []
			for p in params:
				pspec, k = scan.parse_spec(p, 0)
				t2 = scan.canon(pspec, abstract(p[k:]))
				if '*' not in t2 and t2.startswith('const '):
					t2 = t2[len('const '):]
				ps.append(t2)
			out.append('(' + (', '.join(ps) if ps else 'void') + ')')
			i = j + 1
			continue
		if t in ('@align',):
			i += 1
			continue
		out.append(t)
		i += 1
	return out


def normal_builtin(words):
	w = list(words)
	if not w:
		return 'int'
	signed = 'unsigned' not in w
	longs = w.count('long')
	if 'char' in w:
		return 'unsigned char' if 'unsigned' in w else ('signed char' if 'signed' in w else 'char')
	if 'short' in w:
		return 'short' if signed else 'unsigned short'
	if longs == 2:
		return 'long long' if signed else 'unsigned long long'
	if longs == 1 and 'double' in w:
		return 'long double'
	if longs == 1:
		return 'long' if signed else 'unsigned long'
	for b in ('void', 'float', 'double', '_Bool'):
		if b in w:
			return b
	if w in (['int'], ['signed'], ['signed', 'int']):
		return 'int'
	if w in (['unsigned'], ['unsigned', 'int']):
		return 'unsigned int'
	return ' '.join(w)


def combine(base, d):
	"""Write base + abstract declarator as one normalized string."""
	text = ' '.join(d).replace('@', '').strip()
	text = re.sub(r'\s+', ' ', text)
	s = (base + ' ' + text).strip()
	s = re.sub(r'\(\s*\*\s*\)', '(*)', s)
	s = re.sub(r'\s*\*\s*', ' *', s)
	s = re.sub(r'\s*\[\s*', '[', s).replace(' ]', ']')
	return re.sub(r'\s+', ' ', s).strip()


# ------------------------------------------------------------ the two sides

def spec_prototypes(spec_path):
	"""C prototypes for every function of the spec, annotations stripped."""
	out = []
	fre = re.compile(r'^(\d+)\s+(\w+)\s+(\w+)\s*\((.*)\)\s*;?\s*$')
	with open(spec_path) as f:
		for raw in f:
			line = raw.split('#', 1)[0].strip()
			m = fre.match(line)
			if not m:
				continue
			params = []
			text = m.group(4).strip()
			if text and text != 'void':
				for p in split_params(text):
					p = strip_annotation(p.strip())
					p = re.sub(r'\[\w+\]\s*$', '', p)
					params.append(p)
			out.append('CUresult %s(%s);' % (m.group(3), ', '.join(params) or 'void'))
	return out


def strip_annotation(p):
	"""Drop the spec's direction word (in, out, destroy, ...): a leading
	word that is no C keyword, followed by a type and a name."""
	w = p.split(None, 1)
	if len(w) == 2 and w[0] not in KEYWORDS and \
			len(re.findall(r'[A-Za-z_]\w*', w[1])) >= 2:
		return w[1]
	return p


def split_params(text):
	parts, depth, cur = [], 0, ''
	for ch in text:
		if ch == '(':
			depth += 1
		elif ch == ')':
			depth -= 1
		if ch == ',' and depth == 0:
			parts.append(cur)
			cur = ''
		else:
			cur += ch
	if cur.strip():
		parts.append(cur)
	return parts


def write(path, text):
	with open(path, 'w') as f:
		f.write(text)


def side_setup(side, args, workdir):
	"""Write the side's header; return (header path, cflags, keep(file))."""
	os.makedirs(workdir, exist_ok=True)
	if side == 'nv':
		inc = os.path.join(args.toolkit, 'include')
		stub = os.path.join(workdir, 'stub')
		for rel, text in STUBS.items():
			p = os.path.join(stub, rel)
			os.makedirs(os.path.dirname(p), exist_ok=True)
			write(p, text)
		hdr = os.path.join(workdir, 'side_nv.h')
		write(hdr, TOOLKIT_HEADER)
		flags = ['-D__CUDA_API_VERSION_INTERNAL', '-I' + stub, '-I' + inc]
		real = os.path.realpath(inc)

		def keep(f):
			return os.path.realpath(os.path.dirname(f)) == real
		return hdr, flags, keep, {'side_nv.h', 'GL/gl.h', 'EGL/egl.h'}
	hdr = os.path.join(workdir, 'side_ours.h')
	write(hdr, '#include <vgpu/cuda_types.h>\n\n' + '\n'.join(spec_prototypes(args.spec)) + '\n')
	flags = ['-I' + args.include]
	real = os.path.realpath(os.path.join(args.include, 'vgpu', 'cuda_types.h'))

	def keep(f):
		return os.path.realpath(f) == real or os.path.basename(f) == 'side_ours.h'
	return hdr, flags, keep, set()


def scan_side(cc, hdr, flags, keep, workdir):
	pre = run(cc + ['-E', '-std=gnu11'] + flags + [hdr])
	scan = Scan()
	# Stand-in typedefs and the VDPAU prelude are scanned so that types
	# resolve, but are not part of the table.
	side = os.path.basename(hdr)
	helper = own_text(pre, lambda f: os.path.basename(f) == side or '/stub/' in f)
	if 'side_nv' in side:
		scan.parse_unit(strip_attributes(tokenize(helper)))
		scan.hidden = set(scan.typedefs)
		scan.enums = []
	scan.parse_unit(strip_attributes(tokenize(own_text(pre, keep))))
	macros = []
	base = run(cc + ['-E', '-dM', '-std=gnu11', '-x', 'c', '-'] + flags, input='#include <stdlib.h>\n#include <stdint.h>\n')
	libc = set(base.splitlines())
	for line in run(cc + ['-E', '-dM', '-std=gnu11'] + flags + [hdr]).splitlines():
		if line in libc:
			continue
		m = re.match(r'#define (CU\w*|CUDA_VERSION) (.+)$', line)
		if not m or '(' in m.group(1):
			continue
		name, val = m.group(1), m.group(2).strip()
		if name in ('CUDAAPI', 'CUDA_CB') or '"' in val:
			continue
		if re.match(r'^_*cu\w+$', val) or '__CUDA_API' in val:
			continue	# a function renaming: compared through the exports
		if name.startswith(('CUDAGL_', 'CUDAEGL_', 'CUDAVDPAU_')) or name.endswith('_H'):
			continue
		macros.append(name)
	return scan, sorted(macros)


def c_string(s):
	return '"' + s.replace('\\', '\\\\').replace('"', '\\"') + '"'


def table_program(scan, macros, hdr):
	L = ['#include "%s"' % hdr, '#include <stddef.h>', '#include <stdint.h>',
	     '#include <stdio.h>', '',
	     '#define SZ(k, n, t) printf("size %s %s %zu %zu\\n", k, n, sizeof(t), _Alignof(t))',
	     '#define OFF(k, t, p) printf("field %s.%s %zu %zu\\n", k, #p, offsetof(t, p), sizeof(((t *)0)->p))',
	     '', 'int main(void)', '{']
	for name in scan.typedef_order:
		if name in scan.hidden:
			continue
		spec, d = scan.typedefs[name]
		t = scan.canon(spec, abstract(d))
		L.append('\tprintf("typedef %%s %%s\\n", %s, %s);' % (c_string(name), c_string(t)))
		k = d.index(name)
		if not (k + 1 < len(d) and d[k + 1] == '('):	# not a function type
			L.append('\tSZ("typedef", %s, %s);' % (c_string(name), name))
	for key in scan.tag_order:
		if '@anon' in key:
			continue
		L.append('\tSZ("tag", %s, %s);' % (c_string(key.replace(' ', ':')), key))
		for path, bitfield in scan.tags[key]:
			if bitfield or '@anon' in path:
				L.append('\tprintf("bitfield %%s.%%s\\n", %s, %s);' % (
					c_string(key.replace(' ', ':')), c_string(path)))
			else:
				L.append('\tOFF(%s, %s, %s);' % (c_string(key.replace(' ', ':')), key, path))
	for e in scan.enums:
		L.append('\tprintf("enum %%s %%lld\\n", %s, (long long)(%s));' % (c_string(e), e))
	for m in macros:
		L.append('\tprintf("define %%s %%llu\\n", %s, (unsigned long long)(uintptr_t)(%s));' % (
			c_string(m), m))
	for f in sorted(scan.funcs):
		if not f.startswith('cu'):
			continue
		L.append('\tprintf("func %%s %%s\\n", %s, %s);' % (c_string(f), c_string(scan.func_sig(f))))
	L += ['\treturn 0;', '}', '']
	return '\n'.join(L)


def make_table(side, args, workdir):
	cc = shlex.split(args.cc) if isinstance(args.cc, str) else args.cc
	hdr, flags, keep, _ = side_setup(side, args, workdir)
	scan, macros = scan_side(cc, hdr, flags, keep, workdir)
	src = os.path.join(workdir, 'table_%s.c' % side)
	exe = os.path.join(workdir, 'table_%s' % side)
	write(src, table_program(scan, macros, hdr))
	run(cc + ['-std=gnu11', '-w'] + flags + ['-o', exe, src])
	out = run([exe])
	path = os.path.join(workdir, 'table_%s.txt' % side)
	write(path, out)
	return path


# ------------------------------------------------------------ comparing

def load_table(path):
	rows = {}
	with open(path) as f:
		for line in f:
			w = line.split(None, 2)
			if len(w) < 2:
				continue
			if w[0] == 'size':
				# size <kind> <name> <sizeof> <alignof>
				w = line.split()
				key = ('size', w[1] + ' ' + w[2])
				val = ' '.join(w[3:])
			else:
				key = (w[0], w[1])
				val = w[2].strip() if len(w) > 2 else ''
			rows[key] = val
	return rows


def subject(key):
	"""The name an exception line refers to."""
	kind, name = key
	if kind == 'size':
		name = name.split(' ', 1)[1]
	name = name.split(':', 1)[-1]
	return name


def load_exceptions(path):
	exc = {}
	if not path:
		return exc
	with open(path) as f:
		for n, raw in enumerate(f, 1):
			line = raw.strip()
			if not line or line.startswith('#'):
				continue
			w = line.split(None, 1)
			if len(w) < 2:
				raise Fail('%s:%d: an exception needs a reason' % (path, n))
			exc[w[0]] = w[1]
	return exc


def excepted(key, exc):
	s = subject(key)
	return s in exc or s.split('.', 1)[0] in exc


def compare(nv_path, ours_path, exc):
	nv, ours = load_table(nv_path), load_table(ours_path)
	problems, used = [], set()
	for key in sorted(set(nv) | set(ours)):
		a, b = nv.get(key), ours.get(key)
		if a == b:
			continue
		if excepted(key, exc):
			s = subject(key)
			used.add(s if s in exc else s.split('.', 1)[0])
			continue
		if b is None:
			problems.append('missing in ours: %s %s = %s' % (key[0], key[1], a))
		elif a is None:
			problems.append('not in cuda.h:  %s %s = %s' % (key[0], key[1], b))
		else:
			problems.append('differs:        %s %s: cuda.h %s, ours %s' % (key[0], key[1], a, b))
	return problems, used, len(nv), len(ours)


# ------------------------------------------------------------ commands

def cmd_check(args):
	if not os.path.exists(os.path.join(args.toolkit, 'include', 'cuda.h')):
		print('SKIP: no %s/include/cuda.h: nothing to compare against' % args.toolkit)
		return SKIP
	exc = load_exceptions(args.exceptions)
	nv = make_table('nv', args, args.workdir)
	ours = make_table('ours', args, args.workdir)
	problems, used, n_nv, n_ours = compare(nv, ours, exc)
	print('compared %d toolkit facts with %d of ours (%s, %s)' % (n_nv, n_ours, nv, ours))
	for p in problems:
		print(p)
	for name in sorted(set(exc) - used):
		print('note: exception %s matched nothing' % name)
	if problems:
		print('FAIL: %d ABI differences' % len(problems))
		return 1
	print('ok: every type, layout, value and prototype agrees')
	return 0


def cmd_table(args):
	side = 'ours'
	print(make_table(side, args, args.workdir))
	return 0


def cmd_compare(args):
	problems, _, _, _ = compare(args.a, args.b, load_exceptions(args.exceptions))
	for p in problems:
		print(p)
	return 1 if problems else 0


def cmd_negative(args):
	"""The comparator must catch one altered member offset."""
	table = make_table('ours', args, args.workdir)
	with open(table) as f:
		lines = f.read().splitlines()
	altered = list(lines)
	for i, line in enumerate(altered):
		m = re.match(r'^(field (struct|union):CUDA_MEMCPY2D_st\.srcY) (\d+) (\d+)$', line)
		if m:
			altered[i] = '%s %d %s' % (m.group(1), int(m.group(3)) + 4, m.group(4))
			break
	else:
		print('FAIL: no CUDA_MEMCPY2D_st.srcY line in our table')
		return 1
	alt = os.path.join(args.workdir, 'table_altered.txt')
	write(alt, '\n'.join(altered) + '\n')
	same, _, _, _ = compare(table, table, {})
	diff, _, _, _ = compare(table, alt, {})
	if same:
		print('FAIL: a table differs from itself: %s' % same[:3])
		return 1
	if len(diff) != 1 or 'srcY' not in diff[0]:
		print('FAIL: the altered offset was not reported exactly once: %s' % diff)
		return 1
	print('ok: comparator reports the altered offset: ' + diff[0])
	return 0


def cmd_headers(args):
	"""cuda_types.h must compile warning-free in C and, where a C++ compiler
	is installed, in C++ (users of the types may be either)."""
	cc = shlex.split(args.cc)
	os.makedirs(args.workdir, exist_ok=True)
	src = os.path.join(args.workdir, 'types_only.c')
	write(src, '#include <vgpu/cuda_types.h>\n'
		   'CUresult vg_abi_probe(CUcontext c, CUDA_MEMCPY2D *m);\n'
		   'CUresult vg_abi_probe(CUcontext c, CUDA_MEMCPY2D *m)\n'
		   '{\n\treturn c == 0 && m == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;\n}\n')
	warn = ['-Wall', '-Wextra', '-Werror']
	run(cc + ['-std=gnu11', '-Wmissing-prototypes', '-Wstrict-prototypes', '-Wshadow'] + warn +
	    ['-I' + args.include, '-c', '-o', src + '.o', src])
	print('ok: C (gnu11)')
	cxx = args.cxx or next((c for c in ('c++', 'g++', 'clang++') if shutil.which(c)), None)
	if cxx is None:
		print('SKIP: no C++ compiler for the C++ half')
		return SKIP
	srcpp = os.path.join(args.workdir, 'types_only.cc')
	write(srcpp, open(src).read())
	run(shlex.split(cxx) + warn + ['-I' + args.include, '-c', '-o', srcpp + '.o', srcpp])
	print('ok: C++ (%s)' % cxx)
	return 0


def cmd_exports(args):
	with open(args.exports) as f:
		names = [l.strip() for l in f if l.strip()]
	cu = {n for n in names if n.startswith('cu') and not n.startswith('cudbg')}
	dbg = {n for n in names if n.startswith('cudbg')}
	spec = []
	fre = re.compile(r'^(\d+)\s+(\w+)\s+(\w+)\s*\(')
	with open(args.spec) as f:
		for raw in f:
			m = fre.match(raw.split('#', 1)[0].strip())
			if m:
				spec.append(m.group(3))
	with open(args.excluded) as f:
		excl = {l.strip() for l in f if l.strip() and not l.startswith('#')}
	bad = 0
	if len(cu) != 674:
		print('FAIL: the exports list has %d cu* names, expected 674' % len(cu))
		bad = 1
	dup = sorted({n for n in spec if spec.count(n) > 1})
	for n in dup:
		print('FAIL: %s twice in the spec' % n)
		bad = 1
	for n in sorted(cu - set(spec)):
		print('FAIL: exported by the real driver, missing from the spec: %s' % n)
		bad = 1
	for n in sorted(set(spec) - cu):
		print('FAIL: in the spec, not exported by the real driver: %s' % n)
		bad = 1
	if excl != dbg:
		print('FAIL: cudbg-excluded.txt differs from the cudbg* exports: %s' %
		      sorted(excl ^ dbg))
		bad = 1
	if not bad:
		print('ok: %d spec functions == the %d cu* exports; %d cudbg* excluded' % (
			len(spec), len(cu), len(dbg)))
	return bad


def main():
	ap = argparse.ArgumentParser()
	sub = ap.add_subparsers(dest='cmd')
	for name in ('check', 'table', 'negative'):
		p = sub.add_parser(name)
		p.add_argument('--cc', required=True)
		p.add_argument('--toolkit', default='/usr/local/cuda')
		p.add_argument('--include', required=True)
		p.add_argument('--spec', required=True)
		p.add_argument('--exceptions')
		p.add_argument('--workdir', required=True)
	p = sub.add_parser('headers')
	p.add_argument('--cc', required=True)
	p.add_argument('--cxx')
	p.add_argument('--include', required=True)
	p.add_argument('--workdir', required=True)
	p = sub.add_parser('compare')
	p.add_argument('a')
	p.add_argument('b')
	p.add_argument('--exceptions')
	p = sub.add_parser('exports')
	p.add_argument('--spec', required=True)
	p.add_argument('--exports', required=True)
	p.add_argument('--excluded', required=True)
	args = ap.parse_args()
	try:
		return {'check': cmd_check, 'table': cmd_table, 'compare': cmd_compare,
			'negative': cmd_negative, 'exports': cmd_exports, 'headers': cmd_headers}[args.cmd](args)
	except Fail as e:
		print('FAIL: %s' % e)
		return 1


if __name__ == '__main__':
	sys.exit(main())
