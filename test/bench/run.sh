#!/usr/bin/env bash
# test/bench/run.sh — the benchmarks behind docs/benchmarks.md. Every figure is paired with a floor
# measured in the same run, because this machine is shared and absolute times are noisy.
#
#   test/bench/run.sh [--parts=csi,bulk,seq,scrub,memory,plot|pods] [--sizes=10,100,1000]
#                     [--settings=20/30,200/400] [--peers=auto|on|off] [--out=docs/bench]
#
# Parts:
#   csi     Go benchmarks of the CSI services over their gRPC socket (pkg/driver/driver_bench_test.go),
#           inside a private mount namespace, on /tmp (ext4) and on /dev/shm (tmpfs) -> csi-*.txt
#   bulk    N claims at once, Stowage NFS provisioner vs the PV controller binding pre-made PVs, on a fresh
#           control plane per run, per kube-controller-manager qps/burst setting -> bulk-*.json
#           With the peers (--peers, below) also csi-driver-nfs behind external-provisioner, the driver
#           users would pick instead, twice: "peer" as csi-driver-nfs's own deployment runs it, and
#           "peer-tuned" with the client limits Stowage's controller has (300/600). Its controller mounts
#           the share to mkdir, so nfsplugin runs in test/nfs/in-mount-ns.sh. Its CPU and RSS are
#           csi-provisioner + nfsplugin (with the mount helpers nfsplugin execs). BULK_REPS (default 1)
#           repeats each N, rotating the order of the rows (rep 1: Stowage, peers, floor; rep 2: peers,
#           floor, Stowage; ...); repetitions after the first write bulk-...-rep<R>.json.
#           Each row then deletes all its claims at once and measures until every PV is gone from the
#           API and every volume directory from the export (the floor: its Retain PVs deleted by the
#           bench when Released, no directories). Rows of 100+ claims also check the tail rule (each
#           tenth by creation order: slowest claim <= 2x the tenth's median). BULK_TIMEOUT (default
#           30m) per row; give N=10000 more. BULK_DELETE=0 skips the deletion phase; BULK_PEER_MODES
#           (default "peer peer-tuned") picks the peer rows, BULK_ROWS (e.g. "dyn") all the rows.
#   seq     20 claims one at a time, vs a claim followed at once by a PV pre-bound to it -> seq-*.json
#   scrub   ScrubVolume vs rm -rf (local) and vs go-nfs-client RemoveAll (NFS) -> scrub-*.json
#   memory  controller RSS with 0, 1,000 and 10,000 Stowage PVs in the cluster -> memory.json
#   plot    PNGs and summary.md from the results (test/bench/plot, its own module for gonum/plot)
#   pods    not in the default list: needs the real single-node cluster of `make demo`. Pods each with a
#           fresh WaitForFirstConsumer claim of stowage-local, 1, 10, 50 at once, until Running, vs the same
#           pods with an emptyDir and with pre-made PVs of a no-provisioner class; then the claims deleted
#           until their PVs are gone (test/bench/pods) -> pods-<N>.json. A cluster that is up with Stowage
#           registered is used as it is; otherwise test/cluster/bring-up.sh --binaries needed --install
#           brings it up (as hack/demo.sh does) and test/cluster/down.sh removes it at the end unless
#           KEEP_CLUSTER=1. PODS_COUNTS (default 1,10,50), PODS_REPS (default 3).
#           Also rotated with them: "inline", the same pods with a CSI ephemeral inline Stowage volume
#           (issue 13 §3: ≤ 1.1× emptyDir), and with the peers (--peers) local-path-provisioner
#           v0.0.37, "local-path" at its defaults and "local-path-tuned" with 50 workers
#           (test/bench/peers/local-path.yaml, built by test/bench/peers/build.sh localpath, packed
#           by test/cluster/images.sh; installed for the run and removed after it, its PVs first).
#           PODS_VARIANTS overrides the list (test/bench/pods -variants).
# Env: STOWAGE_BENCH_DIR (scratch, default /tmp/stowage-bench), STOWAGE_CP_DIR/STOWAGE_CP_PORT (default
# /tmp/stowage-bench-cp, 18443: apart from the integration tests' 17443 and the cluster's 6443),
# SCRUB_FILES (default 1000,10000,100000), SCRUB_ROUNDS (local rounds, default 2), NFS_SCRUB_FILES (default 1000,10000; "none" skips either),
# BENCHTIME (default 2s), STOWAGE_CONTROLLER_FLAGS (more flags for the measured `stowage controller`)
# with BULK_TAG (a suffix for the result files of such a run, e.g. -ctlqps300).
# --peers (env PEERS): auto (default) measures the peers when test/bench/peers/build.sh has built them or
# can build them (external-provisioner and local-path-provisioner from the Go proxy; csi-driver-nfs
# from a git mirror, see that script) and otherwise skips their rows saying why; on fails instead;
# off leaves them out.
# Needs root (bind mounts, /proc/<pid>/clear_refs), the Kubernetes binaries (test/cluster) and
# NFS-Ganesha (test/nfs/ganesha.sh ensure: a running one is reused and left running; one started here
# is stopped at the end).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
parts=csi,bulk,seq,scrub,memory,plot
sizes=10,100,1000
settings=20/30,200/400
out=$root/docs/bench
peers=${PEERS:-auto}
for a in "$@"; do
  case $a in
    --parts=*) parts=${a#*=} ;;
    --sizes=*) sizes=${a#*=} ;;
    --settings=*) settings=${a#*=} ;;
    --out=*) out=${a#*=} ;;
    --peers=*) peers=${a#*=} ;;
    *) echo "usage: $0 [--parts=csi,bulk,seq,scrub,memory,plot|pods] [--sizes=10,100,1000] [--settings=20/30,200/400] [--peers=auto|on|off] [--out=DIR]" >&2; exit 2 ;;
  esac
