#!/usr/bin/env bash
# demo.sh (`make demo`) — a single-node Kubernetes on this machine with Stowage installed and an
# example running: test/cluster/bring-up.sh builds what is missing (only the binaries the demo
# needs), brings the cluster up and helm-installs charts/stowage with test/e2e/values-cluster.yaml
# (the e2e tests' installation); then this applies
# examples/web-shared-volumes, waits until its claims are Bound and its pods Running, and shows
# `kubectl get sc,pv,pvc`. The cluster stays up; test/cluster/down.sh removes it.
# Env: DEMO_EXAMPLE (default web-shared-volumes; one that needs no ordered steps: web-shared-volumes,
# init-seed, database-restart), DEMO_NAMESPACE (default default).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
example=${DEMO_EXAMPLE:-web-shared-volumes}
ns=${DEMO_NAMESPACE:-default}
t0=$SECONDS
step() { echo "== [$((SECONDS - t0))s] $*"; }

# Only the binaries the demo runs: no e2e.test; csi-attacher only if the values ask for attach.
step "bring-up (test/cluster/bring-up.sh: packages, binaries, cluster, NFS share, images, helm install)"
test/cluster/bring-up.sh --binaries needed --install
# shellcheck disable=SC1091
. test/cluster/env.sh

step "example $example in namespace $ns"
kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"
for f in examples/"$example"/*.yaml; do
  # shellcheck disable=SC2016 # envsubst takes the variable's name
  NFS_SERVER=$STOWAGE_NFS_SERVER envsubst '${NFS_SERVER}' <"$f" | kubectl -n "$ns" apply -f -
done

step "waiting for the example's claims to be Bound and its pods Running"
# Every object of an example carries the label app=<name> (examples/README.md).
label=$(sed -n 's/^    app: //p' examples/"$example"/*.yaml | head -n 1)
for _ in $(seq 180); do
  pods=$(kubectl -n "$ns" get pods -l "app=$label" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
  claims=$(kubectl -n "$ns" get pvc -l "app=$label" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}')
  if [ -n "$pods" ] && [ -n "$claims" ] && ! grep -qv '^Running$' <<<"$pods" && ! grep -qv '^Bound$' <<<"$claims"; then
    break
  fi
  sleep 1
done
kubectl -n "$ns" wait --for=condition=Ready pod -l "app=$label" --timeout=60s

step "what Stowage made"
kubectl get sc,pv
kubectl -n "$ns" get pvc,pods -o wide

cat <<EOF

Stowage is running. Try:

  . test/cluster/env.sh                     # kubectl, helm and KUBECONFIG for this shell
  kubectl -n $ns get pvc,pv                 # the claims and the volumes Stowage provisioned
  less examples/$example/README.md          # what the example shows and the commands to explore it
  ls $STOWAGE_NFS_EXPORT_DIR                # NFS volumes: one directory per claim on the server
  ls /var/lib/stowage/local                 # local volumes of this node
  kubectl -n stowage logs deploy/stowage-controller
  kubectl -n stowage logs ds/stowage-node

Other examples are in examples/ (README.md there lists them); test/e2e/run.sh runs all of them as tests.

Tear down (the whole cluster, with every volume):

  test/cluster/down.sh                      # or: make down
EOF
