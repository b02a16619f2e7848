#!/usr/bin/env bash
# bring-up.sh [--binaries all|needed|LIST] [--install [--values FILE]...] — the one way every tier
# brings up the test cluster (test/e2e/run.sh, test/e2e/multinode/run.sh, hack/demo.sh,
# test/bench/run.sh --parts=pods), in this order:
#   1. Debian packages (install-deps.sh; one dpkg query when they are there)
#   2. cached Kubernetes binaries (build-binaries.sh; binaries that exist are not rebuilt)
#   3. the cluster (up.sh; a no-op when it is already up)
#   4. its NFS share: the cluster must have one (up.sh serves it with test/nfs/ganesha.sh)
#   5. with --install: the images (images.sh) and Stowage from charts/stowage with
#      test/e2e/values-cluster.yaml (test/e2e/install.sh)
# Options:
#   --binaries all      everything build-binaries.sh makes: also e2e.test and agnhost for the
#                       storage suite (the default)
#   --binaries needed   what this bring-up runs: k8s, plus helm with --install, plus attacher when the
#                       installation turns csiDriver.attachRequired on, plus snapshot when it runs the
#                       chart's snapshot-controller
#   --binaries k8s,helm an explicit list for build-binaries.sh (k8s helm e2e attacher snapshot)
#   --install           step 5
#   --values FILE       with --install: more Helm values on top of values-cluster.yaml (repeatable),
#                       e.g. test/e2e/multinode/values.yaml
#   STOWAGE_NODES=N     (env) worker nodes 2..N too, see up.sh
# Afterwards `. test/cluster/env.sh` gives KUBECONFIG, kubectl, helm and the STOWAGE_* facts; the
# cluster stays up until test/cluster/down.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The values test/e2e/install.sh installs with.
values=$repo/test/e2e/values-cluster.yaml
binaries=all
install=false
extra_values=()

usage() { echo "usage: $0 [--binaries all|needed|k8s,helm,e2e,attacher,snapshot] [--install [--values FILE]...]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --binaries) [ $# -ge 2 ] || usage; binaries=$2; shift 2 ;;
    --binaries=*) binaries=${1#*=}; shift ;;
    --install) install=true; shift ;;
    --values)
      [ $# -ge 2 ] || usage
      [ -f "$2" ] || { echo "bring-up.sh: --values $2: no such file" >&2; exit 2; }
      extra_values+=(--values "$(realpath "$2")"); shift 2 ;;
    *) usage ;;
  esac
done

case $binaries in
  all | needed) ;;
  *)
    IFS=, read -r -a targets <<<"$binaries"
    for t in "${targets[@]}"; do
      case $t in k8s | helm | e2e | attacher | snapshot) ;; *) echo "bring-up.sh: --binaries: unknown target '$t'" >&2; usage ;; esac
    done
    ;;
esac

t0=$SECONDS
step() { echo "== [$((SECONDS - t0))s] $*"; }

# render_installation — the chart as the installation renders it from its defaults and $values (so a
# default changed in the chart counts too). The values' placeholders are filled as
# test/e2e/install.sh fills them; the server is a stand-in, since the cluster may not be up yet.
render_installation() {
  local rendered out
  rendered=$(mktemp --suffix=.yaml)
  # shellcheck disable=SC2016 # envsubst takes the variables' names
  STOWAGE_NFS_SERVER=192.0.2.1 envsubst '${STOWAGE_NFS_SERVER} ${STOWAGE_CLUSTER_DIR}' <"$values" >"$rendered"
  out=$("$K8S_BIN/helm" template stowage "$repo/charts/stowage" --values "$rendered" "${extra_values[@]}" \
    --kube-version "$K8S_VERSION") || { rm -f "$rendered"; echo "bring-up.sh: cannot render the chart with $values" >&2; exit 1; }
  rm -f "$rendered"
  printf '%s\n' "$out"
}

# attach_required — whether the installation's CSIDriver says attachRequired: true.
attach_required() { grep -q '^ *attachRequired: true$' <<<"$installation"; }

# runs_snapshot_controller — whether the installation runs the chart's snapshot-controller
# (snapshots.enabled and snapshots.controller.enabled).
runs_snapshot_controller() { grep -q '^ *image: localhost/snapshot-controller:' <<<"$installation"; }

# K8S_BIN, K8S_VERSION
. "$here/lib.sh"

step "Debian packages"
"$here/install-deps.sh"

step "Kubernetes binaries ($binaries; cached after the first build, which takes 20-30 min)"
case $binaries in
  all) "$here/build-binaries.sh" ;;
  needed)
    if ! $install; then
      "$here/build-binaries.sh" k8s
    else
      "$here/build-binaries.sh" k8s helm
      installation=$(render_installation)
      if attach_required; then
        echo "bring-up.sh: $values turns csiDriver.attachRequired on: building csi-attacher"
        "$here/build-binaries.sh" attacher
      fi
      if runs_snapshot_controller; then
        echo "bring-up.sh: the installation runs the chart's snapshot-controller: building it"
        "$here/build-binaries.sh" snapshot
      fi
    fi
    ;;
  *) "$here/build-binaries.sh" "${targets[@]}" ;;
esac

step "cluster (test/cluster/up.sh)"
"$here/up.sh" >/dev/null
# shellcheck disable=SC1091 # again: up.sh has just written cluster.env
. "$here/env.sh"

step "NFS share"
if [ -z "${STOWAGE_NFS_SERVER:-}" ]; then
  echo "bring-up.sh: the cluster came up without its NFS share; test/nfs/ganesha.sh said:" >&2
  cat "$STOWAGE_CLUSTER_DIR/logs/ganesha-start.log" >&2 || true
  # The usual cause: another NFS-Ganesha (of `make sanity`, the integration tests or the
  # benchmarks) owns port 2049, and only one can listen there per machine.
  echo "bring-up.sh: what listens on port 2049:" >&2
  ss -Hltnp 'sport = :2049' >&2 || true
  echo "bring-up.sh: stop that server (its owner's test/nfs/ganesha.sh stop), then test/cluster/down.sh and run this again" >&2
  exit 1
fi
echo "bring-up.sh: $STOWAGE_NFS_SERVER:$STOWAGE_NFS_SHARE serves $STOWAGE_NFS_EXPORT_DIR"

if $install; then
  step "images (bin/stowage and localhost/stowage:dev from this working tree)"
  "$here/images.sh"
  # Worker nodes (STOWAGE_NODES > 1) have a containerd each.
  for sock in $(env | sed -n 's/^STOWAGE_NODE_[0-9]*_CONTAINERD=//p'); do
    CONTAINERD_ADDRESS=$sock "$here/images.sh" import
  done
  step "helm install stowage (charts/stowage, values $values ${extra_values[*]})"
  "$repo/test/e2e/install.sh" "${extra_values[@]}"
fi
step "cluster ready: . test/cluster/env.sh; test/cluster/down.sh removes it"
