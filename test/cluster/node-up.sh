#!/usr/bin/env bash
# node-up.sh — starts the test node's daemons. Runs INSIDE the private PID+mount namespace that
# up.sh creates (call up.sh, not this): etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd+runc, kubelet, kube-proxy, and the test NFS server when test/nfs has one.
# Env from up.sh: NODE_NAME, HOST_IP. Each step waits on a health check.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
STATE=$CLUSTER_DIR PKI=$CLUSTER_DIR/pki ETCD_PORT=2379 API_PORT=6443 KCM_PORT=10257
conf=$STATE/conf
kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" "$@"; }
mkdir -p "$conf/cni" "$STATE/logs/pods" "$STATE/data"

start_etcd

# --- containerd, in parallel with the control plane ----------------------------------------------
# restrict_oom_score_adj: this VM lacks CAP_SYS_RESOURCE, and without it every sandbox fails with
#   runc "can't get final child's PID from pipe: EOF".
# root under the cluster dir: every up starts from an empty metadata store, so no sandbox of an
#   earlier cluster comes back; the images are re-imported (a second or two, layers are uncompressed).
cat >"$conf/containerd.toml" <<EOF
version = 2
root = "$STATE/data/containerd"
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
# A bridge with no masquerading: pods reach each other, services and this host, nothing beyond.
# IPAM state lives in the cluster dir so addresses of killed pods are not leaked across runs.
cat >"$conf/cni/10-stowage.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "stowage", "plugins": [{
  "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "dataDir": "$STATE/data/cni-ipam",
           "ranges": [[{"subnet": "10.244.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
start_daemon containerd "$STATE/run" "$STATE/logs" containerd --config "$conf/containerd.toml"

# --- control plane -----------------------------------------------------------------------------
write_kubeconfig "$STATE/kubeconfig" "$API_PORT" admin
for c in controller-manager scheduler kube-proxy; do write_kubeconfig "$PKI/$c.kubeconfig" "$API_PORT" "$c"; done
write_kubeconfig "$PKI/kubelet.kubeconfig" "$API_PORT" kubelet-client
wait_etcd
start_apiserver
wait_daemon containerd 30 ctr version
"$here/images.sh" import
wait_apiserver
start_controller_manager
start_daemon kube-scheduler "$STATE/run" "$STATE/logs" "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$PKI/scheduler.kubeconfig" --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
  --authorization-kubeconfig="$PKI/scheduler.kubeconfig" --bind-address=127.0.0.1 --leader-elect=false

# --- kubelet -------------------------------------------------------------------------------------
# failCgroupV1 + cgroupfs: the VM has cgroup v1 and no systemd.
# imageGC at 100%: images cannot be pulled again here, so the kubelet must never delete one.
# evictionHard near zero: a shared development disk must not evict test pods.
# The kubelet makes its root dir (/var/lib/kubelet) an rshared mount itself, which is what
# Bidirectional mount propagation for the CSI node plugin needs; / is rshared in this namespace too.
cat >"$conf/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: "$STATE/logs/pods"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
serializeImagePulls: false
# Volume usage (kubelet_volume_stats_*) every 10 s instead of every minute, so tests see it soon.
volumeStatsAggPeriod: 10s
EOF
mkdir -p /var/lib/kubelet
start_daemon kubelet "$STATE/run" "$STATE/logs" "$K8S_BIN/kubelet" --config="$conf/kubelet.yaml" \
  --kubeconfig="$PKI/kubelet.kubeconfig" --hostname-override="$NODE_NAME" --node-ip="$HOST_IP" --v=2

wait_controller_manager
wait_daemon kube-scheduler 60 curl -skf https://127.0.0.1:10259/healthz
wait_daemon kubelet 90 kubectl get node "$NODE_NAME"
wait_for "node $NODE_NAME Ready" 120 kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s

# --- kube-proxy: ClusterIP services, including kubernetes.default (10.96.0.1) for in-cluster clients
# conntrack.maxPerCore 0: leave the host's conntrack table size alone.
cat >"$conf/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$PKI/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: "$NODE_NAME"
conntrack: {maxPerCore: 0}
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
EOF
start_daemon kube-proxy "$STATE/run" "$STATE/logs" "$K8S_BIN/kube-proxy" --config="$conf/kube-proxy.yaml"
wait_daemon kube-proxy 60 curl -sf http://127.0.0.1:10256/healthz

# --- the cluster's NFS share -----------------------------------------------------------------------
# test/nfs/ganesha.sh serves a directory as HOST_IP:/export. The node plugin's test mount.nfs maps
# that spec back to the directory through the table in STOWAGE_FAKE_NFS_EXPORTS; the node plugin
# pod needs $STATE/nfs as a hostPath at the same path to see both.
nfs_env=""
if [ -x "$REPO_ROOT/test/nfs/ganesha.sh" ]; then
  mkdir -p "$STATE/nfs"
  # Its own server (this bind and root): the node plugin pod sees only $STATE/nfs.
  if out=$(STOWAGE_NFS_BIND=$HOST_IP STOWAGE_NFS_ROOT=$STATE/nfs "$REPO_ROOT/test/nfs/ganesha.sh" ensure 2>"$STATE/logs/ganesha-start.log"); then
    export_dir=$(eval "$out" && echo "$STOWAGE_NFS_EXPORT_DIR")
    [ -d "$export_dir" ] || die "ganesha.sh start printed '$export_dir', not a directory"
    echo "$HOST_IP:/export $export_dir" >"$STATE/nfs/exports"
    nfs_env="STOWAGE_NFS_SERVER=$HOST_IP
STOWAGE_NFS_SHARE=/export
STOWAGE_NFS_EXPORT_DIR=$export_dir
STOWAGE_FAKE_NFS_EXPORTS=$STATE/nfs/exports"
    log "NFS share $HOST_IP:/export serves $export_dir"
  else
    log "WARNING: test/nfs/ganesha.sh start failed (logs/ganesha-start.log): the cluster has no NFS share"
  fi
else
  log "test/nfs/ganesha.sh not there: the cluster has no NFS share"
fi

# Facts for tests and the Makefile; env.sh exports them.
cat >"$STATE/cluster.env" <<EOF
STOWAGE_NODE_NAME=$NODE_NAME
STOWAGE_HOST_IP=$HOST_IP
${nfs_env}
EOF
log "node up"
