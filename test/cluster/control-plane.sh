#!/usr/bin/env bash
# control-plane.sh up|down — a control plane without a node (etcd, kube-apiserver,
# kube-controller-manager) for integration tests and benchmarks. Plain background processes, no
# namespace, no root-only state; starts in about 10 s. `up` prints the kubeconfig path; `up` when
# already up is a no-op; `down` stops it and removes its data (pki and logs stay).
# Env:
#   STOWAGE_CP_DIR   state directory                         (default /tmp/stowage-cp)
#   STOWAGE_CP_PORT  apiserver port; etcd uses PORT-4064 and PORT-4063, the controller-manager's
#                    health port PORT-6086                   (default 16443 -> 12379, 12380, 10357)
#   KCM_QPS/KCM_BURST  kube-controller-manager --kube-api-qps/--kube-api-burst (default 20/30,
#                    the component's own defaults; the PV binder's speed depends on them)
#   KCM_EXTRA        more kube-controller-manager flags
# The ports differ from up.sh's (2379, 6443, 10257) so both can run at once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
STATE=${STOWAGE_CP_DIR:-/tmp/stowage-cp} PKI=${STOWAGE_CP_DIR:-/tmp/stowage-cp}/pki
API_PORT=${STOWAGE_CP_PORT:-16443}
ETCD_PORT=$((API_PORT - 4064)) KCM_PORT=$((API_PORT - 6086))

up() {
  if daemon_running kube-apiserver "$STATE/run" &&
    "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz >/dev/null 2>&1; then
    log "control plane already up"
    echo "$STATE/kubeconfig"
    return 0
  fi
  need_bins kube-apiserver kube-controller-manager kubectl
  down >/dev/null 2>&1 # a crashed run's processes and data
  mkdir -p "$STATE/run" "$STATE/logs" "$STATE/data"
  # A half-started control plane is worse than none: stop what did start.
  trap 'down >/dev/null 2>&1; log "control plane did not come up; logs in $STATE/logs"' EXIT
  HOST_IP=$(host_ip) "$here/pki.sh" "$PKI" >/dev/null
  write_kubeconfig "$STATE/kubeconfig" "$API_PORT" admin
  write_kubeconfig "$PKI/controller-manager.kubeconfig" "$API_PORT" controller-manager
  start_etcd
  wait_etcd
  start_apiserver
  wait_apiserver
  start_controller_manager
  wait_controller_manager
  trap - EXIT
  log "control plane up (qps ${KCM_QPS:-20}, burst ${KCM_BURST:-30})"
  echo "$STATE/kubeconfig"
}

down() {
  # The apiserver's graceful shutdown takes seconds: stop it and the controller-manager together.
  stop_daemon kube-controller-manager "$STATE/run" &
  stop_daemon kube-apiserver "$STATE/run" &
  wait
  stop_daemon etcd "$STATE/run"
  rm -rf "$STATE/data" "$STATE/run"
  log "control plane down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
