#!/bin/sh
# Runs the project-quota tests (pkg/quota, pkg/backend/local, pkg/driver) under a
# user-mode Linux kernel, for hosts whose own kernel lacks quota support
# (no CONFIG_XFS_QUOTA / CONFIG_QFMT_V2, as on many CI and microVM kernels).
# Needs: apt-get install user-mode-linux xfsprogs e2fsprogs. Run as root
# from the repository root:  sh pkg/quota/testdata/uml-test.sh [-test.run X]
# The guest sees the host's / read-write through hostfs, but its mounts,
# loop devices and /tmp are its own, so nothing is left behind on the host.
set -eu
UML=${UML:-linux.uml}
command -v "$UML" >/dev/null || { echo "no $UML; apt-get install user-mode-linux" >&2; exit 2; }
# Not under /tmp: the guest mounts its own tmpfs there.
out=$(mktemp -d /var/tmp/stowage-uml.XXXXXX)
trap 'rm -rf "$out"' EXIT

go test -c -o "$out/quota.test" ./pkg/quota
go test -c -o "$out/local.test" ./pkg/backend/local
go test -c -o "$out/driver.test" ./pkg/driver

# The first (and normally only) module tree that user-mode-linux installs.
mods=
for d in /usr/lib/uml/modules/*/kernel; do mods=$d; break; done
cat >"$out/init" <<INIT
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=900m tmpfs /tmp
for m in drivers/block/loop.ko fs/quota/quota_tree.ko fs/quota/quota_v2.ko; do
	insmod $mods/\$m 2>/dev/null || true
done
rc=0
cd $out
echo "=== quota"
./quota.test -test.v -test.count=1 $* || rc=1
# Of the local backend only what needs quotas: the rest runs on the host in
# make unit, where its big trees take seconds instead of many minutes.
echo "=== local"
./local.test -test.v -test.count=1 -test.run Quota $* || rc=1
# Of the driver, the inline scratch volume's size limit (ENOSPC at its size).
echo "=== driver"
./driver.test -test.v -test.count=1 -test.run InlineQuota $* || rc=1
echo \$rc >$out/rc
echo o >/proc/sysrq-trigger
sleep 10
INIT
chmod +x "$out/init"

# hostfs root: the guest runs the host's binaries, including the test builds.
"$UML" mem=1200M root=/dev/root rootfstype=hostfs rootflags=/ rw \
	init="$out/init" con0=fd:0,fd:1 con=null quiet </dev/null 2>&1 |
	grep -v '^\(Linux version\|Checking\|Kernel command\|	\)' || true
rc=$(cat "$out/rc" 2>/dev/null || echo 1)
[ "$rc" = 0 ] && echo "uml-test: PASS" || echo "uml-test: FAIL"
exit "$rc"