done
work=${STOWAGE_BENCH_DIR:-/tmp/stowage-bench}
export STOWAGE_CP_DIR=${STOWAGE_CP_DIR:-/tmp/stowage-bench-cp} STOWAGE_CP_PORT=${STOWAGE_CP_PORT:-18443}
mkdir -p "$work/bin" "$work/logs" "$out"
out=$(cd "$out" && pwd)
has() { case ",$parts," in *",$1,"*) return 0 ;; esac; return 1; }
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

cd "$root"
log "building"
CGO_ENABLED=0 go build -o "$work/bin/stowage" ./cmd/stowage
go build -o "$work/bin/bulk" ./test/bench/bulk
go build -o "$work/bin/scrub" ./test/bench/scrub
go test -c -o "$work/bin/driver.test" ./pkg/driver/
go build -o "$work/bin/pods" ./test/bench/pods

# The peers, built once into the cache; PEER_PROVISIONER, PEER_NFSPLUGIN, PEER_VERSIONS.
peer_modes=()
if has bulk; then
  case $peers in
    off) ;;
    auto | on)
      if test/bench/peers/build.sh 2>"$work/logs/peers-build.log"; then
        eval "$(test/bench/peers/build.sh --print)"
        # shellcheck disable=SC2206 # a list of row names
        peer_modes=(${BULK_PEER_MODES:-peer peer-tuned})
        log "peers: $PEER_VERSIONS"
      elif [ "$peers" = on ]; then
        cat "$work/logs/peers-build.log" >&2
        exit 1
      else
        log "peers: SKIPPING the csi-driver-nfs rows, test/bench/peers/build.sh could not build them:"
        sed 's/^/    /' "$work/logs/peers-build.log" >&2
      fi
      ;;
    *) echo "--peers=$peers: want auto, on or off" >&2; exit 2 ;;
  esac
fi

# The machine, for the report.
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "nproc: $(nproc)"
  echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "kernel: $(uname -r)"
  echo "cpu: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)"
  echo "go: $(go env GOVERSION)"
  echo "commit: $(git rev-parse --short HEAD)"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine-$(echo "$parts" | tr , -).txt"

