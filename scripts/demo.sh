#!/usr/bin/env bash
# The main job, end to end: a node with manifests.d/ mounted on /mnt/acheron, one invoke shown.
# Leaves the node running (stop it with `umount /mnt/acheron`).
set -euo pipefail
cd "$(dirname "$0")/.."
MNT=${ACHERON_DEMO_MOUNT:-/mnt/acheron}
LOG=${ACHERON_DEMO_LOG:-/tmp/acheron-demo.log}

if grep -qs " $MNT " /proc/self/mountinfo; then
  echo "# $MNT is mounted already: unmounting the previous demo"
  umount "$MNT" 2>/dev/null || fusermount -uz "$MNT"
  sleep 1
fi

echo "# starting the node daemon (returns once the tree is live; log: $LOG)"
set -x
acheron node --daemon --mount "$MNT" --services-dir "$PWD/manifests.d" --node-id demo \
  --terminal-id demo --export "repo=$PWD:ro" --log-file "$LOG"
ls "$MNT" "$MNT/services" "$MNT/services/echo" "$MNT/services/echo/control"
echo '{"msg":"hi"}' > "$MNT/services/echo/control/invoke.json"
cat "$MNT/services/echo/result.json"
cat "$MNT/services/echo/status.json"
acheron invoke echo '{"msg":"hi from acheron invoke"}' --mount "$MNT"
acheron invoke echo '{"fail":"a driver failure, reported with exit code 1"}' --mount "$MNT" || echo "exit code $?"
cat "$MNT/services/echo/last_error.txt"
acheron invoke terminal-demo '{"argv":["uname","-sr"]}' --mount "$MNT"
head -3 "$MNT/fs/repo/README.md"
set +x
echo
echo "# the node keeps running: try the files under $MNT; stop it with: umount $MNT"
