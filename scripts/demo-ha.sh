#!/usr/bin/env bash
# The HA control plane, end to end (docs/operations.md "HA control plane"): a 3-member etcd on
# loopback, two control servers on it, a node with manifests.d/ and a WorldFS mount both given
# both servers; then the server they use is killed (kill -9) and they carry on with the other one:
# the node keeps its identity and never shows offline, WorldFS resumes and relays an invoke. Last, a
# third server given one etcd member is cut off from etcd (the member killed, quorum kept): a watch
# on it moves to B, whose store answers. All keep running afterwards (the script prints how to stop them).
set -euo pipefail
cd "$(dirname "$0")/.."
ACHERON=${ACHERON:-acheron}
MNT=${ACHERON_DEMO_HA_MOUNT:-/mnt/acheron-ha}
WORLD=${ACHERON_DEMO_HA_WORLD_MOUNT:-/mnt/acheron-ha-world}
RUN=${ACHERON_DEMO_HA_DIR:-/tmp/acheron-demo-ha}
# Away from a system etcd on 2379/2380 and from `make demo`'s server on 18790/18791.
ETCD_BASE=${ACHERON_DEMO_HA_ETCD_PORT:-23790}
A_PORT=18890
B_PORT=18892
C_PORT=18894
A=ws://127.0.0.1:$A_PORT
B=ws://127.0.0.1:$B_PORT
C=ws://127.0.0.1:$C_PORT
acheron() { $ACHERON "$@"; }

