#!/usr/bin/env bash
# oci-archive.sh ROOTFS OUT.tar ENTRYPOINT_JSON CMD_JSON REF...
# Packs directory ROOTFS into a one-layer OCI image archive (an OCI layout in a tar) that
# `ctr -n k8s.io images import` accepts, named by every REF. No Docker, no registry.
# The layer is stored uncompressed: archives stay local, and import then has nothing to inflate.
# Byte-for-byte reproducible (sorted entries, zero mtimes, root owner), so equal inputs give equal
# digests. Prints the manifest digest.
set -euo pipefail
rootfs=$1 out=$2 entrypoint=$3 cmd=$4
shift 4
[ $# -ge 1 ] || { echo "usage: $0 ROOTFS OUT.tar ENTRYPOINT_JSON CMD_JSON REF..." >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
blobs=$work/blobs/sha256
mkdir -p "$blobs"

# add_blob FILE — move FILE into the blob store; prints "DIGEST SIZE".
add_blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$blobs/$digest"
  echo "sha256:$digest $size"
}

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/layer" .
read -r layer layer_size < <(add_blob "$work/layer")

jq -cn --argjson ep "$entrypoint" --argjson cmd "$cmd" --arg layer "$layer" '{
  architecture: "amd64", os: "linux",
  config: {Entrypoint: $ep, Cmd: $cmd, WorkingDir: "/",
           Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
  rootfs: {type: "layers", diff_ids: [$layer]},
  history: [{created_by: "stowage test/cluster/oci-archive.sh"}]
}' >"$work/config"
read -r config config_size < <(add_blob "$work/config")

# The layer is uncompressed, so its digest is also its diff ID.
jq -cn --arg config "$config" --argjson config_size "$config_size" \
  --arg layer "$layer" --argjson layer_size "$layer_size" '{
  schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $config, size: $config_size},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $layer, size: $layer_size}]
}' >"$work/manifest"
read -r manifest manifest_size < <(add_blob "$work/manifest")

# One index entry per name: containerd creates one image per io.containerd.image.name.
printf '%s\n' "$@" | jq -R . | jq -cs --arg m "$manifest" --argjson ms "$manifest_size" '{
  schemaVersion: 2,
  manifests: [.[] | {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
                     platform: {architecture: "amd64", os: "linux"},
                     annotations: {"io.containerd.image.name": ., "org.opencontainers.image.ref.name": (. | sub(".*:"; ""))}}]
}' >"$work/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"

tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$work" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "$manifest"
