#!/bin/sh
# The harness's driver (ABI namespace-driver-v1): answers where it ran, i.e. the node daemon that
# started it and the network namespace it is in, with its payload; after SLEEP_SECONDS when set.
payload=$(cat)
if [ -n "$SLEEP_SECONDS" ]; then sleep "$SLEEP_SECONDS"; fi
printf '{"node_id":"%s","net_ns":"%s","invocation_id":"%s","echo":%s}\n' "$ACHERON_NODE_ID" "$(readlink /proc/self/ns/net)" "$ACHERON_INVOCATION_ID" "${payload:-null}"
