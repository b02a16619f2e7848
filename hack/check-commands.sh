#!/usr/bin/env bash
# check-commands.sh SCRIPT... — fails when a shell script calls a program that a fresh machine lacks.
# A program is fine when its Debian package has Priority "required" (what debootstrap's minbase
# installs), or is listed in test/cluster/install-deps.sh itself (not merely pulled in by one that is),
# or the repository builds it (BUILT below). A name found on no PATH here is an error too, unless ALLOW
# below names it with the reason.
# Command names are taken from every place a command starts: line starts, after | || && ; & ( $( and
# backquotes, then/do/else/!, the command of exec, command, nohup, nice, setsid, timeout N, xargs,
# env VAR=x, nsenter/unshare (after --), find -exec, sh/bash -c '...', trap '...', and of this
# repository's wrapper functions (wait_for, wait_daemon, timed, in-node.sh, in-mount-ns.sh); also in
# heredocs that are themselves shell scripts (the UML guest's init). Builtins, keywords, functions
# defined in any of the scripts, variables and paths relative to the repository are skipped.
# check-commands.sh --self-test — proves the check finds such calls and flags them.
# Env: CHECK_COMMANDS_DEPS (default test/cluster/install-deps.sh), the file whose pkgs=( ... ) is read.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# Where a fresh machine's programs are; the Go toolchain and the Kubernetes cache are in BUILT.
SYS_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Built by the repository or its toolchain: make build, Go itself, hack/lint.sh, build-binaries.sh.
BUILT=" stowage go gofmt staticcheck kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl
  kube-proxy helm e2e.test agnhost csi-attacher "
# Names not checked, each with its reason. Keep it short.
declare -A ALLOW=(
  [nft]="down.sh removes kube-proxy's nftables table only where nft exists; kube-proxy itself needs nft to make one"
  [systemctl]="install-deps.sh stops Debian's services only where systemd is installed"
)

# The packages install-deps.sh lists in its pkgs=( ... ) array.
deps_file() { echo "${CHECK_COMMANDS_DEPS:-$repo/test/cluster/install-deps.sh}"; }
deps_packages() { sed -n '/^pkgs=(/,/^)/p' "$(deps_file)" | sed 's/#.*//; s/^pkgs=(//; s/^)//' | tr -s ' \t' '\n' | sed '/^$/d'; }

