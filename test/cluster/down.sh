#!/usr/bin/env bash
# down.sh [--quiet] — tear down what up.sh started and leave no process, mount, iptables chain,
# network device or cgroup of it. Safe to run any number of times, also after a crash.
# Keeps $STOWAGE_CLUSTER_DIR/{logs,pki,kubeconfig} for post-mortems; removes the rest of the state.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
run=$CLUSTER_DIR/run
quiet=false; [ "${1:-}" != --quiet ] || quiet=true
say() { $quiet || log "$@"; }

# Processes of the node: those in its PID namespace (daemons, shims, hostPID pods) and those in
# the kubelet's pod cgroups (containers, which sit in nested PID namespaces).
node_pids() {
  local ns p
  ns=$(cat "$run/pidns" 2>/dev/null) || ns=none
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/ns/pid" 2>/dev/null)" != "$ns" ] || echo "${p#/proc/}"
  done
  # Worker nodes (node-extra.sh) keep their pods under /stowage-node-I/kubepods.
  local k
  for k in /sys/fs/cgroup/pids/kubepods /sys/fs/cgroup/pids/stowage-node-*/kubepods; do
    cat "$k/cgroup.procs" "$k"/*/cgroup.procs "$k"/*/*/cgroup.procs "$k"/*/*/*/cgroup.procs 2>/dev/null || true
  done
}
no_node_pids() { [ -z "$(node_pids)" ]; }

# 1. Processes. SIGTERM to the namespace's init (pause) ends it, and the kernel then kills every
#    process in the namespace. Only PIDs recorded by up.sh are signalled, and only after checking
#    that the PID still is that namespace's init.
init=$(cat "$run/init.pid" 2>/dev/null || true)
if [ -n "$init" ] && [ "$(readlink "/proc/$init/ns/pid" 2>/dev/null)" = "$(cat "$run/pidns" 2>/dev/null)" ]; then
  log "stopping the node (namespace init pid $init)"
  kill -TERM "$init" 2>/dev/null || true
  wait_for "node processes gone" 10 no_node_pids || { kill -KILL "$init" 2>/dev/null || true; }
fi
no_node_pids || wait_for "node processes gone" 20 no_node_pids || die "processes left: $(node_pids | tr '\n' ' ')"

# 2. Network leftovers in the host network namespace: netns files, the bridge, iptables chains.
rm -f /run/netns/cni-* 2>/dev/null || true
rmdir /run/netns 2>/dev/null || true
# cni0 is node 1's bridge, cni1, cni2... those of the workers (node-extra.sh).
for br in $(ip -o link show type bridge | awk -F': ' '$2 ~ /^cni[0-9]+$/ {print $2}'); do
  ip link delete "$br"; say "deleted $br"
done
# Drop every KUBE-* and CNI-* chain (kubelet, kube-proxy, CNI) and the jumps to them. The
# built-in chains stay (empty, policy ACCEPT), as iptables-nft leaves them for anyone.
clean_chains() {
  local ipt=$1 t rule c n=0
  for t in filter nat mangle raw; do
    "$ipt" -t "$t" -S >/dev/null 2>&1 || continue
    "$ipt" -t "$t" -S | awk '$1 == "-A" && $2 !~ /^(KUBE|CNI)-/ && / -j (KUBE|CNI)-/ {sub(/^-A /, "-D "); print}' |
      while read -r rule; do eval "$ipt -t $t $rule"; done
    for c in $("$ipt" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}'); do "$ipt" -t "$t" -F "$c"; done
    for c in $("$ipt" -t "$t" -S | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ {print $2}'); do
      "$ipt" -t "$t" -X "$c"; n=$((n + 1))
    done
  done
  [ "$n" = 0 ] || say "removed $n $ipt chains"
}
clean_chains iptables
clean_chains ip6tables
# kube-proxy also keeps a "kube-proxy" nftables table per family on newer kernels.
for fam in ip ip6; do
  if nft list table "$fam" kube-proxy >/dev/null 2>&1; then nft delete table "$fam" kube-proxy; say "removed nft $fam kube-proxy"; fi
done

# 3. Host-wide settings the kubelet and kube-proxy changed.
if [ -f "$CLUSTER_DIR/sysctl.orig" ]; then
  sysctl -q -p "$CLUSTER_DIR/sysctl.orig" >/dev/null 2>&1 || true
  rm -f "$CLUSTER_DIR/sysctl.orig"
fi

# 4. The kubelets' pod cgroups (empty now), deepest first; workers' under their /stowage-node-I.
for h in /sys/fs/cgroup/*/; do
  for k in "$h/kubepods" "$h"/stowage-node-*; do
    [ -d "$k" ] || continue
    find "$k" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ ! -d "$k" ] || die "cgroup $k is not empty"
  done
done

# 5. State. Every mount of the node lived in its namespace; if one reached the host anyway,
#    stop before rm follows it into someone's data.
leaks=$(awk -v d="$CLUSTER_DIR" '$5 ~ "^(/var/lib/kubelet|/run/containerd|/run/netns)" || index($5, d) == 1 {print $5}' /proc/self/mountinfo)
[ -z "$leaks" ] || die "mounts reached the host, unmount them first: $leaks"
rm -rf --one-file-system /var/lib/kubelet /run/containerd "$CLUSTER_DIR/data" "$CLUSTER_DIR/run" \
  "$CLUSTER_DIR/nfs" "$CLUSTER_DIR/cluster.env"
say "down: no node processes, mounts, chains or state left"
