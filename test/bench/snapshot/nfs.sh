#!/usr/bin/env bash
# test/bench/snapshot/nfs.sh — NFS snapshot copy throughput: the NFS store's CopyTree (userspace, no mount)
# vs the floor measured in the same run (the userspace client's plain sequential READ + WRITE of the same
# bytes on one connection, one COMMIT) vs csi-driver-nfs's published ~77 MB/s (tar.gz of the volume).
#
#   test/bench/snapshot/nfs.sh
#
# Env: STOWAGE_BENCH_COPY_MB (tree size, default 256), STOWAGE_BENCH_COPY_FILES (files in the "files" tree,
# default 1024; the "one" tree is one file of the same size), STOWAGE_BENCH_COPY_CONNS (data connections,
# e.g. 2,4,8; default the package's), STOWAGE_BENCH_COPY_FINISHERS (COMMIT/attribute connections),
# BENCHTIME (default 3x). Needs NFS-Ganesha (test/nfs/ganesha.sh ensure: a running one is reused and left
# running; one started here is stopped at the end).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$root"
set -a
eval "$(test/nfs/ganesha.sh ensure)"
set +a
trap 'test/nfs/ganesha.sh release' EXIT
export STOWAGE_TEST_NFS_SERVER=$STOWAGE_NFS_SERVER STOWAGE_TEST_NFS_SHARE=$STOWAGE_NFS_SHARE \
  STOWAGE_TEST_NFS_DIR=$STOWAGE_NFS_EXPORT_DIR
mb=${STOWAGE_BENCH_COPY_MB:-256}
files=${STOWAGE_BENCH_COPY_FILES:-1024}
export STOWAGE_BENCH_COPY_MB=$mb STOWAGE_BENCH_COPY_FILES=$files
out=$(mktemp)
go test -count=1 -run '^$' -bench 'Copy(Tree|Floor)' -benchtime="${BENCHTIME:-3x}" ./pkg/backend/nfs/ 2>/dev/null | tee "$out" | grep '^Benchmark' >&2 || true
grep -q '^ok' "$out" || { echo "nfs.sh: the benchmarks failed:" >&2; cat "$out" >&2; exit 1; }

# Benchmark lines: BenchmarkCopyTree/<tree>/conns=N-P  iters  ns/op  MB/s  MB/s
awk -v mb="$mb" -v files="$files" '
  /^BenchmarkCopyFloor\// { split($1, n, "/"); t = n[2]; sub(/-[0-9]+$/, "", t); floor[t] = $(NF-1) }
  /^BenchmarkCopyTree\//  { split($1, n, "/"); t = n[2]; c = n[3]; sub(/-[0-9]+$/, "", c)
                            row[++rows] = t; conns[rows] = c; rate[rows] = $(NF-1) }
  END {
    printf "\nNFS snapshot copy, %d MiB: \"files\" = %d files in 16 directories, \"one\" = one file\n", mb, files
    printf "%-6s %-10s %14s %14s %10s %16s\n", "tree", "conns", "CopyTree MB/s", "floor MB/s", "vs floor", "vs 77 MB/s tar"
    for (i = 1; i <= rows; i++) {
      t = row[i]
      printf "%-6s %-10s %14.1f %14.1f %9.2fx %15.2fx\n", t, conns[i], rate[i], floor[t], rate[i] / floor[t], rate[i] / 77
    }
  }' "$out"
rm -f "$out"