# NFS: reuse a running ganesha, else start one and stop it at the end (ganesha.sh ensure/release).
# Kept in variables of their own: the pods part sources the cluster's env.sh, with the same names.
nfs_env=
nfs_export=
nfs_server=
ensure_nfs() {
  [ -n "$nfs_env" ] && return 0
  nfs_env=$(test/nfs/ganesha.sh ensure)
  nfs_export=$(eval "$nfs_env" && echo "$STOWAGE_NFS_EXPORT_DIR")
  nfs_server=$(eval "$nfs_env" && echo "$STOWAGE_NFS_SERVER")
}
ctl_pid=
stop_controller() {
  if [ -n "$ctl_pid" ]; then
    kill "$ctl_pid" 2>/dev/null || true
    wait "$ctl_pid" 2>/dev/null || true
    ctl_pid=
  fi
}
cp_down() { test/cluster/control-plane.sh down >/dev/null 2>&1 || true; }
# local_path_up — local-path-provisioner on the cluster (image packed and imported, manifest applied
# with its directory under the cluster's, both Deployments ready). Fails with the reason on stderr.
local_path_installed=
local_path_up() {
  test/bench/peers/build.sh localpath || return 1
  eval "$(test/bench/peers/build.sh --print)"
  # The same build + import as bring-up.sh --install: only archives whose inputs changed are redone.
  test/cluster/images.sh all || return 1
  sed "s|/tmp/stowage-cluster/|${STOWAGE_CLUSTER_DIR%/}/|g" test/bench/peers/local-path.yaml | kubectl apply -f - || return 1
  local_path_installed=1
  kubectl -n local-path-storage wait --for=condition=Available deployment --all --timeout=180s ||
    { kubectl -n local-path-storage get pods -o wide; return 1; }
}
# local_path_down — its PVs are deleted by its own helper pods, so it stays until they are gone.
local_path_down() {
  [ -n "$local_path_installed" ] || return 0
  local left
  for _ in $(seq 600); do
    left=$(kubectl get pv -o jsonpath='{range .items[*]}{.spec.storageClassName}{"\n"}{end}' | grep -c '^local-path' || true)
    [ "$left" = 0 ] && break
    sleep 0.5
  done
  [ "$left" = 0 ] || log "pods: $left local-path PVs are still there after 5 min; removing the provisioner anyway"
  kubectl delete --wait=true --ignore-not-found -f test/bench/peers/local-path.yaml >/dev/null
  local_path_installed=
}

started_cluster=
cleanup() {
  local_path_down || true
  if [ -n "$started_cluster" ] && [ "${KEEP_CLUSTER:-}" != 1 ]; then test/cluster/down.sh --quiet || true; fi
  stop_controller
  stop_peer
  cp_down
  if [ -n "$nfs_env" ]; then (set -a && eval "$nfs_env" && test/nfs/ganesha.sh release >/dev/null 2>&1) || true; fi
}
trap cleanup EXIT

# cp_up QPS BURST — a fresh control plane (new etcd) with that kube-controller-manager client limit.
kubeconfig=
cp_up() {
  cp_down
  kubeconfig=$(KCM_QPS=$1 KCM_BURST=$2 test/cluster/control-plane.sh up 2>"$work/logs/cp-up.log")
}
# start_controller LOG — the real `stowage controller` as a process, as in test/integration/run.sh.
start_controller() {
  # shellcheck disable=SC2086 # STOWAGE_CONTROLLER_FLAGS is a list of flags
  "$work/bin/stowage" controller --kubeconfig="$kubeconfig" --endpoint="unix://$work/controller.sock" \
    --leader-elect=false --health-addr= ${STOWAGE_CONTROLLER_FLAGS:-} >"$1" 2>&1 &
  ctl_pid=$!
  for _ in $(seq 240); do
    grep -q 'Started provisioner controller' "$1" && return 0
    kill -0 "$ctl_pid" 2>/dev/null || break
    sleep 0.25
  done
  log "controller did not start; see $1"
  return 1
}

