#!/usr/bin/env bash
# install-deps.sh — the Debian packages the test cluster and the tests need. Idempotent and quiet:
# installs only what is missing, so a second run costs one dpkg query.
set -euo pipefail

pkgs=(
  etcd-server containerd runc containernetworking-plugins   # control plane + container runtime + bridge CNI
  iptables conntrack                                        # kube-proxy and the CNI masquerade rules
  openssl jq curl socat util-linux iproute2                 # PKI, OCI image archives, health checks, nsenter/unshare
  busybox-static                                            # the static busybox image
  nfs-ganesha nfs-ganesha-vfs rpcbind nfs-common libnfs-utils  # the test NFS server (test/nfs), nfs-ls/nfs-cp
  xfsprogs e2fsprogs user-mode-linux kmod                   # project quotas for local volumes (tested under UML; insmod in the guest)
  gettext-base make git                                     # envsubst for the examples; make; git (version, lint's file list)
  procps                                                    # pgrep, sysctl (cluster and NFS scripts)
  shellcheck                                                # make lint (hack/lint.sh)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Package lists may be absent on a fresh machine; one update is enough.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
# Debian starts these as services where an init system exists; the cluster runs its own copies.
for svc in containerd etcd nfs-ganesha rpcbind; do
  if command -v systemctl >/dev/null; then systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
done
echo "install-deps: done"
