#!/usr/bin/env bash
# The main job, end to end: a control server, and a node with manifests.d/ mounted on
# /mnt/acheron that joins it; one invoke shown through the files and through `acheron invoke` (and
# one of the wasm echo),
# then the catalog as the control server sees it, WorldFS on /mnt/acheron-world relaying an invoke
# to the node, the same invoke through the control server without a mount, and a user's WorldFS
# mount of a project following the project's change live. All keep running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
MNT=${ACHERON_DEMO_MOUNT:-/mnt/acheron}
WORLD=${ACHERON_DEMO_WORLD_MOUNT:-/mnt/acheron-world}
USER_WORLD=${ACHERON_DEMO_USER_WORLD_MOUNT:-/mnt/acheron-user}
LOG=${ACHERON_DEMO_LOG:-/tmp/acheron-demo.log}
DATA=${ACHERON_DEMO_DATA:-/var/lib/acheron/demo-control}
CONTROL_LOG=${ACHERON_DEMO_CONTROL_LOG:-/tmp/acheron-demo-control.log}
URL=ws://127.0.0.1:18790

if ! curl -sf http://127.0.0.1:18791/livez >/dev/null 2>&1; then
  echo "# starting the control server (data: $DATA, log: $CONTROL_LOG)"
  mkdir -p "$DATA"
  nohup acheron control --data-dir "$DATA" --log-file "$CONTROL_LOG" >/dev/null 2>&1 &
  echo $! > "$DATA/control.pid"
  for _ in $(seq 50); do curl -sf http://127.0.0.1:18791/livez >/dev/null 2>&1 && break; sleep 0.1; done
fi
acheron token join --data-dir "$DATA" | tail -1 > "$DATA/demo-join-token"
acheron token list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin"])' > "$DATA/demo-admin-token"
acheron token list --data-dir "$DATA" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["user"])' > "$DATA/demo-user-token"

for old in "$USER_WORLD" "$WORLD" "$MNT"; do
  if grep -qs " $old " /proc/self/mountinfo; then
    echo "# $old is mounted already: unmounting the previous demo"
    umount "$old" 2>/dev/null || fusermount -uz "$old"
    sleep 1
  fi
done

echo "# starting the node daemon (returns once the tree is live; log: $LOG)"
set -x
acheron node --daemon --mount "$MNT" --services-dir "$PWD/manifests.d" --node-id demo \
  --terminal-id demo --export "repo=$PWD:ro" --log-file "$LOG" \
  --control-url "$URL" --join-token-file "$DATA/demo-join-token" --reconnect-backoff-ms 200
ls "$MNT" "$MNT/services" "$MNT/services/echo" "$MNT/services/echo/control"
echo '{"msg":"hi"}' > "$MNT/services/echo/control/invoke.json"
cat "$MNT/services/echo/result.json"
cat "$MNT/services/echo/status.json"
acheron invoke echo '{"msg":"hi from acheron invoke"}' --mount "$MNT"
acheron invoke echo '{"fail":"a driver failure, reported with exit code 1"}' --mount "$MNT" || echo "exit code $?"
cat "$MNT/services/echo/last_error.txt"
# the same echo as a WASI module (manifests.d/echo-wasm.json): no process per invocation
echo '{"msg":"hi"}' > "$MNT/services/echo-wasm/control/invoke.json"
cat "$MNT/services/echo-wasm/result.json"
acheron invoke echo-wasm '{"msg":"hi from a wasm instance"}' --mount "$MNT"
cat "$MNT/services/echo-wasm/HOST.json"
acheron invoke terminal-demo '{"argv":["uname","-sr"]}' --mount "$MNT"
head -3 "$MNT/fs/repo/README.md"
for _ in $(seq 50); do grep -q '"connected"' "$MNT/NODE.json" && break; sleep 0.1; done
sleep 1.2   # the node publishes its catalog within a second of a change
acheron node get demo --control-url "$URL" --token-file "$DATA/demo-admin-token"
# the catalog event stream: the last events about this node, then live ones (2 s here)
timeout 2 acheron node watch demo --replay-limit 5 --control-url "$URL" --token-file "$DATA/demo-admin-token" || true
# WorldFS: every node the token may see; live files are relayed to the node that owns them
acheron world --daemon --mount "$WORLD" --control-url "$URL" --token-file "$DATA/demo-admin-token" --log-file "$LOG.world"
ls "$WORLD/nodes" "$WORLD/nodes/demo/services"
cat "$WORLD/nodes/demo/STATUS.json"
echo '{"msg":"hi through WorldFS"}' > "$WORLD/nodes/demo/services/echo/control/invoke.json"
cat "$WORLD/nodes/demo/services/echo/result.json"
# the same invoke without any mount: one relay through the control server
acheron invoke echo '{"msg":"hi through the control server"}' --node demo --control-url "$URL" --token-file "$DATA/demo-admin-token"
# a user's WorldFS mount of project demo-project: it shows the nodes the project mounts, and follows
# a change of the project while it runs (no remount, no reconnect)
ADMIN=(--control-url "$URL" --token-file "$DATA/demo-admin-token")
echo '{"mounts":[],"access_policy":{"actions":{"read":"open","observe":"open","invoke":"open"}}}' |
  acheron project upsert demo-project --file - "${ADMIN[@]}" >/dev/null
acheron world --daemon --mount "$USER_WORLD" --control-url "$URL" --token-file "$DATA/demo-user-token" \
  --project demo-project --log-file "$LOG.user-world"
ls "$USER_WORLD/nodes"
echo '{"mounts":[{"node_id":"demo"}]}' | acheron project upsert demo-project --file - "${ADMIN[@]}" >/dev/null
for _ in $(seq 50); do [ -d "$USER_WORLD/nodes/demo" ] && break; sleep 0.1; done
ls "$USER_WORLD/nodes" "$USER_WORLD/nodes/demo/services"
set +x
echo
echo "# the node keeps running: try the files under $MNT; stop it with: umount $MNT"
echo "# WorldFS keeps running on $WORLD and, for the user, on $USER_WORLD: stop them with: umount $WORLD $USER_WORLD"
echo "# the control server keeps running too: acheron node list --control-url $URL --token-file $DATA/demo-admin-token"
echo "# stop it with: kill \$(cat $DATA/control.pid)"