# start_peer MODE LOG — csi-driver-nfs (controller and node services in one nfsplugin) and
# external-provisioner in front of it. nfsplugin mounts the share to mkdir each volume; this kernel has
# no NFS client, so it runs in a private mount namespace whose mount.nfs bind-mounts the directory
# ganesha serves (test/nfs/README.md). Sets peer_pids "provisioner,nfsplugin".
peer_pids=
peer_pid_list=()
start_peer() {
  local mode=$1 lg=$2 sock=$work/peer/csi.sock flags
  rm -rf "$work/peer"
  mkdir -p "$work/peer/mnt"
  # in-mount-ns.sh and unshare exec, so $! ends as nfsplugin's own PID.
  test/nfs/in-mount-ns.sh "$PEER_NFSPLUGIN" --nodeid=bench-peer --endpoint="unix://$sock" \
    --working-mount-dir="$work/peer/mnt" -v=2 >"$lg.nfsplugin" 2>&1 &
  peer_pid_list=($!)
  for _ in $(seq 120); do [ -S "$sock" ] && break; sleep 0.25; done
  [ -S "$sock" ] || { log "nfsplugin did not start; see $lg.nfsplugin"; return 1; }
  # peer: the flags csi-driver-nfs's deploy/csi-nfs-controller.yaml gives it (no leader election: one
  # instance, as Stowage's row); everything else, --worker-threads=100 and the 5/10 client limits
  # included, at the defaults. peer-tuned: what the external-provisioner README says to raise for scale.
  flags=(-v=2 --extra-create-metadata=true --timeout=1200s --retry-interval-max=30m)
  if [ "$mode" = peer-tuned ]; then flags+=(--worker-threads=100 --kube-api-qps=300 --kube-api-burst=600); fi
  "$PEER_PROVISIONER" --csi-address="$sock" --kubeconfig="$kubeconfig" "${flags[@]}" >"$lg" 2>&1 &
  peer_pid_list=($! "${peer_pid_list[@]}")
  peer_pids="${peer_pid_list[0]},${peer_pid_list[1]}"
  for _ in $(seq 240); do
    grep -q 'Started provisioner controller' "$lg" && return 0
    kill -0 "${peer_pid_list[0]}" 2>/dev/null || break
    sleep 0.25
  done
  log "csi-provisioner did not start; see $lg"
  return 1
}
stop_peer() {
  local p
  for p in "${peer_pid_list[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${peer_pid_list[@]}"; do wait "$p" 2>/dev/null || true; done
  peer_pid_list=() peer_pids=
}

