#!/usr/bin/env bash
# How fast a joining node's partitions stream to it, against a plain
# sequential copy of the same bytes on the same disk, and what the join does
# to clients:
#   1. a 3-node cluster on 127.0.0.1 (node 1 bootstraps, 2 and 3 join;
#      N = 3, R = W = QUORUM) is loaded with MB megabytes (64 KiB values,
#      unique keys, parallel keep-alive HTTP writers),
#   2. the baseline: node 1's data directory copied with cp -r, then sync,
#   3. a 4th node joins (--join config, stream_rate_bytes_per_s: 0, no rate
#      limit), timed from its start until node 1 holds it normal; the bytes
#      it pulled (its /v1/ring "streams") over that time are the streaming
#      rate,
#   4. a light client load (reads of the loaded keys and 1 KiB writes, both
#      at QUORUM) runs before and during the join: its p99 and errors,
# then prints the figures (streaming MB/s / copy MB/s, target 0.5 or more).
#
# usage: tools/bench_join.sh [BUILD_DIR] [MB]
#   BUILD_DIR  where mks-node was built (default build-release; build it with
#              ./dev.sh bench or ninja -C build-release tools/mks-node)
#   MB         data loaded (default 1024)
# Needs curl and python3. Node processes, loaders and the copy share this
# machine's cores and disk, so the figures are relative and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build-release}
MB=${2:-1024}
MKS_NODE=$PWD/$BUILD_DIR/tools/mks-node
[ -x "$MKS_NODE" ] || { echo "no $MKS_NODE: build it first" >&2; exit 2; }
. tools/cluster_lib.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mks-bench-join.XXXXXX")
CLUSTER_DIR=$WORK/cluster
mkdir -p "$CLUSTER_DIR"
VALUE_BYTES=65536
KEYS=$((MB * 1024 * 1024 / VALUE_BYTES))
WRITERS=8
BEFORE_S=${BENCH_JOIN_BEFORE_S:-20}   # client load measured before the join
LOAD_PID=""; SAMPLER_PID=""

cleanup() {
  local pid
  for pid in "$LOAD_PID" "$SAMPLER_PID"; do
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  done
  stop_cluster 4
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
# cpu_s I: CPU seconds (user + system) node I used so far.
cpu_s() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' \
    "/proc/$(cat "$CLUSTER_DIR/node-$1.pid")/stat" 2>/dev/null || echo 0
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# mbps BYTES SECONDS_FROM SECONDS_TO
mbps() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", (b > a ? n / 1048576 / (b - a) : 0) }'; }
ring_json() { curl -sf "http://127.0.0.1:${HTTP_PORT[$1]}/v1/ring" 2>/dev/null || true; }
# stream_field I FIELD: FIELD of node I's /v1/ring "streams" (0 if absent).
stream_field() {
  ring_json "$1" | python3 -c '
import json, sys
try: print(json.load(sys.stdin)["streams"][sys.argv[1]])
except Exception: print(0)' "$2"
}
# metric I NAME_WITH_LABELS: a sample of node I's /metrics (0 if absent).
metric() {
  curl -sf "http://127.0.0.1:${HTTP_PORT[$1]}/metrics" 2>/dev/null |
    awk -v m="$2" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}
# wait_normal I [SECONDS]: waits until node 1 holds node I normal.
wait_normal() {
  local deadline=$(( $(date +%s) + ${2:-60} ))
  until [ "$(member_state_of 1 "$1")" = normal ]; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "node $1 did not become normal; its log:" >&2
      tail -n 30 "$CLUSTER_DIR/node-$1.log" >&2; return 1; }
    sleep 0.1
  done
}
wait_http() {
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:${HTTP_PORT[$1]}/v1/status" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $1 does not serve HTTP; its log:" >&2; tail -n 30 "$CLUSTER_DIR/node-$1.log" >&2
  return 1
}

# The bulk loader: WRITERS keep-alive connections spread over nodes 1-3,
# each PUTting its share of the keys bulk-NNNNNNNN; values are distinct
# slices of random bytes (incompressible). Prints the number of failures.
cat >"$WORK/load.py" <<'EOF'
import http.client, os, sys, threading
ports = [int(p) for p in sys.argv[1].split(",")]
keys, size, writers = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pool = os.urandom(1 << 20)
failures = [0] * writers
def value(i):
    off = (i * 7919) % ((1 << 20) - size)
    return i.to_bytes(8, "big") + pool[off:off + size - 8]
def writer(t):
    conns = {}
    for i in range(t, keys, writers):
        port = ports[i % len(ports)]
        for attempt in range(5):
            try:
                c = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conns[port] = c
                c.request("PUT", "/v1/kv/bulk-%08d?consistency=quorum" % i, value(i))
                r = c.getresponse(); r.read()
                if r.status // 100 == 2: break
            except (OSError, http.client.HTTPException):
                conns.pop(port, None)
        else:
            failures[t] += 1
threads = [threading.Thread(target=writer, args=(t,)) for t in range(writers)]
for th in threads: th.start()
for th in threads: th.join()
print(sum(failures))
EOF

