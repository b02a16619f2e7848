#!/usr/bin/env bash
# build-binaries.sh — builds the Kubernetes binaries (and helm, e2e.test, agnhost, csi-attacher,
# snapshot-controller) the test cluster runs, from the Go module proxy, into a cache keyed by version so
# a second run skips them.
#   usage: build-binaries.sh [k8s] [helm] [e2e] [attacher] [snapshot]      (default: all)
#     k8s       kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy
#     helm      helm                     (make deps builds k8s and helm: every tier but e2e)
#     e2e       e2e.test agnhost         (make deps-e2e adds e2e and attacher)
#     attacher  csi-attacher             (only for charts with csiDriver.attachRequired: true)
#     snapshot  snapshot-controller      (the chart's snapshots.controller.enabled, on by default)
# Output: $STOWAGE_CACHE/k8s-v1.34.4/bin/; binaries that exist are not rebuilt.
# Cold on a fresh 2-core machine, built one command at a time (before the kube commands shared one
# go build): k8s ~6 min (kube-apiserver 225 s, the others 7-68 s each on its compiled packages),
# helm 88 s, e2e.test 140 s, agnhost 5 s, csi-attacher 164 s; ~13 min in all, plus downloads.
# snapshot-controller: 155 s (2026-12-03, warm module cache, other builds running alongside).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.34.4
HELM_VERSION=v3.22.0
ATTACHER_VERSION=v4.13.0
SNAPSHOTTER_VERSION=v8.7.0
cache=${STOWAGE_CACHE:-$HOME/.cache/stowage}/k8s-$K8S_VERSION
bin=$cache/bin
mkdir -p "$bin"
export CGO_ENABLED=0

# Without these -X flags /version says v0.0.0 and Helm's kubeVersion checks fail.
ldflags="-s -w"
for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags="$ldflags -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=34 -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z"
done

timed() { local name=$1; shift; local s=$SECONDS; "$@"; echo "built $name in $((SECONDS - s))s"; }

# The kube commands that are missing, in one go build: they share most packages, and one build
# graph keeps both cores busy (compiling one command while linking another) where separate builds
# would load, check and link one at a time. Built into a scratch directory, then moved, so an
# interrupted build never leaves a partial binary that the next run would skip.
build_k8s() {
  local c pkgs=() names=()
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy; do
    [ -x "$bin/$c" ] || { names+=("$c"); pkgs+=("k8s.io/kubernetes/cmd/$c"); }
  done
  [ ${#pkgs[@]} -gt 0 ] || return 0
  cd "$here/wrap"
  [ -f go.sum ] || go mod tidy
  scratch=$(mktemp -d "$bin/.k8s.XXXXXX")
  trap 'rm -rf "$scratch"' EXIT
  timed "${names[*]}" go build -trimpath -ldflags "$ldflags" -o "$scratch/" "${pkgs[@]}"
  for c in "${names[@]}"; do mv "$scratch/$c" "$bin/$c"; done
}

build_helm() {
  [ -x "$bin/helm" ] && return 0
  timed helm env GOBIN="$bin" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

build_e2e() {
  cd "$here/wrap-e2e"
  [ -f go.sum ] || go mod tidy
  if [ ! -x "$bin/e2e.test" ]; then
    timed e2e.test go test -c -trimpath -ldflags "$ldflags" -o "$bin/e2e.test.tmp" k8s.io/kubernetes/test/e2e
    mv "$bin/e2e.test.tmp" "$bin/e2e.test"
  fi
  if [ ! -x "$bin/agnhost" ]; then
    timed agnhost go build -trimpath -ldflags "-s -w" -o "$bin/agnhost.tmp" k8s.io/kubernetes/test/images/agnhost
    mv "$bin/agnhost.tmp" "$bin/agnhost"
  fi
}

# `go install ...@version` refuses external-attacher: its go.mod has replace directives. They only
# pin the versions it already requires, so building inside the downloaded module (which ships its
# go.sum) gives exactly the released binary.
build_attacher() {
  [ -x "$bin/csi-attacher" ] && return 0
  local mod=github.com/kubernetes-csi/external-attacher/v4 dir
  dir=$(cd / && go mod download -json "$mod@$ATTACHER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "could not download $mod@$ATTACHER_VERSION" >&2; return 1; }
  cd "$dir"
  timed csi-attacher go build -trimpath -ldflags "-s -w -X main.version=$ATTACHER_VERSION" \
    -o "$bin/csi-attacher.tmp" ./cmd/csi-attacher
  mv "$bin/csi-attacher.tmp" "$bin/csi-attacher"
}

# external-snapshotter cannot be built in its downloaded module as external-attacher is: its go.mod
# replaces client/v8 with ./client, a directory the module zip leaves out. wrap-snapshot requires both
# modules at the same release (its go.sum pins every dependency), so the build needs no network but
# the module proxy and gives the released code.
build_snapshot() {
  [ -x "$bin/snapshot-controller" ] && return 0
  cd "$here/wrap-snapshot"
  timed snapshot-controller go build -trimpath -ldflags "-s -w -X main.version=$SNAPSHOTTER_VERSION" \
    -o "$bin/snapshot-controller.tmp" github.com/kubernetes-csi/external-snapshotter/v8/cmd/snapshot-controller
  mv "$bin/snapshot-controller.tmp" "$bin/snapshot-controller"
}

targets=${*:-k8s helm e2e attacher snapshot}
for t in $targets; do "build_$t"; done
echo "binaries in $bin"