if has csi; then
  ensure_nfs
  bt=${BENCHTIME:-2s}
  mkdir -p "$work/tmp" /dev/shm/stowage-bench
  for fs in ext4:"$work/tmp" tmpfs:/dev/shm/stowage-bench; do
    name=${fs%%:*} dir=${fs#*:}
    log "csi benchmarks on $name ($dir)"
    # A private mount namespace: the bind mounts never reach the host's table.
    (cd "$work" && TMPDIR=$dir STOWAGE_TEST_NFS_SERVER=$nfs_server STOWAGE_TEST_NFS_SHARE=/export \
      unshare --mount --propagation private "$work/bin/driver.test" -test.run '^$' -test.bench . \
      -test.benchtime "$bt" -test.count 3 2>"$work/logs/csi-$name.err") | tee "$out/csi-$name.txt" >&2
  done
  echo "cd $work && TMPDIR=<dir> STOWAGE_TEST_NFS_SERVER=$nfs_server unshare --mount --propagation private bin/driver.test -test.run '^\$' -test.bench . -test.benchtime $bt -test.count 3" >"$out/csi-command.txt"
fi

# bulk_run MODE N QPS BURST — one measured run on a fresh control plane.
bulk_run() {
  local mode=$1 n=$2 qps=$3 burst=$4 pidarg=() delarg=()
  [ "${BULK_DELETE:-1}" = 1 ] || delarg=(-no-delete)
  local res="$out/$5"
  cp_up "$qps" "$burst"
  case $mode in
    dyn | seq-dyn)
      start_controller "$work/logs/controller-$mode-$n-$qps.log"
      pidarg=(-pid "$ctl_pid")
      ;;
    peer | peer-tuned)
      start_peer "$mode" "$work/logs/$mode-$n-$qps.log"
      # csi-driver-nfs only ever touches its volumes through its kernel mount, so they live apart
      # from Stowage's and are removed locally, as they were made.
      pidarg=(-pid "$peer_pids" -subdir stowage-bench-peer)
      ;;
  esac
  log "$mode N=$n kcm $qps/$burst"
  "$work/bin/bulk" -kubeconfig "$kubeconfig" -mode "$mode" -n "$n" -namespace "bench-$mode" -nfs-server "$nfs_server" \
    -setting "kcm $qps/$burst" "${pidarg[@]}" -export-dir "$nfs_export" "${delarg[@]}" -out "$res" -timeout "${BULK_TIMEOUT:-30m}"
  jq -c '{mode,n,setting,loadavg_start,all_bound_s,p50_s,p99_s,tail_rule_ok,controller:(.controller|if . then {cpu_s,vmhwm_kib} else null end),delete_all_gone_s,delete_p50_s,delete_p99_s}' "$res" >&2
  stop_controller
  stop_peer
  cp_down
  "$work/bin/bulk" -mode nfs-cleanup -nfs-server "$nfs_server" -export-dir "$nfs_export" -subdir stowage-bench
  rm -rf "${nfs_export:?}/stowage-bench-peer"
}

