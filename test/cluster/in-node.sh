#!/usr/bin/env bash
# in-node.sh CMD... — run CMD inside the test node's PID+mount namespace, where the node's mounts
# are (pod volumes, CSI staging and publish targets). Example: test/cluster/in-node.sh findmnt -R /var/lib/kubelet
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
init=$(cat "$CLUSTER_DIR/run/init.pid" 2>/dev/null || true)
if [ -z "$init" ] || ! kill -0 "$init" 2>/dev/null; then die "the cluster is not up"; fi
exec nsenter --target "$init" --mount --pid -- "$@"
