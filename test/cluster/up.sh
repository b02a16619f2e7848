#!/usr/bin/env bash
# up.sh — bring up a real single-node Kubernetes cluster for the e2e tests and print its KUBECONFIG.
# The whole node runs inside a private PID+mount namespace whose PID 1 is our pause program:
#   - e2e "hostexec" pods nsenter into PID 1's mount namespace, and on this VM even root may not
#     open the real /proc/1/ns/mnt; inside, PID 1 is ours;
#   - every mount the node makes (pod volumes, container rootfs, netns) lives in that namespace
#     and disappears with it, and down.sh stops everything with one signal.
# State: $STOWAGE_CLUSTER_DIR (default /tmp/stowage-cluster). Already up: prints the path, exits 0.
# Env: STOWAGE_NODES=N (default 1) adds worker nodes 2..N (node-extra.sh); already up, it is not
#      checked: down.sh first to change the count.
#      STOWAGE_KEEP_ON_FAIL=1 leaves a half-started cluster running for inspection.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
run=$CLUSTER_DIR/run

if init=$(cat "$run/init.pid" 2>/dev/null) && kill -0 "$init" 2>/dev/null; then
  "$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" get --raw /readyz >/dev/null 2>&1 ||
    die "the cluster in $CLUSTER_DIR is running but its apiserver is not ready: see $CLUSTER_DIR/logs, or run down.sh"
  have=$(($(grep -c '^STOWAGE_NODE_[0-9]*_NAME=' "$CLUSTER_DIR/cluster.env" 2>/dev/null || true) + 1))
  [ "$have" = "${STOWAGE_NODES:-1}" ] ||
    die "the cluster in $CLUSTER_DIR is up with $have node(s), not STOWAGE_NODES=${STOWAGE_NODES:-1}: run down.sh first"
  log "already up"
  echo "$CLUSTER_DIR/kubeconfig"
  exit 0
fi

need_bins kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy
for c in etcd containerd runc unshare nsenter iptables conntrack jq openssl; do
  command -v "$c" >/dev/null || die "$c is missing: run test/cluster/install-deps.sh"
done
"$here/images.sh" build

# Whatever a crashed run left behind (iptables chains, cni0, cgroups, state) goes first.
"$here/down.sh" --quiet
rm -rf "$CLUSTER_DIR/logs.prev"
[ ! -d "$CLUSTER_DIR/logs" ] || mv "$CLUSTER_DIR/logs" "$CLUSTER_DIR/logs.prev"
mkdir -p "$run" "$CLUSTER_DIR/logs"
export NODE_NAME=${NODE_NAME:-$(hostname)} HOST_IP=${HOST_IP:-$(host_ip)}
NODE_NAME=$NODE_NAME HOST_IP=$HOST_IP "$here/pki.sh" "$CLUSTER_DIR/pki" >/dev/null
# The kubelet and kube-proxy change these host-wide; down.sh puts them back.
sysctl -e net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables \
  vm.overcommit_memory kernel.panic kernel.panic_on_oops 2>/dev/null >"$CLUSTER_DIR/sysctl.orig" || true

# The namespace: PID 1 is bash until node-up.sh is done, then execs pause, which reaps orphans
# and ends the namespace on SIGTERM. --propagation private keeps every mount made inside from
# reaching the host; making / rshared again inside gives the node the usual systemd-host setup.
log "starting the node in a private PID+mount namespace (log: $CLUSTER_DIR/logs/up.log)"
# shellcheck disable=SC2016 # $0..$2 expand in the inner bash
nohup unshare --pid --fork --mount-proc --propagation private bash -c '
  mount --make-rshared / && "$0/node-up.sh"; echo $? >"$1/up.rc"; exec "$2"' \
  "$here" "$run" "$IMAGE_CACHE/pause" >"$CLUSTER_DIR/logs/up.log" 2>&1 </dev/null &
echo $! >"$run/unshare.pid"
wait_for "namespace init" 10 pgrep -P "$(cat "$run/unshare.pid")"
init=$(pgrep -P "$(cat "$run/unshare.pid")")
echo "$init" >"$run/init.pid"
readlink "/proc/$init/ns/pid" >"$run/pidns"

# Five minutes from here: the images built above may already have taken longer on a busy machine.
node_start=$SECONDS
until [ -f "$run/up.rc" ]; do
  kill -0 "$init" 2>/dev/null || break
  [ $((SECONDS - node_start)) -lt 300 ] || break
  sleep 0.5
done
if [ "$(cat "$run/up.rc" 2>/dev/null)" != 0 ]; then
  tail -n 20 "$CLUSTER_DIR/logs/up.log" >&2
  [ "${STOWAGE_KEEP_ON_FAIL:-}" = 1 ] || "$here/down.sh"
  die "the cluster did not come up; logs in $CLUSTER_DIR/logs"
fi
cat "$CLUSTER_DIR/logs/up.log" >&2
# STOWAGE_NODES=N: workers 2..N, each a kubelet with its own containerd (node-extra.sh).
nodes=${STOWAGE_NODES:-1}
for ((i = 2; i <= nodes; i++)); do
  "$here/node-extra.sh" "$i" || { [ "${STOWAGE_KEEP_ON_FAIL:-}" = 1 ] || "$here/down.sh"; exit 1; }
done
log "cluster up: node $NODE_NAME ($HOST_IP)$([ "$nodes" = 1 ] || echo " and $((nodes - 1)) more"); source test/cluster/env.sh, or:"
echo "$CLUSTER_DIR/kubeconfig"