# The light client load: 4 clients, each about 10 operations a second, half
# QUORUM reads of random loaded keys, half QUORUM 1 KiB writes, against
# nodes 1-3; one line per operation ("epoch_s latency_ms op ok") until
# SIGTERM ("ok" is the HTTP status, 0 for no answer).
cat >"$WORK/client.py" <<'EOF'
import http.client, random, signal, sys, threading, time
ports = [int(p) for p in sys.argv[1].split(",")]
keys, out = int(sys.argv[2]), open(sys.argv[3], "w", buffering=1)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
lock = threading.Lock()
def client(t):
    rng, n, conns = random.Random(t), 0, {}
    while not stop.is_set():
        port = ports[rng.randrange(len(ports))]
        write = rng.random() < 0.5
        start = time.time()
        ok = 0  # the HTTP status, 0 for a connection error or timeout
        try:
            c = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conns[port] = c
            if write:
                n += 1
                c.request("PUT", "/v1/kv/light-%d-%d?consistency=quorum" % (t, n), b"x" * 1024)
            else:
                c.request("GET", "/v1/kv/bulk-%08d?consistency=quorum" % rng.randrange(keys))
            r = c.getresponse(); r.read()
            ok = r.status
        except (OSError, http.client.HTTPException):
            conns.pop(port, None)
        latency = time.time() - start
        with lock:
            out.write("%.3f %.2f %s %d\n" % (start, latency * 1000, "put" if write else "get", ok))
        stop.wait(max(0.0, 0.1 - latency))
threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
for th in threads: th.start()
for th in threads: th.join()
EOF

