#!/usr/bin/env bash
# images.sh [build|import|all] — the container images the test cluster runs, built without Docker
# into $STOWAGE_CACHE/images/*.tar and imported into containerd's k8s.io namespace.
#   build   pack the archives whose inputs changed (the cache key is a hash of every input file,
#           the image names and this recipe)
#   import  load the archives into the running containerd (skips names that already point at
#           the same manifest)
#   all     both; the default. import is skipped when containerd is not running.
# Images:
#   registry.k8s.io/pause:3.10.1                 test/cluster/pause (the pod sandbox)
#   docker.io/library/busybox:1.37 + e2e names   Debian's static busybox
#   registry.k8s.io/e2e-test-images/agnhost:2.56 the agnhost built by build-binaries.sh
#   localhost/csi-attacher:v4.13.0               built by build-binaries.sh
#   localhost/snapshot-controller:v8.7.0         built by build-binaries.sh
#   localhost/local-path-provisioner:v0.0.37     built by test/bench/peers/build.sh localpath (a bench
#                                                peer; its helper pods use the busybox above)
#   localhost/stowage:dev                        bin/stowage + util-linux mount + the test mount.nfs
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
mode=${1:-all}
mkdir -p "$IMAGE_CACHE"
recipe=$(cat "$here/images.sh" "$here/oci-archive.sh" | sha256sum | cut -d' ' -f1)

# The e2e storage tests only need "a shell and coreutils" from these; busybox stands in for all.
E2E_BUSYBOX_NAMES=(
  registry.k8s.io/e2e-test-images/busybox:1.37.0-1
  registry.k8s.io/e2e-test-images/nginx:1.14-4 registry.k8s.io/e2e-test-images/nginx:1.15-4
  registry.k8s.io/e2e-test-images/httpd:2.4.38-4 registry.k8s.io/e2e-test-images/httpd:2.4.39-4
  registry.k8s.io/e2e-test-images/jessie-dnsutils:1.7
)

# image NAME ENTRYPOINT CMD "REF..." FILL_FUNCTION INPUT_FILE...
# Rebuilds $IMAGE_CACHE/NAME.tar only when the key over the inputs differs from NAME.key.
image() {
  local name=$1 ep=$2 cmd=$3 refs=$4 fill=$5; shift 5
  local key rootfs
  key=$( { echo "$recipe $ep $cmd $refs"; sha256sum "$@"; } | sha256sum | cut -d' ' -f1)
  if [ -f "$IMAGE_CACHE/$name.tar" ] && [ "$(cat "$IMAGE_CACHE/$name.key" 2>/dev/null)" = "$key" ]; then
    log "image $name: up to date"
    return 0
  fi
  rootfs=$(mktemp -d)
  chmod 0755 "$rootfs"  # mktemp makes it 0700, and the layer root becomes the container's /
  "$fill" "$rootfs"
  # shellcheck disable=SC2086 # refs is a list of words
  "$here/oci-archive.sh" "$rootfs" "$IMAGE_CACHE/$name.tar" "$ep" "$cmd" $refs >"$IMAGE_CACHE/$name.digest"
  rm -rf "$rootfs"
  echo "$key" >"$IMAGE_CACHE/$name.key"
  echo "$refs" >"$IMAGE_CACHE/$name.refs"
  log "image $name: built ($(du -h "$IMAGE_CACHE/$name.tar" | cut -f1)) as $refs"
}

# base_rootfs DIR [SKIP_APPLETS] — static busybox with its applets, the files a shell expects.
base_rootfs() {
  local d=$1 skip=" ${2:-} " a
  mkdir -p "$d"/{bin,etc,tmp,proc,sys,dev,root}
  chmod 1777 "$d/tmp"
  cp /bin/busybox "$d/bin/busybox"
  for a in $("$d/bin/busybox" --list); do
    [ "$a" = busybox ] || [[ $skip == *" $a "* ]] || ln -s busybox "$d/bin/$a"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$d/etc/passwd"
  echo 'root:x:0:' >"$d/etc/group"
  ln -s /proc/self/mounts "$d/etc/mtab"
}

fill_pause() { cp "$IMAGE_CACHE/pause" "$1/pause"; }
fill_busybox() { base_rootfs "$1"; }
fill_agnhost() { base_rootfs "$1"; cp "$K8S_BIN/agnhost" "$1/agnhost"; }
fill_attacher() { cp "$K8S_BIN/csi-attacher" "$1/csi-attacher"; }
fill_snapshot_controller() { cp "$K8S_BIN/snapshot-controller" "$1/snapshot-controller"; }
LOCAL_PATH_BIN=$STOWAGE_CACHE/peers/local-path-provisioner-v0.0.37/local-path-provisioner
fill_local_path() { cp "$LOCAL_PATH_BIN" "$1/local-path-provisioner"; }

