#!/usr/bin/env bash
# check.sh — checks the Helm chart without a cluster:
#   1. helm lint --strict, with the default values and with every value set in values/
#   2. helm template with the defaults and every value set in values/ (must render)
#   3. helm template with every value set in bad/ (must FAIL, with the message in its "# expect:" line)
#   4. deploy/stowage.yaml must equal a fresh render (deploy/generate.sh)
#   5. go test ./test/chart/: every rendered object decodes strictly into its Kubernetes type, and the
#      objects keep the project's contracts (skipped when go is not installed)
# usage: test/chart/check.sh        helm: $HELM, else ~/.cache/stowage/k8s-v1.34.4/bin/helm, else PATH
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
chart=$root/charts/stowage
HELM=${HELM:-$HOME/.cache/stowage/k8s-v1.34.4/bin/helm}
[ -x "$HELM" ] || HELM=$(command -v helm) || { echo "check.sh: helm not found; set HELM" >&2; exit 1; }
export HELM
# Helm built without its release ldflags assumes Kubernetes v1.20 offline; the chart needs >= 1.29.
kube=(--kube-version 1.34.4)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }

# 1 + 2: lint and render the good value sets.
for values in "" "$here"/values/*.yaml; do
  name=${values:+$(basename "$values")}
  name=${name:-defaults}
  args=(); [ -n "$values" ] && args=(-f "$values")
  if "$HELM" lint --strict "${kube[@]}" "$chart" "${args[@]}" >"$tmp/lint" 2>&1; then
    pass "lint $name"
  else
    fail "lint $name"; sed 's/^/      /' "$tmp/lint"
  fi
  if "$HELM" template stowage "$chart" -n stowage "${kube[@]}" "${args[@]}" >"$tmp/out" 2>"$tmp/err"; then
    pass "template $name ($(grep -c '^kind:' "$tmp/out") objects)"
  else
    fail "template $name"; sed 's/^/      /' "$tmp/err"
  fi
done

# 3: bad value sets must be refused, for the reason their first line names.
for values in "$here"/bad/*.yaml; do
  name=$(basename "$values")
  expect=$(sed -n '1s/^# expect: //p' "$values")
  if [ -z "$expect" ]; then
    fail "bad/$name has no '# expect: <message>' first line"; continue
  fi
  if "$HELM" template stowage "$chart" -n stowage "${kube[@]}" -f "$values" >"$tmp/out" 2>"$tmp/err"; then
    fail "bad/$name rendered, but must be refused ($expect)"
  elif grep -qF -- "$expect" "$tmp/err"; then
    pass "bad/$name refused: $(grep -F -m1 -- "$expect" "$tmp/err" | sed 's/^[[:space:]-]*//' | cut -c1-110)"
  else
    fail "bad/$name refused, but not for '$expect':"; sed 's/^/      /' "$tmp/err"
  fi
done

# 4: the plain manifests must be what the chart renders now.
if "$root/deploy/generate.sh" - >"$tmp/deploy.yaml" 2>"$tmp/err"; then
  if diff -u "$root/deploy/stowage.yaml" "$tmp/deploy.yaml" >"$tmp/diff"; then
    pass "deploy/stowage.yaml is up to date"
  else
    fail "deploy/stowage.yaml is stale; run deploy/generate.sh"; head -40 "$tmp/diff" | sed 's/^/      /'
  fi
else
  fail "deploy/generate.sh"; sed 's/^/      /' "$tmp/err"
fi

# 5: strict decoding and contract checks.
if command -v go >/dev/null; then
  if (cd "$root" && go test -count=1 ./test/chart/) >"$tmp/go" 2>&1; then
    pass "go test ./test/chart/"
  else
    fail "go test ./test/chart/"; sed 's/^/      /' "$tmp/go"
  fi
else
  echo "skip  go test ./test/chart/ (go not installed)"
fi

if [ "$failures" -gt 0 ]; then
  echo "check.sh: $failures check(s) failed" >&2
  exit 1
fi
echo "check.sh: all chart checks passed"
