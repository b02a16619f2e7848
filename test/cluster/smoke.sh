#!/usr/bin/env bash
# smoke.sh — checks that a cluster from up.sh can run what the storage tests need:
#   the node is Ready; a pod writes through a hostPath and the file is on the host; two containers
#   share an emptyDir; a ClusterIP service (kubernetes.default) answers from a pod; kubectl exec
#   works; a privileged container's mount under /var/lib/kubelet with Bidirectional propagation
#   is seen by the node (what the CSI node plugin relies on).
# Leaves nothing behind in the cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
. "$here/lib.sh"
ns=stowage-smoke
hostdir=$STOWAGE_CLUSTER_DIR/data/smoke-hostpath
cleanup() {
  kubectl delete ns $ns --wait=false >/dev/null 2>&1 || true
  # A Bidirectional mount outlives its container: take it away in the node.
  "$here/in-node.sh" sh -c 'umount /var/lib/kubelet/stowage-smoke 2>/dev/null; rmdir /var/lib/kubelet/stowage-smoke 2>/dev/null' || true
}
trap cleanup EXIT

wait_for "node Ready" 60 kubectl wait --for=condition=Ready "node/$STOWAGE_NODE_NAME" --timeout=1s
kubectl delete namespace $ns --ignore-not-found --timeout=60s >/dev/null # an earlier run's
kubectl create namespace $ns >/dev/null
wait_for "service account $ns/default" 30 kubectl -n $ns get sa default
s=$SECONDS
kubectl -n $ns apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata: {name: hostpath}
spec:
  restartPolicy: Never
  containers:
  - name: writer
    image: docker.io/library/busybox:1.37
    command: [sh, -c, 'echo "written by \$HOSTNAME" > /data/out.txt']
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    hostPath: {path: $hostdir, type: DirectoryOrCreate}
---
apiVersion: v1
kind: Pod
metadata: {name: emptydir}
spec:
  restartPolicy: Never
  initContainers:
  - name: prepare
    image: docker.io/library/busybox:1.37
    command: [sh, -c, 'echo prepared > /shared/index.html']
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: reader
    image: docker.io/library/busybox:1.37
    command: [sh, -c, 'grep -q prepared /shared/index.html && echo "emptyDir shared OK"']
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - name: shared
    emptyDir: {}
---
apiVersion: v1
kind: Pod
metadata: {name: service}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: docker.io/library/busybox:1.37
    command: [sh, -c, 'nc -w 5 10.96.0.1 443 </dev/null && echo "service kubernetes.default (10.96.0.1:443) reachable"']
---
apiVersion: v1
kind: Pod
metadata: {name: propagation}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: docker.io/library/busybox:1.37
    securityContext: {privileged: true}
    command: [sh, -c, 'mkdir -p /kl/stowage-smoke && mount -t tmpfs smoke /kl/stowage-smoke && echo propagated > /kl/stowage-smoke/x && sleep 3600']
    volumeMounts: [{name: kl, mountPath: /kl, mountPropagation: Bidirectional}]
  volumes:
  - name: kl
    hostPath: {path: /var/lib/kubelet, type: Directory}
EOF
for p in hostpath emptydir service; do
  wait_for "pod $p Succeeded" 120 kubectl -n $ns wait --for=jsonpath='{.status.phase}'=Succeeded pod/$p --timeout=1s
done
log "three pods Succeeded $((SECONDS - s))s after creation"
grep -q "written by hostpath" "$hostdir/out.txt" || die "hostPath file missing on the host"
log "hostPath: host sees '$(cat "$hostdir/out.txt")'"
kubectl -n $ns logs emptydir -c reader
kubectl -n $ns logs service

wait_for "pod propagation Running" 60 kubectl -n $ns wait --for=condition=Ready pod/propagation --timeout=1s
wait_for "container's mount seen by the node" 10 "$here/in-node.sh" grep -q propagated /var/lib/kubelet/stowage-smoke/x
kubectl -n $ns exec propagation -- umount /kl/stowage-smoke
"$here/in-node.sh" sh -c '! grep -q " /var/lib/kubelet/stowage-smoke " /proc/self/mountinfo' ||
  die "unmount in the container did not propagate to the node"
log "Bidirectional propagation under /var/lib/kubelet OK (mount and unmount)"

kubectl delete ns $ns --wait=true --timeout=60s >/dev/null
rm -rf "$hostdir"
cleanup
trap - EXIT
echo "SMOKE OK"
