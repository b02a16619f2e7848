#!/usr/bin/env bash
# test/bench/peers/build.sh — builds the drivers the benchmarks measure Stowage against, into a cache
# keyed by version (as test/cluster/build-binaries.sh does for Kubernetes), so a second run skips them.
#   usage: build.sh [nfs] [provisioner] [localpath]   (default: nfs provisioner, the bulk part's peers)
#          build.sh --print                           print the binaries' paths (VAR=path lines), build nothing
# Output: $STOWAGE_CACHE/peers/external-provisioner-v6.4.0/csi-provisioner
#         $STOWAGE_CACHE/peers/csi-driver-nfs-v4.13.4/nfsplugin
#         $STOWAGE_CACHE/peers/local-path-provisioner-v0.0.37/local-path-provisioner (the pods part's peer;
#         test/cluster/images.sh packs it as localhost/local-path-provisioner:v0.0.37)
# Exit status 3: the csi-driver-nfs source is missing (the message says how to get it).
#
# external-provisioner comes from the Go module proxy. csi-driver-nfs is not on the proxy (its module
# has no tagged go.mod releases there), so its source comes from a git directory: $CSI_DRIVER_NFS_GIT,
# by default the mirror the project's tooling fetches to /work/.mirror/kubernetes-csi+csi-driver-nfs/repo,
# or an unpacked tree of the release in $CSI_DRIVER_NFS_SRC. It ships vendor/, so it builds offline.
set -euo pipefail
PROVISIONER_VERSION=v6.4.0
NFS_DRIVER_VERSION=v4.13.4
LOCAL_PATH_VERSION=v0.0.37
# The h1: hash `go mod download` gave for local-path-provisioner v0.0.37 on 2026-12-03 (see
# build_localpath: the checksum database does not answer for it here, so the hash is pinned).
LOCAL_PATH_SUM=h1:xRGhYXH31HtfbYWA9Qe8zAqCmHuw4dDRZNrDlWe0OQg=
cache=${STOWAGE_CACHE:-$HOME/.cache/stowage}/peers
provisioner_bin=$cache/external-provisioner-$PROVISIONER_VERSION/csi-provisioner
nfsplugin_bin=$cache/csi-driver-nfs-$NFS_DRIVER_VERSION/nfsplugin
localpath_bin=$cache/local-path-provisioner-$LOCAL_PATH_VERSION/local-path-provisioner
nfs_git=${CSI_DRIVER_NFS_GIT:-/work/.mirror/kubernetes-csi+csi-driver-nfs/repo}
export CGO_ENABLED=0

if [ "${1:-}" = --print ]; then
  # Quoted for the shell: run.sh evals these lines.
  printf '%s=%q\n' PEER_PROVISIONER "$provisioner_bin" PEER_NFSPLUGIN "$nfsplugin_bin" \
    PEER_VERSIONS "external-provisioner $PROVISIONER_VERSION, csi-driver-nfs $NFS_DRIVER_VERSION" \
    PEER_LOCAL_PATH "$localpath_bin" PEER_LOCAL_PATH_VERSION "$LOCAL_PATH_VERSION"
  exit 0
fi

timed() { local name=$1; shift; local s=$SECONDS; "$@"; echo "built $name in $((SECONDS - s))s" >&2; }

