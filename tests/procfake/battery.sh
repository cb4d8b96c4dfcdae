#!/bin/sh
# procfake's battery: real programs run in processes that are not whitelisted
# must behave identically with and without the library (same stdout, stderr
# and exit code), and every run must prove the library was mapped.
#
#   battery.sh preload LIB    LD_PRELOAD=LIB against no preload
#   battery.sh negative LIB   LIB is the always-on build: the battery must
#                             find a difference (negative control)
#   battery.sh system LIB     /etc/ld.so.preload naming LIB, in a private
#                             mount namespace (root only), plus a setuid program
#   battery.sh symbols LIB    the library imports no environment reader
#
# Environment: PF_TEST_ROOT (where the test build reads its identity),
# PF_PROBE (tests/procfake/pf_probe).
set -u

mode=${1:?mode}
lib=${2:?library}
probe=${PF_PROBE:?}
root=${PF_TEST_ROOT:?}

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

if [ "$mode" = symbols ]; then
	# setuid programs run the preload too: it must not read the environment
	nm -D --undefined-only "$lib" >/dev/null 2>&1 || skip "nm cannot read $lib"
	bad=$(nm -D --undefined-only "$lib" | awk '{print $2}' | sed 's/@.*//' |
	      grep -E '^(getenv|secure_getenv|__libc_secure_getenv|environ|__environ|dlopen)$')
	[ -z "$bad" ] || fail "library imports: $bad"
	nm -D --undefined-only "$lib" | grep -q ' syscall@' || fail "no raw system calls imported?"
	echo "ok: no environment access in $lib"
	exit 0
fi

mkdir -p "$root"
# An identity is in place, so a whitelist failure would show.
cat > "$root/identity" <<'ID'
name=NVIDIA H100 80GB HBM3
uuid=GPU-8a1f3c2e-5b7d-4e9a-b0c1-d2e3f4a5b6c7
pci_bus_id=00000000:c3:00.0
memory_total=85520809984
driver_version=580.159.04
cuda_version=13000
pci_device_id=0x2330
ID
rm -f "$root/procfake.conf"

if [ "$mode" = system-inner ]; then
	work=$3		# made by the outer half, removed here
else
	work=$(mktemp -d /tmp/pf-battery.XXXXXX) || fail "mktemp"
	chmod 755 "$work"	# the setuid program runs as nobody in there
fi
trap 'rm -rf "$work"' EXIT
py=$(command -v python3)
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

# name|command: each runs as its own program (no shell in between unless the
# command is the shell).  Only what cannot change between two runs is listed
# in long form (/dev's terminals change their times, sysfs creates inodes
# lazily).
commands() {
	cat <<CMDS
ls-lR|ls -lR /proc/driver /sys/bus/pci/devices/ /sys/module/nvidia
ls-l|ls -l /sys/devices /sys/module /dev/nvidia0 /dev/nvidiactl /proc/driver/nvidia
ls-dev|ls -a /dev
cat|cat /proc/driver/nvidia/version /proc/driver/nvidia/params /proc/version /sys/module/nvidia/version
stat|stat /dev/nvidia0 /dev/nvidiactl /dev/nvidia-uvm /proc/driver /proc/driver/nvidia /sys/bus/pci/devices
lspci|lspci -nn
lspci-v|lspci -vmm -d 10de:
bash|bash -c 'for f in /dev/nvidia* /proc/driver/nvidia/gpus/*; do echo "\$f"; done; test -e /dev/nvidia0; echo \$?; [ -d /sys/module/nvidia ]; echo \$?; ls /sys/bus/pci/devices | wc -l'
python3|$py -c 'import os, glob; print(os.path.exists("/proc/driver/nvidia/version")); print(sorted(os.listdir("/sys/bus/pci/devices"))); print(glob.glob("/dev/nvidia*")); print(os.access("/dev/nvidiactl", os.F_OK))'
find|find /sys/bus/pci/devices/ /sys/module /dev -maxdepth 1 -name '*nvidia*' -o -maxdepth 1 -name '0000:c3*'
find-proc|find /proc/driver -maxdepth 3
mt|$probe mt
forkexec|$probe forkexec cat /proc/driver/nvidia/params
CMDS
}

# run_all DIR [LD_PRELOAD value]: outputs of every command under DIR/<name>.
run_all() {
	dir=$1
	pre=${2:-}
	mkdir -p "$dir"
	commands | while IFS='|' read -r name cmd; do
		mkdir -p "$dir/$name.ld"
		if [ -n "$pre" ]; then
			eval "env LD_PRELOAD=\"$pre\" LD_DEBUG=files LD_DEBUG_OUTPUT=\"$dir/$name.ld/ld\" $cmd" \
				>"$dir/$name.out" 2>"$dir/$name.err" </dev/null
		else
			eval "env LD_DEBUG=files LD_DEBUG_OUTPUT=\"$dir/$name.ld/ld\" $cmd" \
				>"$dir/$name.out" 2>"$dir/$name.err" </dev/null
		fi
		echo $? >"$dir/$name.rc"
	done
}

