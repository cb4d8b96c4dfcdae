#!/bin/sh
# Generator tests: golden outputs for tests/gen/sample.spec, and every spec in
# tests/gen/bad/ must be refused with a message naming the offending line.
#   run-gen-tests.sh PYTHON GENERATOR TESTDIR OUTDIR
set -u
py=$1 gen=$2 dir=$3 out=$4
mkdir -p "$out"
fail=0
for mode in api-h desc guest exports version-script; do
	if ! "$py" "$gen" "$dir/sample.spec" "$mode" "$out/$mode.out"; then
		echo "FAIL: generator refused sample.spec ($mode)"
		fail=1
		continue
	fi
	if ! cmp -s "$dir/golden/$mode.out" "$out/$mode.out"; then
		echo "FAIL: $mode output differs from tests/gen/golden/$mode.out:"
		diff -u "$dir/golden/$mode.out" "$out/$mode.out" | head -40
		fail=1
	else
		echo "ok: $mode matches its golden output"
	fi
done
for bad in "$dir"/bad/*.spec; do
	name=$(basename "$bad")
	expect=$(sed -n 's/^# expect: //p' "$bad")
	if "$py" "$gen" "$bad" check 2>"$out/$name.err"; then
		echo "FAIL: $name was accepted"
		fail=1
	elif ! grep -q "$name:[0-9]*: .*$expect" "$out/$name.err"; then
		echo "FAIL: $name: message lacks the line number or '$expect':"
		cat "$out/$name.err"
		fail=1
	else
		echo "ok: $name refused: $(cat "$out/$name.err")"
	fi
done
exit $fail
