#!/usr/bin/env bash
# node-extra.sh I — add worker node I (2, 3, ...) to the running test cluster; up.sh calls it for
# STOWAGE_NODES > 1. Runs on the host. The node is a kubelet with its own containerd, named
# <node 1's name>-I, in its own PID+mount namespace nested in node 1's, so that down.sh's one signal
# to node 1's init ends it too. Inside, three bind mounts make it look like a machine of its own:
#   /var/lib/kubelet        <- $CLUSTER_DIR/data/node-I/kubelet
#   /run/containerd         <- $CLUSTER_DIR/data/node-I/run     (socket: .../run/containerd.sock)
#   /var/lib/stowage/local  <- $CLUSTER_DIR/data/node-I/local   (the chart's node.localBasePath)
# so the chart's hostPaths, which are the same for every node of a DaemonSet, reach each node's own
# directories. What the nodes share, as machines on one network would: the host network namespace
# (bridge cni<I-1> and pod CIDR 10.244.<I-1>.0/24 per node, routed by the host; node 1's kube-proxy
# serves every node's pods), the NFS share, and the IP (each kubelet serves on its own port,
# 10250 + 10*(I-1)).
# Its pods' cgroups live under /stowage-node-I (kubelet cgroupRoot), not under node 1's /kubepods.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
i=${1:?usage: node-extra.sh NODE_NUMBER (2 or more)}
[ "$i" -ge 2 ] 2>/dev/null || die "node number '$i': node 1 is up.sh's own; give 2 or more"
run=$CLUSTER_DIR/run
init=$(cat "$run/init.pid" 2>/dev/null || true)
if [ -z "$init" ] || ! kill -0 "$init" 2>/dev/null; then die "node 1 is not up: run up.sh"; fi
# shellcheck disable=SC1091 # written by node-up.sh: STOWAGE_NODE_NAME, STOWAGE_HOST_IP
. "$CLUSTER_DIR/cluster.env"
name=$STOWAGE_NODE_NAME-$i
dir=$CLUSTER_DIR/data/node-$i
pki=$CLUSTER_DIR/pki
mkdir -p "$dir"/{kubelet,run,local,containerd,cni-ipam,conf/cni} "$CLUSTER_DIR/logs/node-$i/pods"

# The kubelet's identity: the Node authorizer and NodeRestriction let system:node:<name> write only
# its own Node, so every node needs its own client certificate.
# cert FILE SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES], signed by the cluster's CA (as pki.sh does).
cert() {
  [ -f "$pki/$1.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/$1.key" 2>/dev/null
  openssl req -new -key "$pki/$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 -out "$pki/$1.crt" \
      -extfile <(echo "keyUsage=critical,digitalSignature,keyEncipherment"; echo "extendedKeyUsage=$3"
        [ -z "${4:-}" ] || echo "subjectAltName=$4") 2>/dev/null
  rm -f "$pki/ca.srl"
}
cert "kubelet-client-$i" "/CN=system:node:$name/O=system:nodes" clientAuth
cert "kubelet-$i" "/CN=$name" serverAuth "DNS:$name,DNS:localhost,IP:127.0.0.1,IP:$STOWAGE_HOST_IP"
PKI=$pki write_kubeconfig "$pki/kubelet-$i.kubeconfig" 6443 "kubelet-client-$i"

# The kubelet insists that its cgroupRoot exists; a new cpuset cgroup has no CPUs until given some.
for h in /sys/fs/cgroup/*/; do
  [ -L "${h%/}" ] || mkdir -p "$h/stowage-node-$i"
done
cp /sys/fs/cgroup/cpuset/cpuset.cpus "/sys/fs/cgroup/cpuset/stowage-node-$i/cpuset.cpus"
cp /sys/fs/cgroup/cpuset/cpuset.mems "/sys/fs/cgroup/cpuset/stowage-node-$i/cpuset.mems"

rm -f "$run/node-$i.rc"
log "starting node $name (log: $CLUSTER_DIR/logs/node-$i/up.log)"
# Mounts copied from node 1's namespace are dropped first (they are node 1's pods and containers),
# then / is made rshared again in fresh peer groups of this namespace only.
# shellcheck disable=SC2016 # $0..$5 expand in the inner bash
nohup nsenter --target "$init" --mount --pid -- unshare --pid --fork --mount-proc --propagation private bash -c '
  set -e
  for m in /var/lib/kubelet /run/containerd /var/lib/stowage/local; do
    umount -R -l "$m" 2>/dev/null || true; mkdir -p "$m"
  done
  mount --make-rshared /
  mount --bind "$1/kubelet" /var/lib/kubelet
  mount --bind "$1/run" /run/containerd
  mount --bind "$1/local" /var/lib/stowage/local
  if NODE=$2 NODE_NAME=$3 "$0/node-extra-up.sh"; then echo 0 >"$4"; else echo $? >"$4"; fi
  exec "$5"' \
  "$here" "$dir" "$i" "$name" "$run/node-$i.rc" "$IMAGE_CACHE/pause" \
  >"$CLUSTER_DIR/logs/node-$i/up.log" 2>&1 </dev/null &
echo $! >"$run/node-$i.nsenter.pid"

start=$SECONDS
until [ -f "$run/node-$i.rc" ]; do
  kill -0 "$(cat "$run/node-$i.nsenter.pid")" 2>/dev/null || break
  [ $((SECONDS - start)) -lt 300 ] || break
  sleep 0.5
done
if [ "$(cat "$run/node-$i.rc" 2>/dev/null)" != 0 ]; then
  tail -n 20 "$CLUSTER_DIR/logs/node-$i/up.log" >&2
  die "node $name did not come up; logs in $CLUSTER_DIR/logs/node-$i"
fi
# For env.sh: every node's name, and the socket images.sh imports into (CONTAINERD_ADDRESS).
echo "STOWAGE_NODE_${i}_NAME=$name" >>"$CLUSTER_DIR/cluster.env"
echo "STOWAGE_NODE_${i}_CONTAINERD=$dir/run/containerd.sock" >>"$CLUSTER_DIR/cluster.env"
log "node $name up"
