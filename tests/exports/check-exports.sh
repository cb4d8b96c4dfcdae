#!/bin/sh
# libcuda.so.1 exports exactly the cu* functions of NVIDIA's driver 580 (the
# measured list minus the cudbg* debugger symbols), all as FUNC symbols, and
# nothing else; its soname is libcuda.so.1, it carries the "vgpu" note, stays
# mapped after dlclose, and needs no glibc newer than the README says.
#   check-exports.sh LIB EXPORTS_LIST EXCLUDED_LIST
set -u
lib=$1 list=$2 excluded=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

grep -v '^#' "$excluded" | sed '/^$/d' | sort > "$tmp/excluded"
sort "$list" | comm -23 - "$tmp/excluded" > "$tmp/want"
# Defined dynamic symbols with their ELF type (weak definitions are
# functions too: nm -D prints them as W, readelf as FUNC WEAK).
nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^$' | sort > "$tmp/names"
readelf --dyn-syms -W "$lib" | awk '$7 != "UND" && $8 != "" && NR > 3 {print $4, $8}' |
	sort -u > "$tmp/types"
awk '$1 != "FUNC" {print $2}' "$tmp/types" > "$tmp/notfunc"

echo "want $(wc -l < "$tmp/want") functions; library defines $(wc -l < "$tmp/names") symbols"
if ! cmp -s "$tmp/want" "$tmp/names"; then
	echo "FAIL: exported names differ (< missing from the library, > extra):"
	diff "$tmp/want" "$tmp/names" | grep '^[<>]' | head -30
	fail=1
fi
if [ -s "$tmp/notfunc" ]; then
	echo "FAIL: exported symbols that are not functions:"
	head "$tmp/notfunc"
	fail=1
fi
if grep -q '^cudbg' "$tmp/names"; then
	echo "FAIL: a cudbg* symbol is exported"
	fail=1
fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ "$soname" != "libcuda.so.1" ]; then
	echo "FAIL: soname is '$soname', not libcuda.so.1"
	fail=1
fi
if ! readelf -n "$lib" | grep -q 'vgpu'; then
	echo "FAIL: the vgpu ELF note is missing"
	fail=1
fi
if ! readelf -d "$lib" | grep -q 'NODELETE'; then
	echo "FAIL: the library is not marked -z nodelete"
	fail=1
fi
# The README promises glibc 2.34: no newer symbol version may be referenced.
newest=$(objdump -T "$lib" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
if [ -n "$newest" ] && [ "$(printf '%s\n2.34\n' "$newest" | sort -V | tail -1)" != "2.34" ]; then
	echo "FAIL: the library needs glibc $newest; the README says 2.34"
	fail=1
fi
[ $fail = 0 ] && echo "ok: exports, soname, note, nodelete and glibc <= 2.34 as required"
exit $fail