# bulk_order REP — the bulk rows in the order of repetition REP (from 1): rotated by one each time, so
# no row always runs first on a machine whose load drifts.
bulk_order() {
  local rows=(dyn "${peer_modes[@]}" floor) i
  # shellcheck disable=SC2206 # a list of row names
  [ -z "${BULK_ROWS:-}" ] || rows=(${BULK_ROWS})
  for ((i = 0; i < ${#rows[@]}; i++)); do echo "${rows[(i + $1 - 1) % ${#rows[@]}]}"; done
}

if has bulk || has seq; then
  ensure_nfs
  for s in ${settings//,/ }; do
    qps=${s%/*} burst=${s#*/}
    if has bulk; then
      for n in ${sizes//,/ }; do
        for ((rep = 1; rep <= ${BULK_REPS:-1}; rep++)); do
          suffix=
          [ "$rep" = 1 ] || suffix=-rep$rep
          for mode in $(bulk_order "$rep"); do
            bulk_run "$mode" "$n" "$qps" "$burst" "bulk-$mode-$n-kcm$qps${BULK_TAG:-}$suffix.json"
          done
        done
      done
    fi
    if has seq; then
      for mode in seq-floor seq-dyn; do bulk_run "$mode" 20 "$qps" "$burst" "$mode-kcm$qps${BULK_TAG:-}.json"; done
    fi
  done
fi

if has scrub; then
  ensure_nfs
  files=${SCRUB_FILES:-1000,10000,100000}
  [ "$files" = none ] && files=
  for n in ${files//,/ }; do
    {
      log "scrub local, $n files + 3 x 64 MiB"
      rm -rf "$work/scrub"
      "$work/bin/scrub" -backend local -dir "$work/scrub" -files "$n" -large 3 -large-mib 64 -rounds "${SCRUB_ROUNDS:-2}" -out "$out/scrub-local-$n.json"
      jq -c '{backend,files,scrub_s,floor_s}' "$out/scrub-local-$n.json" >&2
    }
  done
  rm -rf "$work/scrub"
  files=${NFS_SCRUB_FILES:-1000,10000}
  [ "$files" = none ] && files=
  for n in ${files//,/ }; do
    {
      log "scrub nfs, $n files + 3 x 64 MiB"
      "$work/bin/scrub" -backend nfs -server "$nfs_server" -export-dir "$nfs_export" -files "$n" -large 3 -large-mib 64 -rounds 2 -out "$out/scrub-nfs-$n.json"
      jq -c '{backend,files,scrub_s,floor_s}' "$out/scrub-nfs-$n.json" >&2
    }
  done
fi

# memory_point N — start the controller against a cluster holding N Stowage PVs, let its informers
# sync, settle 10 s, read /proc/<pid>/status.
memory_point() {
  local n=$1 lg="$work/logs/controller-memory-$1.log" t0 t1
  t0=$(date +%s.%N)
  start_controller "$lg"
  t1=$(date +%s.%N)
  sleep 10
  local rss hwm
  rss=$(awk '/^VmRSS/{print $2}' "/proc/$ctl_pid/status")
  hwm=$(awk '/^VmHWM/{print $2}' "/proc/$ctl_pid/status")
  log "memory: $n PVs: VmRSS $((rss / 1024)) MiB, VmHWM $((hwm / 1024)) MiB"
  printf '{"pvs": %d, "vmrss_kib": %d, "vmhwm_kib": %d, "start_to_synced_s": %.2f}' "$n" "$rss" "$hwm" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')"
  stop_controller
}

if has memory; then
  ensure_nfs
  cp_up 200 400
  points=()
  have=0
  for n in 0 1000 10000; do
    if [ "$n" -gt "$have" ]; then
      log "populating $n PVs"
      "$work/bin/bulk" -kubeconfig "$kubeconfig" -mode populate -n "$n" -out "$work/logs/populate-$n.json"
      have=$n
    fi
    points+=("$(memory_point "$n")")
  done
  (IFS=,; echo "[${points[*]}]") | jq . >"$out/memory.json"
  cp_down
fi

if has pods; then
  (
    # shellcheck disable=SC1091
    . test/cluster/env.sh
    kubectl get csinode "${STOWAGE_NODE_NAME:-none}" -o jsonpath='{.spec.drivers[*].name}' 2>/dev/null |
      grep -qw csi.stowage.io
  ) || {
    log "pods: bringing up the cluster with Stowage (test/cluster/bring-up.sh)"
    started_cluster=1
    test/cluster/bring-up.sh --binaries needed --install >&2
  }
  # shellcheck disable=SC1091
  . test/cluster/env.sh
  variants=emptydir,static,claim,inline
  peer_note="peers: off"
  case $peers in
    off) ;;
    auto | on)
      if local_path_up >"$work/logs/local-path-up.log" 2>&1; then
        variants+=,local-path,local-path-tuned
        peer_note="peers: local-path-provisioner $PEER_LOCAL_PATH_VERSION"
        log "pods: $peer_note installed (test/bench/peers/local-path.yaml)"
      elif [ "$peers" = on ]; then
        cat "$work/logs/local-path-up.log" >&2
        local_path_down
        exit 1
      else
        log "pods: SKIPPING the local-path rows, local-path-provisioner could not be installed:"
        tail -n 20 "$work/logs/local-path-up.log" | sed 's/^/    /' >&2
        local_path_down
      fi
      ;;
    *) echo "--peers=$peers: want auto, on or off" >&2; exit 2 ;;
  esac
  variants=${PODS_VARIANTS:-$variants}
  log "pods: counts ${PODS_COUNTS:-1,10,50}, ${PODS_REPS:-3} repetitions, variants $variants"
  "$work/bin/pods" -counts "${PODS_COUNTS:-1,10,50}" -reps "${PODS_REPS:-3}" -variants "$variants" -out-dir "$out"
  local_path_down
  {
    echo "test/bench/run.sh --parts=pods --peers=$peers   # PODS_COUNTS=${PODS_COUNTS:-1,10,50} PODS_REPS=${PODS_REPS:-3}"
    echo "variants: $variants ($peer_note)"
    echo "kube-controller-manager: $(pgrep -a kube-controller | grep -o -- '--kube-api-[a-z]*=[0-9]*' | tr '\n' ' ')"
  } >"$out/pods-command.txt"
fi

if has plot; then
  log "plotting"
  (cd test/bench/plot && go run . -dir "$out")
fi
log "done; results in $out"