# window FROM TO: "OPS P50_MS P99_MS ERRORS ERROR_KINDS" of the client
# operations begun in [FROM, TO); ERROR_KINDS like "put:503x2,get:0x1".
window() {
  python3 - "$WORK/client.log" "$1" "$2" <<'EOF'
import sys
a, b = float(sys.argv[2]), float(sys.argv[3])
lat, kinds = [], {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 4 or not a <= float(f[0]) < b: continue
    lat.append(float(f[1]))
    if f[3] != "200": kinds[f[2] + ":" + f[3]] = kinds.get(f[2] + ":" + f[3], 0) + 1
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0
print(len(lat), "%.1f" % q(0.50), "%.1f" % q(0.99), sum(kinds.values()),
      ",".join("%sx%d" % kv for kv in sorted(kinds.items())) or "-")
EOF
}

echo "bench_join: $MB MB ($KEYS values of $VALUE_BYTES bytes), 3 nodes (N=3, QUORUM), then a 4th joins" >&2
cluster_ports 4
write_elastic_config 1 3 0 "log_level: warn"
start_node 1
wait_http 1
wait_normal 1
for i in 2 3; do
  write_elastic_config "$i" 3 1 "log_level: warn"
  start_node "$i"
  wait_normal "$i"
done
wait_connected 3 >&2
PORTS="${HTTP_PORT[1]},${HTTP_PORT[2]},${HTTP_PORT[3]}"

load_start=$(now)
failed=$(python3 "$WORK/load.py" "$PORTS" "$KEYS" "$VALUE_BYTES" "$WRITERS")
load_end=$(now)
[ "$failed" -eq 0 ] || echo "warning: $failed of $KEYS bulk writes failed" >&2
load_mbps=$(mbps $((KEYS * VALUE_BYTES)) "$load_start" "$load_end")
echo "loaded in $(elapsed "$load_start" "$load_end") s ($load_mbps MB/s of values, x3 replicas)" >&2
sleep 5  # let the stores' background compactions settle

# The disk's synced-write latency (the stream applies each batch with synced
# writes, so it pays at least one such sync a batch).
fsync_ms=$(python3 - "$WORK/fsync.probe" <<'EOF'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
block, start = os.urandom(65536), time.time()
for _ in range(100):
    os.write(fd, block); os.fdatasync(fd)
print("%.2f" % ((time.time() - start) * 10))
os.close(fd); os.unlink(sys.argv[1])
EOF
)

# Baseline: a sequential copy of node 1's data directory (every key once),
# made durable. Node 1 keeps running: a table its compaction deletes
# meanwhile is skipped, so the rate counts the bytes the copy holds.
sync
copy_start=$(now)
cp -r "$CLUSTER_DIR/data-1" "$WORK/copy" 2>/dev/null || true
sync
copy_end=$(now)
data_bytes=$(du -sb "$WORK/copy" | cut -f1)
rm -rf "$WORK/copy"
copy_s=$(elapsed "$copy_start" "$copy_end")
copy_mbps=$(mbps "$data_bytes" "$copy_start" "$copy_end")
echo "cp -r + sync of data-1: $data_bytes bytes in $copy_s s" >&2

python3 "$WORK/client.py" "$PORTS" "$KEYS" "$WORK/client.log" &
LOAD_PID=$!
before_start=$(now)
sleep "$BEFORE_S"

# The join: node 4 with no stream rate limit, its log at info (it logs
# its streaming progress).
write_elastic_config 4 3 1 "log_level: info
stream_rate_bytes_per_s: 0"
cpu_before=""
for i in 1 2 3; do cpu_before+="$(cpu_s "$i") "; done
join_start=$(now)
start_node 4
( while sleep 1; do
    printf '%s %s\n' "$(now)" "$(stream_field 4 bytes_pulled)"
  done >"$WORK/pulled.log" ) 2>/dev/null &
SAMPLER_PID=$!
seated=""
while state=$(member_state_of 1 4); [ "$state" != normal ]; do
  [ -n "$seated" ] || [ "$state" != joining ] || seated=$(now)
  [ "$(elapsed "$join_start" "$(now)" | cut -d. -f1)" -lt 3600 ] ||
    { echo "node 4 did not join (state '$state')" >&2; exit 1; }
  sleep 0.1
done
join_end=$(now)
cpu_during=""
read -r -a cpu_b <<<"$cpu_before"
for i in 1 2 3; do cpu_during+="$(awk -v a="${cpu_b[i - 1]}" -v b="$(cpu_s "$i")" 'BEGIN { printf "%.1f", b - a }')/"; done
cpu_during+="$(cpu_s 4)"
kill "$SAMPLER_PID" 2>/dev/null || true; SAMPLER_PID=""
sleep 2
kill "$LOAD_PID"; wait "$LOAD_PID" 2>/dev/null || true; LOAD_PID=""

join_s=$(elapsed "$join_start" "$join_end")
pulled=$(stream_field 4 bytes_pulled)
records=$(stream_field 4 records_pulled)
node_rate=$(stream_field 4 rate_bytes_per_s)
partitions=$(stream_field 4 partitions_copied)
held=$(du -sb "$CLUSTER_DIR/data-4" | cut -f1)
commits=$(metric 4 mks_storage_group_commits_total)
commit_puts=$(metric 4 mks_storage_group_commit_puts_total)
served=""
for i in 1 2 3; do served+="$(stream_field "$i" bytes_served) "; done
first_pull=$(awk '$2 > 0 { print $1; exit }' "$WORK/pulled.log")
stream_mbps=$(mbps "$pulled" "$join_start" "$join_end")
read -r b_ops b_p50 b_p99 b_err b_kinds <<<"$(window "$before_start" "$join_start")"
read -r d_ops d_p50 d_p99 d_err d_kinds <<<"$(window "$join_start" "$join_end")"
ratio=$(awk -v a="$stream_mbps" -v b="$copy_mbps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')

echo
echo "bench_join: $MB MB loaded ($KEYS x $VALUE_BYTES-byte values) into 3 nodes (N=3, QUORUM); node 4 joined, stream rate limit off"
printf 'sequential copy (cp -r data-1 + sync): %s MB in %s s = %s MB/s\n' \
  "$(awk -v n="$data_bytes" 'BEGIN { printf "%.0f", n / 1048576 }')" "$copy_s" "$copy_mbps"
printf 'join streaming: %s MB pulled (%s records, %s partitions) in %s s = %s MB/s; ratio to copy %s (target >= 0.5)\n' \
  "$(awk -v n="$pulled" 'BEGIN { printf "%.0f", n / 1048576 }')" "$records" "$partitions" "$join_s" \
  "$stream_mbps" "$ratio"
printf 'join duration: %s s from start to normal (seated after ~%s s, first batch within ~%s s); node rate while pulling %s MB/s\n' \
  "$join_s" "$( [ -n "$seated" ] && elapsed "$join_start" "$seated" || echo '?')" \
  "$( [ -n "$first_pull" ] && elapsed "$join_start" "$first_pull" || echo '?')" \
  "$(awk -v n="$node_rate" 'BEGIN { printf "%.1f", n / 1048576 }')"
printf 'node 4 holds %s MB on disk (%s MB/s of its own data over the join); served by nodes 1-3: %s bytes; node 4 group commits %s (%s puts)\n' \
  "$(awk -v n="$held" 'BEGIN { printf "%.0f", n / 1048576 }')" "$(mbps "$held" "$join_start" "$join_end")" \
  "$served" "$commits" "$commit_puts"
printf 'client load (4 clients, ~40 ops/s, QUORUM gets of 64 KiB / puts of 1 KiB): before: %s ops p50 %s ms p99 %s ms errors %s (%s); during join: %s ops p50 %s ms p99 %s ms errors %s (%s)\n' \
  "$b_ops" "$b_p50" "$b_p99" "$b_err" "$b_kinds" "$d_ops" "$d_p50" "$d_p99" "$d_err" "$d_kinds"
printf 'why: pulled %sx the bytes node 4 holds (each partition from all 3 serving replicas); %s group commits x %s ms (a 64 KiB write + fdatasync here) = %s s of the %s s join in synced writes; CPU seconds used during the join by nodes 1/2/3/4: %s (of %s s x %s cores)\n' \
  "$(awk -v a="$pulled" -v b="$held" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')" \
  "$commits" "$fsync_ms" "$(awk -v c="$commits" -v f="$fsync_ms" 'BEGIN { printf "%.1f", c * f / 1000 }')" \
  "$join_s" "$cpu_during" "$join_s" "$(nproc)"
echo "(bulk load: $load_mbps MB/s; one machine's cores and disk shared by all nodes: noisy, relative figures)"