# compare A B: 0 when every command behaved the same in both; prints diffs.
compare() {
	same=0
	for name in $(commands | cut -d'|' -f1); do
		for part in out err rc; do
			if ! cmp -s "$1/$name.$part" "$2/$name.$part"; then
				echo "DIFF: $name ($part)"
				diff -u "$1/$name.$part" "$2/$name.$part" | head -20
				same=1
			fi
		done
	done
	return $same
}

# mapped DIR: every command's run loaded and initialised the library.
mapped() {
	ok=0
	for name in $(commands | cut -d'|' -f1); do
		if ! grep -qs "calling init: .*libvgpu-procfake" "$1/$name.ld"/ld.*; then
			echo "NOT MAPPED: $name"
			ok=1
		fi
	done
	return $ok
}

unmapped() {
	if grep -ls "libvgpu-procfake" "$1"/*.ld/ld.* >/dev/null 2>&1; then
		echo "baseline run loaded procfake"
		return 1
	fi
	return 0
}

case "$mode" in
preload)
	run_all "$work/plain"
	run_all "$work/pre" "$lib"
	unmapped "$work/plain" || fail "baseline is not a baseline"
	mapped "$work/pre" || fail "procfake was not mapped in every run"
	compare "$work/plain" "$work/pre" || fail "non-whitelisted programs changed under procfake"
	echo "ok: $(commands | wc -l) programs identical with and without procfake"
	;;
negative)
	run_all "$work/plain"
	run_all "$work/pre" "$lib"
	mapped "$work/pre" || fail "procfake was not mapped in every run"
	if compare "$work/plain" "$work/pre" >"$work/diffs"; then
		fail "the always-on build went unnoticed: the battery cannot see procfake"
	fi
	grep '^DIFF' "$work/diffs"
	echo "ok: the battery sees the always-on build"
	;;
system)
	[ "$(id -u)" = 0 ] || skip "needs root for a private mount namespace"
	command -v unshare >/dev/null || skip "no unshare"
	unshare -m true 2>/dev/null || skip "cannot create a mount namespace here"
	# The namespace part is this script again, as "system-inner"; it owns
	# (and removes) the work folder from then on.
	trap - EXIT
	exec unshare -m --propagation private sh "$0" system-inner "$lib" "$work"
	;;
system-inner)
	mkdir -p "$work/up" "$work/wk" "$work/suid"
	run_all "$work/plain"
	# A setuid-root copy of the probe under a name nobody whitelists.
	cp "$probe" "$work/suid/pf_suid" && chown root:root "$work/suid/pf_suid" &&
		chmod 4755 "$work/suid/pf_suid" || fail "setuid copy"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$work/suid/pf_suid" setuid \
		>"$work/suid.plain.out" 2>"$work/suid.plain.err" 3>"$work/suid.plain.fd3"
	echo $? >"$work/suid.plain.rc"

	# /etc gets an overlay whose upper layer holds the preload file; only
	# this namespace sees it.
	echo "$lib" >"$work/up/ld.so.preload"
	mount -t overlay overlay -o "lowerdir=/etc,upperdir=$work/up,workdir=$work/wk" /etc ||
		skip "no overlay mount on /etc here"
	[ "$(cat /etc/ld.so.preload)" = "$lib" ] || fail "preload file not in place"
	run_all "$work/pre"
	setpriv --reuid=65534 --regid=65534 --clear-groups "$work/suid/pf_suid" setuid \
		>"$work/suid.pre.out" 2>"$work/suid.pre.err" 3>"$work/suid.pre.fd3"
	echo $? >"$work/suid.pre.rc"
	umount /etc

	status=0
	unmapped "$work/plain" || status=1
	mapped "$work/pre" || status=1
	compare "$work/plain" "$work/pre" || status=1
	for part in out err rc; do
		cmp -s "$work/suid.plain.$part" "$work/suid.pre.$part" || {
			echo "DIFF: setuid program ($part)"
			diff -u "$work/suid.plain.$part" "$work/suid.pre.$part"
			status=1
		}
	done
	grep -q "euid 0 uid 65534" "$work/suid.pre.out" || { echo "setuid program did not run setuid"; status=1; }
	grep -q "mapped no" "$work/suid.plain.fd3" || { echo "setuid baseline had procfake"; status=1; }
	grep -q "mapped yes" "$work/suid.pre.fd3" || { echo "setuid program did not map procfake"; status=1; }
	[ $status = 0 ] || fail "/etc/ld.so.preload deployment changed something"
	echo "ok: $(commands | wc -l) programs and a setuid program identical under /etc/ld.so.preload"
	;;
*)
	fail "unknown mode $mode"
	;;
esac
