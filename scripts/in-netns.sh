#!/usr/bin/env bash
# Runs a command inside a private network namespace with only a loopback interface,
# so that nothing a test, bench or demo sends (multicast included) can leave this machine.
#
#   bash scripts/in-netns.sh <command> [args...]
#
# Inside: `lo` is up, 224.0.0.0/4 is routed to `lo` (so even the production gossip defaults
# stay on loopback), 127.0.0.2, 127.0.0.3 ... act as separate hosts.
# Without root (or without `unshare`), the command runs on the host's loopback instead and
# CLUSTER_TEST_NETNS=0 tells tests to pin multicast to 127.0.0.1 themselves.
set -euo pipefail

if [ "${CLUSTER_TEST_NETNS:-}" = "1" ]; then
  exec "$@"
fi

if [ "$(id -u)" = "0" ] && command -v unshare >/dev/null && command -v ip >/dev/null; then
  export CLUSTER_TEST_NETNS=1
  exec unshare -n -- bash -c '
    set -e
    ip link set lo up
    ip route add 224.0.0.0/4 dev lo src 127.0.0.1 2>/dev/null || true
    exec "$@"
  ' in-netns "$@"
fi

echo "in-netns: not root or no unshare/ip: running on host loopback only (multicast pinned to 127.0.0.1)" >&2
export CLUSTER_TEST_NETNS=0
exec "$@"
