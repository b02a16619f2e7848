#!/usr/bin/env bash
# demo.sh (`make demo`) — a single-node Kubernetes on this machine with Stowage installed and an
# example running: builds what is missing, brings the cluster up (test/cluster), helm-installs
# charts/stowage with test/e2e/values-cluster.yaml (the e2e tests' installation), applies
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

step "dependencies and Kubernetes binaries (cached after the first run, which takes ~30 min)"
test/cluster/install-deps.sh
test/cluster/build-binaries.sh

step "cluster"
test/cluster/up.sh >/dev/null
# shellcheck disable=SC1091
. test/cluster/env.sh
if [ -z "${STOWAGE_NFS_SERVER:-}" ]; then
  echo "demo.sh: the cluster has no NFS share; see $STOWAGE_CLUSTER_DIR/logs/ganesha-start.log" >&2
  echo "         (often another NFS-Ganesha owns port 2049: ss -ltnp 'sport = :2049')" >&2
  exit 1
fi

step "images (bin/stowage and localhost/stowage:dev from this working tree)"
test/cluster/images.sh

step "helm install stowage charts/stowage (values: test/e2e/values-cluster.yaml, NFS server $STOWAGE_NFS_SERVER)"
test/e2e/install.sh

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
