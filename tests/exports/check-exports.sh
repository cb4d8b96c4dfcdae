#!/bin/sh
# libcuda.so.1 exports exactly the cu* functions of NVIDIA's driver 580 (the
# measured list minus the cudbg* debugger symbols), all as FUNC symbols, and
# nothing else; its soname is libcuda.so.1 and it carries the "vgpu" note.
#   check-exports.sh LIB EXPORTS_LIST EXCLUDED_LIST
set -u
lib=$1 list=$2 excluded=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

grep -v '^#' "$excluded" | sed '/^$/d' | sort > "$tmp/excluded"
sort "$list" | comm -23 - "$tmp/excluded" > "$tmp/want"
nm -D --defined-only "$lib" | awk '{print $2, $3}' | sort -k2 > "$tmp/have"
awk '$1 != "T" {print $2}' "$tmp/have" | grep -v '^$' > "$tmp/notfunc" || true
awk '{print $2}' "$tmp/have" | sort > "$tmp/names"

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
[ $fail = 0 ] && echo "ok: exports, soname, note and nodelete as required"
exit $fail