# `go install ...@version` refuses external-provisioner: its go.mod has replace directives (they pin
# the k8s.io staging modules it already requires). Building inside the downloaded module, with the
# go.sum it ships, gives exactly the released binary.
build_provisioner() {
  [ -x "$provisioner_bin" ] && return 0
  local mod=github.com/kubernetes-csi/external-provisioner/v6 dir
  dir=$(cd / && go mod download -json "$mod@$PROVISIONER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "build.sh: could not download $mod@$PROVISIONER_VERSION from the Go module proxy" >&2; return 1; }
  mkdir -p "$(dirname "$provisioner_bin")"
  (cd "$dir" && timed csi-provisioner go build -trimpath -ldflags "-s -w -X main.version=$PROVISIONER_VERSION" \
    -o "$provisioner_bin.tmp" ./cmd/csi-provisioner)
  mv "$provisioner_bin.tmp" "$provisioner_bin"
}

build_nfs() {
  [ -x "$nfsplugin_bin" ] && return 0
  local src=${CSI_DRIVER_NFS_SRC:-}
  if [ -z "$src" ]; then
    if ! git --git-dir="$nfs_git" rev-parse --verify -q "$NFS_DRIVER_VERSION^{commit}" >/dev/null 2>&1; then
      cat >&2 <<EOF
build.sh: no csi-driver-nfs $NFS_DRIVER_VERSION source: $nfs_git is not a git directory holding that tag.
  It is not on the Go module proxy. Get it one of these ways, then run this script again:
    git clone --bare https://github.com/kubernetes-csi/csi-driver-nfs $nfs_git
    (or set CSI_DRIVER_NFS_GIT to any git directory with tag $NFS_DRIVER_VERSION,
     or CSI_DRIVER_NFS_SRC to an unpacked source tree of $NFS_DRIVER_VERSION)
EOF
      return 3
    fi
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/csi-driver-nfs.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    git --git-dir="$nfs_git" archive "$NFS_DRIVER_VERSION" | tar -x -C "$tmp"
    src=$tmp
  fi
  [ -d "$src/vendor" ] || { echo "build.sh: $src has no vendor/ directory; is it csi-driver-nfs $NFS_DRIVER_VERSION?" >&2; return 1; }
  mkdir -p "$(dirname "$nfsplugin_bin")"
  local pkg=github.com/kubernetes-csi/csi-driver-nfs/pkg/nfs
  (cd "$src" && timed nfsplugin go build -mod=vendor -trimpath \
    -ldflags "-s -w -X $pkg.driverVersion=$NFS_DRIVER_VERSION" -o "$nfsplugin_bin.tmp" ./cmd/nfsplugin)
  mv "$nfsplugin_bin.tmp" "$nfsplugin_bin"
}

# local-path-provisioner is on the Go module proxy, but sum.golang.org answers 404 for it from this
# machine, so `go mod download` refuses to verify it. It is downloaded with the checksum database
# off for this one module and its hash compared with the one pinned above instead; its dependencies
# are still checked against the go.sum it ships. `go install ...@version` works too, but building
# inside the module is the same path as external-provisioner's.
build_localpath() {
  [ -x "$localpath_bin" ] && return 0
  local mod=github.com/rancher/local-path-provisioner json dir sum
  json=$(cd / && GONOSUMDB=$mod go mod download -json "$mod@$LOCAL_PATH_VERSION") || true
  dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$json")
  sum=$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$json")
  [ -n "$dir" ] || { echo "build.sh: could not download $mod@$LOCAL_PATH_VERSION from the Go module proxy: $json" >&2; return 1; }
  if [ "$sum" != "$LOCAL_PATH_SUM" ]; then
    echo "build.sh: $mod@$LOCAL_PATH_VERSION has hash $sum, not the pinned $LOCAL_PATH_SUM; remove it with 'go clean -modcache' only if you trust the new one, then update LOCAL_PATH_SUM" >&2
    return 1
  fi
  mkdir -p "$(dirname "$localpath_bin")"
  (cd "$dir" && timed local-path-provisioner go build -trimpath -ldflags "-s -w -X main.VERSION=$LOCAL_PATH_VERSION" \
    -o "$localpath_bin.tmp" .)
  mv "$localpath_bin.tmp" "$localpath_bin"
}

# nfs first: without its source there is nothing to build the provisioner for.
targets=${*:-nfs provisioner}
for t in $targets; do
  case $t in
    provisioner | nfs | localpath) "build_$t" ;;
    *) echo "usage: $0 [nfs] [provisioner] [localpath] | --print" >&2; exit 2 ;;
  esac
done
echo "peers in $cache" >&2
