# lib.sh — settings and helpers shared by the test-cluster scripts. Sourced, never run.
# Everything here is plain functions and variables; nothing starts until a script calls it.
# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this

K8S_VERSION=v1.34.4
STOWAGE_CACHE=${STOWAGE_CACHE:-$HOME/.cache/stowage}
K8S_BIN=$STOWAGE_CACHE/k8s-$K8S_VERSION/bin     # kube-*, kubelet, kubectl, helm, e2e.test, agnhost, csi-attacher
IMAGE_CACHE=$STOWAGE_CACHE/images               # OCI archives + the pause binary (also the namespace's init)
CLUSTER_DIR=${STOWAGE_CLUSTER_DIR:-/tmp/stowage-cluster}
cluster_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$cluster_lib_dir/../.." && pwd)

# The address pods and the NFS client reach this machine on: the source address of the default route.
host_ip() {
  local ip
  ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
  echo "${ip:-127.0.0.1}"
}

log() { printf '[%3ds] %s\n' "$SECONDS" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND... — poll every 0.5 s until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.5
  done
  log "$what ok"
}

# wait_daemon NAME SECONDS COMMAND... — like wait_for, but gives up at once, showing the end of
# its log, when daemon NAME (started by start_daemon with RUNDIR $STATE/run) has exited.
wait_daemon() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ! daemon_running "$name" "$STATE/run"; then
      tail -n 5 "$STATE/logs/$name.log" >&2
      log "$name exited (log: $STATE/logs/$name.log)"
      return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${secs}s waiting for $name"; return 1; }
    sleep 0.5
  done
  log "$name ok"
}

# start_daemon NAME RUNDIR LOGDIR COMMAND... — start in the background, log to LOGDIR/NAME.log,
# PID to RUNDIR/NAME.pid. A daemon that is already running is left alone.
start_daemon() {
  local name=$1 run=$2 logs=$3; shift 3
  if daemon_running "$name" "$run"; then log "$name already running"; return 0; fi
  nohup "$@" >"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$run/$name.pid"
  log "started $name (pid $!)"
}

daemon_running() { local pid; pid=$(cat "$2/$1.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }

# stop_daemon NAME RUNDIR — SIGTERM, up to 10 s of grace, then SIGKILL.
stop_daemon() {
  local name=$1 run=$2 pid i
  pid=$(cat "$run/$name.pid" 2>/dev/null) || return 0
  if kill "$pid" 2>/dev/null; then
    for i in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -9 "$pid" 2>/dev/null; then log "killed $name (pid $pid) after 10s"; fi
  fi
  rm -f "$run/$name.pid"
}

need_bins() {
  local b
  for b in "$@"; do
    [ -x "$K8S_BIN/$b" ] || die "$K8S_BIN/$b is missing: run test/cluster/build-binaries.sh"
  done
}

# --- the control-plane components, shared by up.sh (full node) and control-plane.sh -------------
# Each takes its ports and directories from variables so that both can run side by side:
#   STATE (data, run, logs), PKI, ETCD_PORT (peer = +1), API_PORT, KCM_PORT.

start_etcd() {
  local peer=$((ETCD_PORT + 1))
  # Debian's etcd 3.4. --unsafe-no-fsync: a throwaway test store needs no durability, and fsync
  # latency on a shared disk made the apiserver's first writes slow.
  start_daemon etcd "$STATE/run" "$STATE/logs" etcd --name stowage --data-dir "$STATE/data/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "stowage=http://127.0.0.1:$peer" \
    --quota-backend-bytes 2147483648 --unsafe-no-fsync
}

start_apiserver() {
  start_daemon kube-apiserver "$STATE/run" "$STATE/logs" "$K8S_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=0.0.0.0 --secure-port="$API_PORT" --advertise-address="$(host_ip)" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --profiling=false --cert-dir="$STATE/data/apiserver-certs"
}

start_controller_manager() {
  local kc=$PKI/controller-manager.kubeconfig
  # shellcheck disable=SC2086 # KCM_EXTRA is a list of flags
  # --kube-api-qps/--kube-api-burst: the client limits that bound how fast the PV binder works
  # (about six writes per claim); the defaults are the component's own.
  start_daemon kube-controller-manager "$STATE/run" "$STATE/logs" "$K8S_BIN/kube-controller-manager" \
    --kubeconfig="$kc" --authentication-kubeconfig="$kc" --authorization-kubeconfig="$kc" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --kube-api-qps="${KCM_QPS:-20}" --kube-api-burst="${KCM_BURST:-30}" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --service-cluster-ip-range=10.96.0.0/16 ${KCM_EXTRA:-}
}

# wait_control_plane — etcd, apiserver and controller-manager healthy, and the controllers have
# done the first thing tests rely on: the default namespace's service account exists.
wait_etcd() { wait_daemon etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"; }
wait_apiserver() { wait_daemon kube-apiserver 120 "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz; }
wait_controller_manager() {
  wait_daemon kube-controller-manager 60 curl -skf "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for "default service account" 60 "$K8S_BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get sa default -n default
}

# write_kubeconfig FILE PORT CERT — a kubeconfig for the client certificate $PKI/CERT.{crt,key}.
write_kubeconfig() {
  cat >"$1" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: stowage-test
  cluster: {server: "https://127.0.0.1:$2", certificate-authority: "$PKI/ca.crt"}
users:
- name: $3
  user: {client-certificate: "$PKI/$3.crt", client-key: "$PKI/$3.key"}
contexts:
- name: stowage-test
  context: {cluster: stowage-test, user: $3}
current-context: stowage-test
EOK
}
