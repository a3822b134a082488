#!/usr/bin/env bash
# Throughput of my-key-store against redis-server, side by side:
# redis-benchmark SET and GET (50 clients, 100-byte values, random keys)
# against
#   1. a 3-node cluster on 127.0.0.1 (N = 3, R = W = QUORUM),
#   2. a single node (N = 1),
#   3. a local redis-server (Debian's, no persistence: its default durability
#      is weaker than ours, which syncs every acknowledged write): the
#      reference of the ratios,
#   4. the same redis-server with appendfsync always, whose durability
#      matches ours (each acknowledged SET is fsynced),
# all run by this script in one go, then printed with ratios to redis-server.
#
# usage: tools/bench_cluster.sh [BUILD_DIR] [REQUESTS]
#   BUILD_DIR  where mks-node was built (default build-release; build it with
#              ./dev.sh bench or ninja -C build-release tools/mks-node)
#   REQUESTS   per test (default 20000)
# Needs redis-benchmark, redis-server and curl (./dev.sh deps installs them).
# All processes share this machine's cores, so the figures are relative.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build-release}
REQUESTS=${2:-20000}
MKS_NODE=$PWD/$BUILD_DIR/tools/mks-node
[ -x "$MKS_NODE" ] || { echo "no $MKS_NODE: build it first" >&2; exit 2; }
. tools/cluster_lib.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mks-bench.XXXXXX")
REDIS_PID=""

cleanup() {
  local dir
  for dir in "$WORK"/*/; do
    [ -d "$dir" ] || continue
    CLUSTER_DIR=${dir%/}
    stop_cluster 3
  done
  if [ -n "$REDIS_PID" ]; then kill "$REDIS_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# bench PORT: prints "SET_RPS GET_RPS SET_P50_MS GET_P50_MS".
bench() {
  redis-benchmark -p "$1" -c 50 -d 100 -r 100000 -n "$REQUESTS" -t set,get --csv 2>/dev/null |
    awk -F'","' '
      /^"SET"/ { set = $2; set_p50 = $5 }
      /^"GET"/ { get = $2; get_p50 = $5 }
      END { gsub(/"/, "", set_p50); gsub(/"/, "", get_p50); print set, get, set_p50, get_p50 }'
}

# cluster NAME COUNT N: starts a cluster and prints node 1's RESP port.
cluster() {
  CLUSTER_DIR=$WORK/$1
  mkdir -p "$CLUSTER_DIR"
  cluster_ports "$2"
  write_configs "$2" "$3" "log_level: warn"
  local i
  for ((i = 1; i <= $2; i++)); do start_node "$i"; done
  wait_connected "$2" >&2
}

echo "redis-benchmark: 50 clients, 100-byte values, $REQUESTS requests per test" >&2
cluster three 3 3
read -r three_set three_get three_set_p50 three_get_p50 <<<"$(bench "${RESP_PORT[1]}")"
stop_cluster 3
cluster one 1 1
read -r one_set one_get one_set_p50 one_get_p50 <<<"$(bench "${RESP_PORT[1]}")"
stop_cluster 1

# start_redis APPENDONLY FSYNC: starts redis-server in the background on a
# free port; sets REDIS_PORT and REDIS_PID.
start_redis() {
  REDIS_PORT=$(free_ports 1)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly "$1" \
    --appendfsync "$2" --dir "$WORK" --daemonize no >"$WORK/redis-$1.log" 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" PING >/dev/null 2>&1 && break; sleep 0.1; done
}
stop_redis() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=""; }

# The reference the ratios use: redis without persistence.
start_redis no everysec
read -r redis_set redis_get redis_set_p50 redis_get_p50 <<<"$(bench "$REDIS_PORT")"
stop_redis
# Durability like ours: every acknowledged SET is fsynced first.
start_redis yes always
read -r fsync_set fsync_get fsync_set_p50 fsync_get_p50 <<<"$(bench "$REDIS_PORT")"
stop_redis

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
printf '%-34s %12s %12s %9s %9s %10s %10s\n' target "SET req/s" "GET req/s" "SET p50" "GET p50" \
  "SET/redis" "GET/redis"
row() {
  printf '%-34s %12s %12s %7sms %7sms %10s %10s\n' "$1" "$2" "$3" "$4" "$5" \
    "$(ratio "$2" "$redis_set")" "$(ratio "$3" "$redis_get")"
}
row "mks 3 nodes (N=3, QUORUM)" "$three_set" "$three_get" "$three_set_p50" "$three_get_p50"
row "mks 1 node (N=1)" "$one_set" "$one_get" "$one_set_p50" "$one_get_p50"
row "redis-server (no persistence)" "$redis_set" "$redis_get" "$redis_set_p50" "$redis_get_p50"
row "redis-server (appendfsync always)" "$fsync_set" "$fsync_get" "$fsync_set_p50" "$fsync_get_p50"
