#!/usr/bin/env bash
# lint.sh (`make lint`) — every static check the repository must pass, in one place:
#   - gofmt: no Go file may need formatting;
#   - go vet and staticcheck over each Go module that builds without Kubernetes itself: the root
#     module, test/cluster/pause and test/bench/plot (test/cluster/wrap* only name k8s.io/kubernetes
#     commands for build-binaries.sh; checking them would compile all of Kubernetes);
#   - ShellCheck over every shell script: *.sh and every file whose #! line names a shell;
#   - helm lint of charts/stowage (test/chart/check.sh also lints it with every value set);
#   - hack/check-commands.sh: every program a script calls is installed by install-deps.sh, part of
#     a minimal Debian, or built by the repo; and its self-test.
# Every check runs even when an earlier one failed, so one run shows all findings.
# Needs go, shellcheck (test/cluster/install-deps.sh) and helm (test/cluster/build-binaries.sh helm).
# staticcheck is installed on first use into $STOWAGE_CACHE/tools (default ~/.cache/stowage/tools)
# and reused while its version and the Go toolchain stay the same.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=test/cluster/lib.sh
. test/cluster/lib.sh # STOWAGE_CACHE, K8S_BIN

STATICCHECK_VERSION=v0.8.2
GO_MODULES=(. test/cluster/pause test/bench/plot)

# repo_files — the repository's files, tracked or new (not ignored), relative to the root.
repo_files() {
  if git rev-parse --git-dir >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard
  else
    find . -path ./.git -prune -o -type f -print | sed 's|^\./||'
  fi
}

# shell_scripts — *.sh files, and files whose first line is a #! naming sh, bash, dash, ksh or zsh.
shell_scripts() {
  local files=() f
  while IFS= read -r f; do [ -f "$f" ] && files+=("$f"); done < <(repo_files)
  {
    printf '%s\n' "${files[@]}" | grep '\.sh$' || true
    # shellcheck disable=SC2016 # an awk program
    printf '%s\0' "${files[@]}" | grep -zv '\.sh$' | xargs -0 -r awk '
      FNR == 1 { if ($0 ~ /^#!.*(\/|[ \t])(ba|da|k|z)?sh([ \t]|$)/) print FILENAME; nextfile }'
  } | sort -u
}

check_gofmt() {
  local bad
  bad=$(repo_files | grep '\.go$' | while IFS= read -r f; do [ -f "$f" ] && echo "$f"; done | xargs -r gofmt -l) || return 1
  [ -z "$bad" ] && return 0
  echo "these files need gofmt (run: gofmt -w FILE):"
  echo "$bad"
  return 1
}

check_vet() {
  local m rc=0
  for m in "${GO_MODULES[@]}"; do (cd "$m" && go vet ./...) || rc=1; done
  return $rc
}

# staticcheck_bin — the path of staticcheck $STATICCHECK_VERSION built by the current Go toolchain,
# installing it when missing or built by another version (a binary from an older Go refuses to load
# packages that need a newer one).
staticcheck_bin() {
  local dir=$STOWAGE_CACHE/tools info
  info=$(go version -m "$dir/staticcheck" 2>/dev/null || true)
  if ! grep -q "^$dir/staticcheck: $(go env GOVERSION)\$" <<<"$info" ||
    ! grep -Eq "^[[:space:]]+mod[[:space:]]+honnef.co/go/tools[[:space:]]+${STATICCHECK_VERSION}[[:space:]]" <<<"$info"; then
    echo "installing staticcheck $STATICCHECK_VERSION into $dir" >&2
    GOBIN=$dir go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION" >&2 || return 1
  fi
  echo "$dir/staticcheck"
}

check_staticcheck() {
  local sc m rc=0
  sc=$(staticcheck_bin) || { echo "could not install staticcheck (needs the Go module proxy)"; return 1; }
  for m in "${GO_MODULES[@]}"; do (cd "$m" && "$sc" ./...) || rc=1; done
  return $rc
}

check_shellcheck() {
  command -v shellcheck >/dev/null || {
    echo "shellcheck is not installed: run test/cluster/install-deps.sh (or apt-get install shellcheck)"
    return 1
  }
  local scripts
  mapfile -t scripts < <(shell_scripts)
  shellcheck -x -f gcc "${scripts[@]}"
}

# The same helm the chart target (test/chart/check.sh) uses: $HELM, else the cached build, else PATH.
check_helm() {
  local helm=${HELM:-$K8S_BIN/helm}
  [ -x "$helm" ] || helm=$(command -v helm) || {
    echo "helm not found: run test/cluster/build-binaries.sh helm, or set HELM"
    return 1
  }
  # --kube-version: a helm built from the proxy assumes Kubernetes v1.20 offline; the chart needs >= 1.29.
  "$helm" lint --strict --kube-version 1.34.4 charts/stowage
}

check_commands() {
  local scripts
  mapfile -t scripts < <(shell_scripts)
  hack/check-commands.sh "${scripts[@]}" && hack/check-commands.sh --self-test
}

failed=()
for check in gofmt vet staticcheck shellcheck helm commands; do
  echo "== lint: $check"
  "check_$check" || failed+=("$check")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "lint: FAILED: ${failed[*]} (findings above)" >&2
  exit 1
fi
echo "lint: all checks passed"
