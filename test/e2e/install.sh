#!/usr/bin/env bash
# install.sh — helm-install Stowage into the test cluster of test/cluster with test/e2e/values-cluster.yaml
# and wait until its pods are ready. Used by hack/demo.sh, test/e2e/run.sh and the uninstall test
# (which reinstalls), so that all of them run the same installation.
#   RELEASE (default stowage), NAMESPACE (default stowage): where it goes.
# Needs the cluster up (test/cluster/up.sh) with its NFS share, and localhost/stowage:dev imported
# (test/cluster/images.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck disable=SC1091
. "$repo/test/cluster/env.sh"
RELEASE=${RELEASE:-stowage}
NAMESPACE=${NAMESPACE:-stowage}

if [ -z "${STOWAGE_NFS_SERVER:-}" ]; then
  echo "install.sh: the cluster has no NFS share (STOWAGE_NFS_SERVER unset in $STOWAGE_CLUSTER_DIR/cluster.env);" \
    "see $STOWAGE_CLUSTER_DIR/logs/ganesha-start.log, then test/cluster/down.sh && test/cluster/up.sh" >&2
  exit 1
fi

values=$(mktemp --suffix=.yaml)
trap 'rm -f "$values"' EXIT
# Only these two names: ${pvc.name} and friends are Stowage's own templates and must stay.
# shellcheck disable=SC2016
envsubst '${STOWAGE_NFS_SERVER} ${STOWAGE_CLUSTER_DIR}' <"$here/values-cluster.yaml" >"$values"

# The image tag is always "dev"; its digest as a pod annotation makes an upgrade after images.sh
# rebuilt the image restart the pods, which a re-run on a kept cluster (KEEP_CLUSTER=1) relies on.
digest=$(cut -c1-80 "$STOWAGE_CACHE/images/stowage.digest" 2>/dev/null | tr -cd 'a-z0-9:' || true)
helm upgrade --install "$RELEASE" "$repo/charts/stowage" \
  --namespace "$NAMESPACE" --create-namespace \
  --values "$values" \
  --set-string "controller.podAnnotations.stowage\.io/image=${digest:-unknown}" \
  --set-string "node.podAnnotations.stowage\.io/image=${digest:-unknown}" \
  "$@" --wait --timeout 3m
# --wait returns once the DaemonSet's pods are ready; the node plugin must also have registered with
# kubelet before a pod can mount anything.
for _ in $(seq 120); do
  if kubectl get csinode "$STOWAGE_NODE_NAME" -o jsonpath='{.spec.drivers[*].name}' 2>/dev/null |
    tr ' ' '\n' | grep -qx csi.stowage.io; then
    exit 0
  fi
  sleep 1
done
echo "install.sh: the node plugin did not register with kubelet (CSINode $STOWAGE_NODE_NAME has no csi.stowage.io)" >&2
kubectl -n "$NAMESPACE" logs -l app.kubernetes.io/component=node --tail=50 >&2 || true
exit 1
