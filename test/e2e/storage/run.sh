#!/usr/bin/env bash
# run.sh [nfs] [local] — Kubernetes' own External Storage suite (e2e.test) against the Stowage classes
# that test/e2e/install.sh installed, one test-driver definition per class (testdriver-<class>.yaml).
# What is declared, what is skipped and why: ../STORAGE-SUITE.md.
# Env: STORAGE_SUITE_TIMEOUT (ginkgo timeout per driver, default 20m), STORAGE_SUITE_REPORT_DIR
# (default $STOWAGE_CLUSTER_DIR/logs/storage-suite: JUnit report and full output per driver).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck disable=SC1091
. "$repo/test/cluster/env.sh"
drivers=("$@")
[ ${#drivers[@]} -gt 0 ] || drivers=(nfs local)
report=${STORAGE_SUITE_REPORT_DIR:-$STOWAGE_CLUSTER_DIR/logs/storage-suite}
mkdir -p "$report"

# Only the External Storage specs of our driver. Skipped: what needs more than one node or a cluster
# to itself (Disruptive, Serial), what is slow by its own label, and features (Feature:... labels)
# other than VolumeSnapshotDataSource, the one Stowage claims; see STORAGE-SUITE.md.
# STORAGE_SUITE_FOCUS narrows the run (e.g. 'snapshot') for a quick look.
focus='External.Storage.*csi.stowage.io'
if [ -n "${STORAGE_SUITE_FOCUS:-}" ]; then focus="$focus.*$STORAGE_SUITE_FOCUS"; fi
skip='\[Disruptive\]|\[Serial\]|\[Slow\]'
labels='Feature: isSubsetOf {VolumeSnapshotDataSource}'
# Per class: local classes must wait for the first consumer (Stowage refuses Immediate binding for
# them, the chart's schema too), so the suite's patterns that force Immediate binding onto a copy of
# the class cannot apply.
# The NFS class waits for the first consumer too (see values-cluster.yaml for why); Immediate NFS
# binding is covered by test/e2e and test/integration.
declare -A class_skip=(
  [local]='\(immediate binding\)|\(immediate-binding\)'
  [nfs]='\(immediate binding\)|\(immediate-binding\)'
)

# run_class CLASS — one e2e.test run; its output goes to $report/CLASS.log, its result to CLASS.rc.
run_class() {
  local d=$1 file=$here/testdriver-$1.yaml start=$SECONDS rc=0
  # e2e.test writes into its working directory; keep that out of the repository.
  (cd "$report" && e2e.test \
    -provider=skeleton \
    -kubeconfig="$KUBECONFIG" \
    -storage.testdriver="$file" \
    -ginkgo.focus="$focus" \
    -ginkgo.skip="$skip${class_skip[$d]:+|${class_skip[$d]}}" \
    -ginkgo.label-filter="$labels" \
    -ginkgo.timeout="${STORAGE_SUITE_TIMEOUT:-20m}" \
    -ginkgo.v \
    -ginkgo.no-color \
    -ginkgo.junit-report="$report/junit-$d.xml" \
    -report-dir="$report" \
    >"$report/$d.log" 2>&1) || rc=$?
  echo "$rc $((SECONDS - start))" >"$report/$d.rc"
}

for d in "${drivers[@]}"; do
  [ -f "$here/testdriver-$d.yaml" ] || { echo "storage/run.sh: no $here/testdriver-$d.yaml" >&2; exit 2; }
done
# The classes run side by side: the specs mostly wait for pods and namespaces, not for CPU, and
# each class's specs use their own namespaces and volumes.
pids=()
for d in "${drivers[@]}"; do
  echo "== External Storage suite: $d (testdriver-$d.yaml), output in $report/$d.log"
  run_class "$d" &
  pids+=($!)
done
wait "${pids[@]}" || true

rc=0
for d in "${drivers[@]}"; do
  read -r code secs <"$report/$d.rc"
  # The summary: what ran, passed, failed, and the names of failures.
  grep -E '^Ran [0-9]+ of|^(SUCCESS|FAIL)!|^  \[FAIL\]' "$report/$d.log" | sed "s/^/   $d: /" || true
  if [ "$code" = 0 ]; then
    echo "== $d: passed in $secs s"
  else
    echo "== $d: FAILED (exit $code) in $secs s; see $report/$d.log"
    rc=1
  fi
done
exit $rc
