#!/usr/bin/env bash
# node-extra-up.sh — starts worker node $NODE's containerd and kubelet. Runs INSIDE the namespace
# node-extra.sh makes (call that, not this), where /var/lib/kubelet, /run/containerd and
# /var/lib/stowage/local are already this node's own directories. Settings follow node-up.sh's
# (see the reasons there); what differs is per node: paths, pod CIDR, ports, cgroup root, identity.
# Env: NODE (2, 3, ...), NODE_NAME.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
# shellcheck disable=SC1091 # written by node-up.sh: STOWAGE_HOST_IP
. "$CLUSTER_DIR/cluster.env"
dir=$CLUSTER_DIR/data/node-$NODE conf=$CLUSTER_DIR/data/node-$NODE/conf logs=$CLUSTER_DIR/logs/node-$NODE
pki=$CLUSTER_DIR/pki
mkdir -p "$dir/pids" # not run/: that is the bind source of /run/containerd
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$CLUSTER_DIR/kubeconfig" "$@"; }

cat >"$conf/containerd.toml" <<EOF
version = 2
root = "$dir/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10.1"
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$conf/cni"
EOF
# Its own bridge cni<I-1> and /24 (the bridge plugin allows one gateway address per bridge); the
# host routes between the nodes' bridges as between machines.
cat >"$conf/cni/10-stowage.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "stowage", "plugins": [{
  "type": "bridge", "bridge": "cni$((NODE - 1))", "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": "$dir/cni-ipam",
           "ranges": [[{"subnet": "10.244.$((NODE - 1)).0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
start_daemon containerd "$dir/pids" "$logs" containerd --config "$conf/containerd.toml"
wait_for "node $NODE containerd" 30 ctr version
"$here/images.sh" import

# Node 1 serves on 10250 (healthz 10248); node I on 10250 + 10*(I-1) (healthz 10248 + 10*(I-1)).
port=$((10250 + 10 * (NODE - 1))) healthz=$((10248 + 10 * (NODE - 1)))
cat >"$conf/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$pki/kubelet-$NODE.crt"
tlsPrivateKeyFile: "$pki/kubelet-$NODE.key"
port: $port
healthzPort: $healthz
cgroupRoot: /stowage-node-$NODE
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: "$logs/pods"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
volumeStatsAggPeriod: 10s
EOF
start_daemon kubelet "$dir/pids" "$logs" "$K8S_BIN/kubelet" --config="$conf/kubelet.yaml" \
  --kubeconfig="$pki/kubelet-$NODE.kubeconfig" --hostname-override="$NODE_NAME" \
  --node-ip="$STOWAGE_HOST_IP" --v=2
wait_for "node $NODE_NAME registered" 90 kubectl get node "$NODE_NAME"
wait_for "node $NODE_NAME Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
