# env.sh — source it (`. test/cluster/env.sh`) to use the test cluster from a shell, a test or the
# Makefile: exports KUBECONFIG, puts kubectl/helm/e2e.test on PATH, and exports what up.sh
# recorded about the running cluster (STOWAGE_NODE_NAME, STOWAGE_HOST_IP, and when the NFS share
# is up STOWAGE_NFS_SERVER, STOWAGE_NFS_SHARE, STOWAGE_NFS_EXPORT_DIR, STOWAGE_FAKE_NFS_EXPORTS).
# Also STOWAGE_NODE_PID: the host PID of the node's namespace init, for
# `nsenter -t $STOWAGE_NODE_PID -m -p CMD` (see in-node.sh).
# shellcheck shell=bash
export STOWAGE_CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
export STOWAGE_CLUSTER_DIR=${STOWAGE_CLUSTER_DIR:-/tmp/stowage-cluster}
export STOWAGE_K8S_BIN=$STOWAGE_CACHE/k8s-v1.34.4/bin
export KUBECONFIG=$STOWAGE_CLUSTER_DIR/kubeconfig
case ":$PATH:" in *":$STOWAGE_K8S_BIN:"*) ;; *) export PATH=$STOWAGE_K8S_BIN:$PATH ;; esac
if [ -f "$STOWAGE_CLUSTER_DIR/cluster.env" ]; then
  set -a
  # shellcheck disable=SC1091 # written by up.sh
  . "$STOWAGE_CLUSTER_DIR/cluster.env"
  set +a
fi
if [ -f "$STOWAGE_CLUSTER_DIR/run/init.pid" ]; then
  STOWAGE_NODE_PID=$(cat "$STOWAGE_CLUSTER_DIR/run/init.pid")
  export STOWAGE_NODE_PID
fi
