#!/usr/bin/env bash
# Times a local snapshot, the local store's CopyTree, against the tools that
# copy the same tree: `cp -a --reflink=auto` (the copy floor) and
# `tar -C src -cf - . | tar -C dst -xf -`, on a loop-mounted XFS with
# reflink and on a loop-mounted ext4. The tree is BenchmarkCopyTree's (1 GiB
# in 10,000 files, pkg/backend/local/copy_bench_test.go), made once per
# filesystem; every round copies into a fresh directory and ends with a
# syncfs, for the tools as for CopyTree, and rounds of the three alternate. Prints the median of ROUNDS rounds
# (default 3) in seconds. Needs root (loop devices, mount).
#
#   test/bench/snapshot/local.sh            # ROUNDS=5 test/bench/snapshot/local.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."

rounds=${ROUNDS:-3}
[ "$(id -u)" = 0 ] || { echo "local.sh needs root to make loop devices and mount them" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/stowage-snapshot-bench.XXXXXX")
mounted=()
cleanup() {
	for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" || true; done
	rm -rf "$work"
}
trap cleanup EXIT

go test -c -o "$work/local.test" ./pkg/backend/local/

median() { sort -n | awk '{v[NR]=$1} END {printf "%.3f", v[int((NR+1)/2)]}'; }
now() { date +%s.%N; }
tar_copy() { tar -C "$1" -cf - . | tar -C "$2" -xf -; }

# timed DIR CMD...: seconds CMD takes to copy DIR/stowage-bench/vol into a fresh DIR/copy, synced.
timed() {
	local dir=$1 start end
	shift
	rm -rf "$dir/copy" && mkdir "$dir/copy" && sync -f "$dir"
	start=$(now)
	"$@" >/dev/null
	sync -f "$dir"
	end=$(now)
	rm -rf "$dir/copy"
	awk -v a="$start" -v b="$end" 'BEGIN {print b - a}'
}

# copytree DIR: seconds one round of BenchmarkCopyTree takes in DIR (the
# first also makes the tree, untimed).
copytree() {
	STOWAGE_BENCH_DIR=$1 "$work/local.test" -test.run '^$' -test.bench '^BenchmarkCopyTree$/given' \
		-test.benchtime 1x 2>/dev/null | awk '/^BenchmarkCopyTree/ {print $3 / 1e9}'
}

printf '%-12s %10s %10s %10s %14s\n' filesystem CopyTree 'cp -a' tar 'CopyTree/cp'
for fs in xfs-reflink ext4; do
	img=$work/$fs.img mnt=$work/$fs
	mkdir "$mnt"
	truncate -s 4G "$img"
	case $fs in
	xfs-reflink) mkfs.xfs -q -f -m reflink=1 "$img" ;;
	ext4) mkfs.ext4 -q -F "$img" ;;
	esac
	mount -o loop "$img" "$mnt"
	mounted+=("$mnt")

	copytree "$mnt" >/dev/null # makes the tree, warms the cache as it would be for a live volume
	src=$mnt/stowage-bench/vol
	# Rounds alternate between the three, so that load from elsewhere on
	# the machine falls on all of them alike.
	: >"$work/ours" && : >"$work/cp" && : >"$work/tar"
	for _ in $(seq "$rounds"); do
		copytree "$mnt" >>"$work/ours"
		timed "$mnt" cp -a --reflink=auto "$src/." "$mnt/copy/" >>"$work/cp"
		timed "$mnt" tar_copy "$src" "$mnt/copy" >>"$work/tar"
	done
	ours=$(median <"$work/ours") cp_s=$(median <"$work/cp") tar_s=$(median <"$work/tar")
	printf '%-12s %10s %10s %10s %14s\n' "$fs" "$ours" "$cp_s" "$tar_s" "$(awk -v a="$ours" -v b="$cp_s" 'BEGIN {printf "%.2f", a / b}')"
done
