#!/usr/bin/env bash
# Multi-node runtime harness (docs/MULTI_NODE_RUNTIME_HARNESS.md). Without ACHERON_CONTROL_URL it
# brings up its own fleet: a control server in a network namespace of its own and HARNESS_NODES real
# node daemons (default 3), each in its own namespace, joined to the server's by a veth pair; then it
# runs the checks (scripts/multi-node/harness.ts) and tears everything down, also on failure or
# Ctrl-C. With ACHERON_CONTROL_URL and ACHERON_TOKEN (or ACHERON_TOKEN_FILE) it checks a running
# fleet instead. One line per check; `multi-node runtime harness passed` at the end; exit 1 when a
# check failed, 2 on bad usage.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS_NODES=${HARNESS_NODES:-3}
EXPECTED_NODES=${EXPECTED_NODES:-}
HARNESS_SUBNET=${HARNESS_SUBNET:-10.213}
HARNESS_KEEP=${HARNESS_KEEP:-}

say() { printf 'multi-node runtime harness: %s\n' "$*" >&2; }
usage() { say "$*"; exit 2; }

[[ "$HARNESS_NODES" =~ ^[1-9][0-9]*$ && "$HARNESS_NODES" -le 254 ]] || usage "HARNESS_NODES=$HARNESS_NODES: expected 1 to 254"
[[ "$HARNESS_SUBNET" =~ ^10\.([0-9]{1,3})$ && "${BASH_REMATCH[1]}" -le 255 ]] || usage "HARNESS_SUBNET=$HARNESS_SUBNET: expected 10.<0-255> (the fleet uses <subnet>.<i>.0/24 inside its own namespaces)"
[[ -f "$REPO/dist/cli/main.js" ]] || { say "the build is missing ($REPO/dist): run make build first"; exit 1; }
command -v python3 >/dev/null || { say "python3 is missing: the checks touch the mounts through python3"; exit 1; }

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/acheron-harness-XXXXXX")
export HARNESS_RUN_DIR=$run_dir
namespaces=()

# Everything this run made goes, whatever happened: processes in its namespaces or named in its pid
# file, mounts under its directory (lazily: a dead daemon's mount is gone with it), the namespaces
# (their veth pairs go with them), then the directory.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pids=()
  for ns in "${namespaces[@]}"; do
    while read -r pid; do [[ -n "$pid" ]] && pids+=("$pid"); done < <(ip netns pids "$ns" 2>/dev/null || true)
  done
  if [[ -f "$run_dir/pids" ]]; then
    while read -r pid; do
      # Only a process of this run (a recycled pid would not name the run directory).
      [[ -n "$pid" ]] && tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | grep -qF "$run_dir" && pids+=("$pid")
    done < "$run_dir/pids"
  fi
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "${pids[@]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[@]}" 2>/dev/null || true
  fi
  while read -r mount; do
    fusermount -uz "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
  done < <(awk -v dir="$run_dir/" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  for ns in "${namespaces[@]}"; do ip netns delete "$ns" 2>/dev/null || true; done
  if awk -v dir="$run_dir/" 'index($5, dir) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    say "leaving $run_dir: something is still mounted under it"
  elif [[ -n "$HARNESS_KEEP" ]]; then
    say "kept $run_dir (HARNESS_KEEP): logs of every daemon are there"
  else
    rm -rf "$run_dir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

driver=("$(command -v node)" --import @isaacs/ts-node-temp-fork-for-pr-2009/import "$REPO/scripts/multi-node/harness.ts")
export TS_NODE_TRANSPILE_ONLY=1 TS_NODE_PROJECT="$REPO/tsconfig.json"

if [[ -n "${ACHERON_CONTROL_URL:-}" ]]; then
  [[ -n "${ACHERON_TOKEN:-}${ACHERON_TOKEN_FILE:-}" ]] || usage "ACHERON_CONTROL_URL is set: ACHERON_TOKEN or ACHERON_TOKEN_FILE (an admin token) must be too"
  export HARNESS_MODE=existing
  echo "# run directory $run_dir"
  cd "$REPO"
  "${driver[@]}"
  exit $?
fi

if [[ -n "$EXPECTED_NODES" ]]; then IFS=', ' read -r -a node_ids <<<"$EXPECTED_NODES"; else node_ids=(); for i in $(seq 1 "$HARNESS_NODES"); do node_ids+=("node-$i"); done; fi
for id in "${node_ids[@]}"; do [[ "$id" =~ ^[A-Za-z0-9._-]{1,128}$ && "$id" != . && "$id" != .. ]] || usage "EXPECTED_NODES: $id is not a node id (1-128 characters of [A-Za-z0-9._-])"; done
((${#node_ids[@]} <= 254)) || usage "EXPECTED_NODES: at most 254 nodes"

# The harness's own fleet needs root, iproute2, nsenter and network namespaces: say which is missing.
unsupported() { say "this machine cannot run the harness's own fleet: $*; run as root on Linux with iproute2 and network namespaces, or check a running fleet with ACHERON_CONTROL_URL and ACHERON_TOKEN"; exit 1; }
command -v ip >/dev/null || unsupported "ip (iproute2) is not installed"
command -v nsenter >/dev/null || unsupported "nsenter (util-linux) is not installed"
[[ "$(id -u)" == 0 ]] || unsupported "it needs root (uid $(id -u))"
[[ -e /dev/fuse ]] || unsupported "/dev/fuse is missing"

# Names unique to this run: several runs (and other tests) may share the machine.
run_id=$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')
control_ns="acheron-h$run_id-ctl"
echo "# run $run_id: network namespaces acheron-h$run_id-*, directory $run_dir"
# Listed before they exist: a signal between the two must not leave one behind.
namespaces+=("$control_ns")
if ! error=$(ip netns add "$control_ns" 2>&1); then unsupported "ip netns add failed: ${error//$'\n'/ }"; fi
ip -n "$control_ns" link set lo up

fleet_nodes=()
for i in "${!node_ids[@]}"; do
  n=$((i + 1))
  ns="acheron-h$run_id-n$n"
  control_link="a${run_id}c$n"
  node_link="a${run_id}n$n"
  namespaces+=("$ns")
  ip netns add "$ns"
  # Created straight into the two namespaces: nothing of it ever exists in the host's.
  ip link add "$control_link" netns "$control_ns" type veth peer name "$node_link" netns "$ns"
  ip -n "$control_ns" addr add "$HARNESS_SUBNET.$n.1/24" dev "$control_link"
  ip -n "$ns" addr add "$HARNESS_SUBNET.$n.2/24" dev "$node_link"
  ip -n "$control_ns" link set "$control_link" up
  ip -n "$ns" link set "$node_link" up
  ip -n "$ns" link set lo up
  fleet_nodes+=("{\"node_id\":\"${node_ids[$i]}\",\"netns\":\"$ns\",\"link\":\"$control_link\",\"control_address\":\"$HARNESS_SUBNET.$n.1\",\"node_address\":\"$HARNESS_SUBNET.$n.2\"}")
done
printf '{"control_netns":"%s","nodes":[%s]}\n' "$control_ns" "$(IFS=,; echo "${fleet_nodes[*]}")" > "$run_dir/fleet.json"

export HARNESS_MODE=own
cd "$REPO"
# The checks run in the control server's namespace (the server listens there); nsenter --net keeps
# the mount namespace, so every FUSE mount stays visible to the host (SPEC §12).
nsenter --net="/run/netns/$control_ns" "${driver[@]}"