stop_previous() {
  for old in "$WORLD" "$MNT"; do
    if grep -qs " $old " /proc/self/mountinfo; then umount "$old" 2>/dev/null || fusermount -uz "$old"; fi
  done
  if [ -d "$RUN" ]; then
    for pid in "$RUN"/*.pid; do [ -e "$pid" ] && kill -9 "$(cat "$pid")" 2>/dev/null || true; done
    rm -rf "$RUN"
  fi
}
stop_previous
mkdir -p "$RUN"

echo "# a 3-member etcd on 127.0.0.1:$ETCD_BASE.. (data and logs in $RUN)"
CLUSTER=""
EPS=""
for i in 1 2 3; do
  c=$((ETCD_BASE + (i - 1) * 10)); p=$((c + 1))
  CLUSTER="$CLUSTER${CLUSTER:+,}m$i=http://127.0.0.1:$p"
  EPS="$EPS${EPS:+,}http://127.0.0.1:$c"
done
for i in 1 2 3; do
  c=$((ETCD_BASE + (i - 1) * 10)); p=$((c + 1))
  etcd --name m$i --data-dir "$RUN/etcd-m$i" \
    --listen-client-urls http://127.0.0.1:$c --advertise-client-urls http://127.0.0.1:$c \
    --listen-peer-urls http://127.0.0.1:$p --initial-advertise-peer-urls http://127.0.0.1:$p \
    --initial-cluster "$CLUSTER" --initial-cluster-token acheron-demo-ha --initial-cluster-state new \
    --logger zap --log-outputs stderr > "$RUN/etcd-m$i.log" 2>&1 &
  echo $! > "$RUN/etcd-m$i.pid"
done
for _ in $(seq 100); do etcdctl --endpoints="$EPS" --command-timeout=1s endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
etcdctl --endpoints="$EPS" endpoint status -w table

STORE=(--store etcd --etcd-endpoints "$EPS")
acheron token rotate admin "${STORE[@]}" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' > "$RUN/admin-token"
acheron token join "${STORE[@]}" | tail -1 > "$RUN/join-token"

echo "# two control servers on it: A ($A) and B ($B)"
for s in a:$A_PORT b:$B_PORT; do
  name=${s%%:*}; port=${s#*:}
  nohup $ACHERON control "${STORE[@]}" --server-id "demo-$name" --server-ttl-ms 2000 --offline-grace-ms 5000 \
    --listen 127.0.0.1:$port --http-listen 127.0.0.1:$((port + 1)) --log-file "$RUN/control-$name.log" >/dev/null 2>&1 &
  echo $! > "$RUN/control-$name.pid"
done
for port in $((A_PORT + 1)) $((B_PORT + 1)); do
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null 2>&1 && break; sleep 0.1; done
done

echo "# a node and a WorldFS mount, each given both servers (A first)"
set -x
acheron node --daemon --mount "$MNT" --services-dir "$PWD/manifests.d" --node-id demo-ha \
  --log-file "$RUN/node.log" --state-file "$RUN/node-state.json" \
  --control-url "$A,$B" --join-token-file "$RUN/join-token" --reconnect-backoff-ms 200
for _ in $(seq 100); do grep -q '"connected"' "$MNT/NODE.json" && break; sleep 0.1; done
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$MNT/NODE.json"
acheron world --daemon --mount "$WORLD" --control-url "$A,$B" --token-file "$RUN/admin-token" --log-file "$RUN/world.log"
sleep 1.2   # the node publishes its catalog within a second
ls "$WORLD/nodes" "$WORLD/nodes/demo-ha/services"
echo '{"msg":"through A"}' > "$WORLD/nodes/demo-ha/services/echo/control/invoke.json"
cat "$WORLD/nodes/demo-ha/services/echo/result.json"
timeout 10 $ACHERON node watch --replay-limit 3 --control-url "$A,$B" --token-file "$RUN/admin-token" > "$RUN/watch.out" 2> "$RUN/watch.err" &
WATCH=$!
sleep 1
curl -s http://127.0.0.1:$((A_PORT + 1))/metrics | grep '^acheron_connections{role="node"'

: "kill -9 of server A, which the node and the mount use"
kill -9 "$(cat "$RUN/control-a.pid")"
for _ in $(seq 100); do grep -q "\"url\": \"$B\"" "$MNT/NODE.json" && grep -q '"connected"' "$MNT/NODE.json" && break; sleep 0.1; done
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["control"])' "$MNT/NODE.json"
curl -s http://127.0.0.1:$((B_PORT + 1))/metrics | grep '^acheron_connections{role="node"'
for _ in $(seq 100); do grep -q 'watch resumed' "$RUN/world.log" && break; sleep 0.1; done
grep -a 'watch resumed' "$RUN/world.log" | tail -1
echo '{"msg":"through B, after the failover"}' > "$WORLD/nodes/demo-ha/services/echo/control/invoke.json"
cat "$WORLD/nodes/demo-ha/services/echo/result.json"
sleep 6   # longer than A's registration and the grace period: still online
acheron node get demo-ha --control-url "$A,$B" --token-file "$RUN/admin-token" | head -1
wait "$WATCH" || true
cat "$RUN/watch.out" "$RUN/watch.err"

: "server C, given etcd member m1 only, and a watch given C then B; then m1 is killed: C is cut off from etcd while quorum holds"
nohup $ACHERON control --store etcd --etcd-endpoints "${EPS%%,*}" --server-id demo-c --server-ttl-ms 2000 --offline-grace-ms 5000 \
  --listen 127.0.0.1:$C_PORT --http-listen 127.0.0.1:$((C_PORT + 1)) --log-file "$RUN/control-c.log" >/dev/null 2>&1 &
echo $! > "$RUN/control-c.pid"
for _ in $(seq 100); do curl -sf http://127.0.0.1:$((C_PORT + 1))/readyz >/dev/null 2>&1 && break; sleep 0.1; done
timeout 20 $ACHERON node watch --replay-limit 0 --control-url "$C,$B" --token-file "$RUN/admin-token" > "$RUN/watch-c.out" 2> "$RUN/watch-c.err" &
WATCH=$!
sleep 1
kill -9 "$(cat "$RUN/etcd-m1.pid")"
# C tells its clients its store is lost; the watch moves to B, whose store answers, and resumes there.
for _ in $(seq 150); do grep -q 'watching again on' "$RUN/watch-c.err" && break; sleep 0.1; done
cat "$RUN/watch-c.err"
kill "$WATCH" 2>/dev/null || true
set +x
echo "# running: etcd (2 of 3: m1 was killed), control servers B and C (C cut off from etcd), the node on $MNT, WorldFS on $WORLD"
echo "# stop them: umount $WORLD $MNT (the node and WorldFS exit with their mounts); kill \$(cat $RUN/*.pid)"
