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
# to itself (Disruptive, Serial), what is slow by its own label, and alpha/beta features
# (Feature:...), none of which Stowage claims; see STORAGE-SUITE.md.
focus='External.Storage.*csi.stowage.io'
skip='\[Disruptive\]|\[Serial\]|\[Slow\]|\[Feature:'

rc=0
for d in "${drivers[@]}"; do
  file=$here/testdriver-$d.yaml
  [ -f "$file" ] || { echo "storage/run.sh: no $file" >&2; exit 2; }
  echo "== External Storage suite: $d ($file)"
  start=$SECONDS
  # e2e.test writes into its working directory; keep that out of the repository.
  if (cd "$report" && e2e.test \
      -provider=skeleton \
      -kubeconfig="$KUBECONFIG" \
      -storage.testdriver="$file" \
      -ginkgo.focus="$focus" \
      -ginkgo.skip="$skip" \
      -ginkgo.timeout="${STORAGE_SUITE_TIMEOUT:-20m}" \
      -ginkgo.no-color \
      -ginkgo.junit-report="$report/junit-$d.xml" \
      -report-dir="$report" \
      >"$report/$d.log" 2>&1); then
    result=passed
  else
    result=FAILED
    rc=1
  fi
  # The summary: what ran, passed, failed, and the names of failures.
  grep -E '^Ran [0-9]+ of|^(SUCCESS|FAIL)!|^  \[FAIL\]' "$report/$d.log" || true
  echo "== $d: $result in $((SECONDS - start)) s (full output: $report/$d.log)"
done
exit $rc