# twins PATH — the names dpkg may know PATH by: itself and where its symlinks lead (alternatives),
# each with and without /usr (Debian 12 merged /usr, but dpkg still records /bin/ls, /sbin/insmod).
twins() {
  local v
  for v in "$1" "$(readlink -f "$1")"; do
    echo "$v"
    case $v in /usr/*) echo "${v#/usr}" ;; *) echo "/usr$v" ;; esac
  done
}

check() {
  local -A funcs=() locs=() skip=() owner=() prio=() indeps=()
  local kind name loc w p v pkg errors=()
  [ $# -gt 0 ] || { echo "usage: check-commands.sh SCRIPT... | --self-test" >&2; return 2; }
  while IFS=$'\t' read -r kind name loc; do
    case $kind in
      F) funcs[$name]=1 ;;
      C) locs[$name]+="${locs[$name]:+, }$loc" ;;
      E) errors+=("$loc: cannot tell where a quote or \$( ... ) opened here ends, so its commands were not checked") ;;
    esac
  done < <(awk -f "$repo/hack/check-commands.awk" "$@")
  for w in $(compgen -b) $(compgen -k) $BUILT; do skip[$w]=1; done
  for w in $(deps_packages); do indeps[$w]=1; done

  # Resolve every name to a file, then ask dpkg once for the owners of all of them and their twins.
  local -A path=()
  local names=() variants=()
  for name in "${!locs[@]}"; do
    [ -n "${skip[$name]:-}${funcs[$name]:-}${ALLOW[$name]:-}" ] && continue
    if [[ $name == /* ]]; then p=$name; else p=$(PATH=$SYS_PATH type -P "$name" || true); fi
    if [ -z "$p" ] || [ ! -e "$p" ]; then
      errors+=("$name (${locs[$name]}): not found on this machine. Add the Debian package that provides it to test/cluster/install-deps.sh, or, if it runs only elsewhere (the UML guest, a container image), to ALLOW in hack/check-commands.sh with the reason")
      continue
    fi
    names+=("$name"); path[$name]=$p
    mapfile -t -O ${#variants[@]} variants < <(twins "$p")
  done
  if [ ${#names[@]} -gt 0 ]; then
    while IFS= read -r line; do
      [[ $line == *": /"* && $line != diversion* ]] || continue
      owner[${line#*: }]=${line%%: *}
    done < <(dpkg -S "${variants[@]}" 2>/dev/null || true)
    while read -r p v; do prio[$p]=$v; done < <(dpkg-query -W -f='${Package} ${Priority}\n')
  fi
  for name in "${names[@]}"; do
    p=${path[$name]} pkg=
    while read -r v; do pkg=${owner[$v]:-}; [ -n "$pkg" ] && break; done < <(twins "$p")
    pkg=${pkg%%,*} pkg=${pkg%%:*}
    if [ -z "$pkg" ]; then
      errors+=("$name (${locs[$name]}): $p belongs to no Debian package; install it from one in test/cluster/install-deps.sh, or build it in the repo and add it to BUILT in hack/check-commands.sh")
    elif [ "${prio[$pkg]:-}" != required ] && [ -z "${indeps[$pkg]:-}" ]; then
      errors+=("$name (${locs[$name]}): from Debian package $pkg (Priority: ${prio[$pkg]:-unknown}), which a minimal Debian lacks and ${CHECK_COMMANDS_DEPS:-test/cluster/install-deps.sh} does not list: add $pkg to its pkgs=( ... )")
    fi
  done
  if [ ${#errors[@]} -gt 0 ]; then
    printf 'check-commands: %s\n' "${errors[@]}" | sort
    return 1
  fi
  echo "check-commands: every command called by $# scripts is provided"
}

self_test() {
  local tmp out rc=0 w
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  printf 'pkgs=(\n)\n' >"$tmp/no-deps.sh"
  # Like the UML test's guest: insmod (kmod) only inside a heredoc that is a script; xfs_quota
  # (xfsprogs) behind timeout. Both packages are in install-deps.sh and neither is Priority required.
  # The fixtures have no #! line, so that this file's own check does not read them as scripts.
  cat >"$tmp/guest.sh" <<'EOF'
cat >"$out/init" <<INIT
#!/bin/sh
insmod \$mods/loop.ko 2>/dev/null || true
INIT
timeout 5 xfs_quota -x -c report / | sed 1d
EOF
  # Every command position, each calling a program that exists nowhere.
  cat >"$tmp/positions.sh" <<'EOF'
zz-line; a | zz-pipe && zz-and || zz-or; (zz-sub) & x=$(zz-cmdsub "$(zz-nested)") y=`zz-tick`
if zz-if; then zz-then; else zz-else; fi; while zz-while; do zz-do; done; ! zz-not
exec zz-exec; xargs -r -n 1 zz-xargs; timeout -s KILL 5 zz-timeout; env -u A B=1 zz-env
nsenter -t 1 -m -- zz-nsenter; unshare --mount --propagation private -- zz-unshare
sh -c 'zz-shc'; trap 'zz-trap' EXIT; find . -exec zz-find {} +; wait_for "x" 5 zz-waitfor
EOF
  # Nothing here is a command: builtins, functions, variables, arguments, patterns, data heredocs.
  cat >"$tmp/quiet.sh" <<'EOF'
zz_fn() { echo zz-arg "zz-quoted; zz-inquote"; }
function zz_fn2 { zz_fn; }
"$zz_var" zz-argument; ${zz_cmd:-zz-default} # zz-comment
case $1 in zz-pat1|zz-pat2) zz_fn ;; zz-pat3) zz_fn2 ;; esac
for zz in zz-list; do [[ -n $zz ]] && printf '%s' "$zz"; done
cat <<YAML
zz-yaml: x
YAML
EOF
  out=$(CHECK_COMMANDS_DEPS=$tmp/no-deps.sh check "$tmp/guest.sh" 2>&1) && rc=1
  grep -q '^check-commands: insmod .*package kmod' <<<"$out" || { echo "self-test: insmod in a guest heredoc not flagged as kmod:"; echo "$out"; rc=1; }
  grep -q '^check-commands: xfs_quota .*package xfsprogs' <<<"$out" || { echo "self-test: xfs_quota after timeout not flagged as xfsprogs:"; echo "$out"; rc=1; }
  out=$(check "$tmp/guest.sh" 2>&1) || { echo "self-test: kmod and xfsprogs are in install-deps.sh but were flagged:"; echo "$out"; rc=1; }
  out=$(check "$tmp/positions.sh" 2>&1) && rc=1
  local positions="line pipe and or sub cmdsub nested tick if then else while do not exec xargs timeout
    env nsenter unshare shc trap find waitfor"
  for w in $positions; do
    grep -q "^check-commands: zz-$w " <<<"$out" || { echo "self-test: zz-$w not found as a command"; rc=1; }
  done
  out=$(check "$tmp/quiet.sh" 2>&1) || { echo "self-test: words that are not commands were flagged:"; echo "$out"; rc=1; }
  [ $rc = 0 ] && echo "check-commands: self-test passed"
  return $rc
}

if [ "${1:-}" = --self-test ]; then self_test; else check "$@"; fi