# Host tools copied into the stowage image with the shared libraries ldd names for them.
STOWAGE_HOST_TOOLS=(/usr/bin/mount /usr/bin/umount /usr/bin/findmnt)
fill_stowage() {
  local d=$1 f lib
  # util-linux's mount/umount, not busybox's: mount-utils relies on mount(8) running /sbin/mount.<type>.
  base_rootfs "$d" "mount umount"
  mkdir -p "$d/usr/bin" "$d/usr/local/bin" "$d/sbin" "$d/usr/sbin"
  cp "$REPO_ROOT/bin/stowage" "$d/stowage"
  ln -s /stowage "$d/usr/local/bin/stowage"
  for f in "${STOWAGE_HOST_TOOLS[@]}"; do
    cp "$f" "$d/usr/bin/"
    for lib in $(ldd "$f" | grep -o '/[^ ]*'); do
      mkdir -p "$d$(dirname "$lib")"
      cp -L "$lib" "$d$lib"
    done
  done
  # TEST IMAGE ONLY: the kernel here has no NFS client, so mount.nfs is test/nfs's stand-in that
  # bind-mounts the export's backing directory. The production Dockerfile installs Debian's
  # nfs-common (the real mount.nfs) instead.
  if [ -f "$REPO_ROOT/test/nfs/mount.nfs" ]; then
    install -m 0755 "$REPO_ROOT/test/nfs/mount.nfs" "$d/sbin/mount.nfs"
    install -m 0755 "$REPO_ROOT/test/nfs/mount.nfs" "$d/usr/sbin/mount.nfs"
    ln -s mount.nfs "$d/sbin/mount.nfs4"  # `mount -t nfs4` runs mount.nfs4
    ln -s mount.nfs "$d/usr/sbin/mount.nfs4"
  else
    log "WARNING: test/nfs/mount.nfs is missing: localhost/stowage:dev cannot mount NFS volumes"
  fi
}

build_pause() {
  local src=$here/pause key
  key=$( { go version; cat "$src/go.mod" "$src/main.go"; } | sha256sum | cut -d' ' -f1)
  [ -x "$IMAGE_CACHE/pause" ] && [ "$(cat "$IMAGE_CACHE/pause.bin.key" 2>/dev/null)" = "$key" ] && return 0
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$IMAGE_CACHE/pause" .)
  echo "$key" >"$IMAGE_CACHE/pause.bin.key"
}

build() {
  build_pause
  image pause '["/pause"]' null registry.k8s.io/pause:3.10.1 fill_pause "$IMAGE_CACHE/pause"
  image busybox null '["sh"]' "docker.io/library/busybox:1.37 ${E2E_BUSYBOX_NAMES[*]}" fill_busybox /bin/busybox

  if [ -x "$K8S_BIN/agnhost" ]; then
    image agnhost '["/agnhost"]' '["pause"]' registry.k8s.io/e2e-test-images/agnhost:2.56 \
      fill_agnhost /bin/busybox "$K8S_BIN/agnhost"
  else
    log "image agnhost: skipped, $K8S_BIN/agnhost not built yet (build-binaries.sh e2e)"
  fi
  if [ -x "$K8S_BIN/csi-attacher" ]; then
    image csi-attacher '["/csi-attacher"]' null localhost/csi-attacher:v4.13.0 fill_attacher "$K8S_BIN/csi-attacher"
  else
    log "image csi-attacher: skipped, $K8S_BIN/csi-attacher not built yet (build-binaries.sh attacher)"
  fi

  if [ -x "$K8S_BIN/snapshot-controller" ]; then
    image snapshot-controller '["/snapshot-controller"]' null localhost/snapshot-controller:v8.7.0 \
      fill_snapshot_controller "$K8S_BIN/snapshot-controller"
  else
    log "image snapshot-controller: skipped, $K8S_BIN/snapshot-controller not built yet (build-binaries.sh snapshot)"
  fi

  # Only once the bench has built it: no other tier needs it.
  if [ -x "$LOCAL_PATH_BIN" ]; then
    image local-path-provisioner '["/local-path-provisioner"]' null localhost/local-path-provisioner:v0.0.37 \
      fill_local_path "$LOCAL_PATH_BIN"
  fi

  # Rebuild the binary from source when there is source, so the image never carries a stale one;
  # Go's build cache makes this a no-op when nothing changed.
  if compgen -G "$REPO_ROOT/cmd/stowage/*.go" >/dev/null; then
    (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o bin/stowage ./cmd/stowage)
  fi
  if [ -x "$REPO_ROOT/bin/stowage" ]; then
    local inputs=("$REPO_ROOT/bin/stowage" /bin/busybox "${STOWAGE_HOST_TOOLS[@]}")
    [ ! -f "$REPO_ROOT/test/nfs/mount.nfs" ] || inputs+=("$REPO_ROOT/test/nfs/mount.nfs")
    image stowage '["/stowage"]' null localhost/stowage:dev fill_stowage "${inputs[@]}"
  else
    log "image stowage: SKIPPED, bin/stowage does not exist (cmd/stowage not written yet?)"
  fi
}

import() {
  local tar name want ref have
  ctr version >/dev/null 2>&1 || die "containerd is not running (start the cluster with up.sh)"
  for tar in "$IMAGE_CACHE"/*.tar; do
    name=$(basename "$tar" .tar)
    want=$(cat "$IMAGE_CACHE/$name.digest")
    for ref in $(<"$IMAGE_CACHE/$name.refs"); do
      have=$(ctr -n k8s.io images ls "name==$ref" | awk 'NR == 2 {print $3}')
      [ "$have" = "$want" ] || { ctr -n k8s.io images import "$tar" >/dev/null; log "image $name: imported"; break; }
    done
  done
}

case $mode in
  build) build ;;
  import) import ;;
  all) build; if ctr version >/dev/null 2>&1; then import; else log "containerd not running: not imported"; fi ;;
  *) die "usage: $0 [build|import|all]" ;;
esac
