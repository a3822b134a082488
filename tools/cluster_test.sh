#!/usr/bin/env bash
# Whole-system tests over real processes: a 3-node cluster of mks-node on
# 127.0.0.1 with free ports, driven through mks, redis-cli, curl and raw
# sockets.
#
# usage: cluster_test.sh MKS_NODE MKS CASE
#   CASE: quorum | restart | clients | malformed | gossip | secret | raft | scale
set -euo pipefail
MKS_NODE=$1
MKS=$2
CASE=$3
SCRIPT_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/cluster_lib.sh
. "$SCRIPT_DIR/cluster_lib.sh"
CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mks-cluster-test.XXXXXX")

finish() {
  local code=$?
  stop_cluster 5
  # A sanitizer build reports at exit (leaks) into the node's log.
  if grep -l "Sanitizer" "$CLUSTER_DIR"/node-*.log >&2 2>/dev/null; then
    echo "FAIL: a sanitizer reported in the logs above" >&2
    code=1
  fi
  if [ "$code" -ne 0 ]; then
    for log in "$CLUSTER_DIR"/node-*.log; do echo "== $log"; cat "$log"; done >&2
  fi
  rm -rf "$CLUSTER_DIR"
  exit "$code"
}
trap finish EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
# expect WHAT EXPECTED ACTUAL
expect() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }
mks() { "$MKS" --timeout 10 -n "127.0.0.1:${HTTP_PORT[$1]}" "${@:2}"; }
rcli() { redis-cli -p "${RESP_PORT[$1]}" "${@:2}"; }

start_cluster() {
  cluster_ports 3
  write_configs 3 3 "log_level: info"
  for i in 1 2 3; do start_node "$i"; done
  wait_connected 3
}

# A put through node 1 is read through node 3 at QUORUM, via both clients.
case_quorum() {
  start_cluster
  mks 1 -c quorum put greeting "hello world" >/dev/null
  expect "mks get via node 3" "hello world" "$(mks 3 -c quorum get greeting)"
  expect "redis SET via node 1" OK "$(rcli 1 SET color blue CONSISTENCY quorum)"
  expect "redis GET via node 3" blue "$(rcli 3 GET color CONSISTENCY QUORUM)"
  expect "ALL sees it on node 2" blue "$(rcli 2 GET color CONSISTENCY all)"
  mks 2 del greeting >/dev/null
  local code=0
  mks 3 -c quorum get greeting 2>/dev/null || code=$?
  expect "deleted key is not found" 1 "$code"
}

# kill -9 one node: QUORUM writes still succeed; after its restart, reads
# through it return the latest values.
case_restart() {
  start_cluster
  local i
  for i in $(seq 20); do mks 1 put "key-$i" "before-$i" >/dev/null; done
  kill_node 2 KILL
  for i in $(seq 20); do
    mks 1 -c quorum put "key-$i" "after-$i" >/dev/null || fail "QUORUM write $i with node 2 down"
  done
  expect "redis QUORUM write with a node down" OK "$(rcli 3 SET during down)"
  local code=0
  mks 1 -c all put needs-all x 2>/dev/null || code=$?
  expect "ALL write with a node down fails" 4 "$code"
  start_node 2
  wait_connected 3
  for i in $(seq 20); do
    expect "read of key-$i through the restarted node" "after-$i" "$(mks 2 -c quorum get "key-$i")"
  done
  expect "redis read through the restarted node" down "$(rcli 2 GET during)"
  # The restarted node coordinates writes again, and they win over older ones.
  mks 2 -c all put key-1 final >/dev/null || fail "ALL write through the restarted node"
  expect "write through the restarted node" final "$(mks 3 -c one get key-1)"
}

case_clients() {
  start_cluster
  expect PING PONG "$(rcli 1 PING)"
  expect ECHO hi "$(rcli 1 ECHO hi)"
  expect MSET OK "$(rcli 1 MSET a 1 b 2 c 3)"
  expect MGET "$(printf '1\n\n3')" "$(rcli 2 MGET a nope c)"
  expect EXISTS 2 "$(rcli 3 EXISTS a b zz)"
  expect DEL 1 "$(rcli 1 DEL a zz)"
  expect "GET after DEL" "" "$(rcli 2 GET a)"
  expect "CONSISTENCY on one connection" "$(printf 'OK\nONE\nOK\n2')" \
    "$(printf 'CONSISTENCY one\nCONSISTENCY\nSET x y\nGET b\n' | rcli 1)"
  case "$(rcli 1 GET x CONSISTENCY sometimes)" in *"ERR"*) ;; *) fail "bad level accepted" ;; esac
  case "$(rcli 1 INFO)" in *"node_id:1"*"members:3"*) ;; *) fail "INFO" ;; esac
  case "$(rcli 1 FLUSHALL)" in *"unknown command"*) ;; *) fail "unknown command" ;; esac
  # Pipelining: many commands in one write, answered in order.
  local pipeline="" i
  for i in $(seq 200); do pipeline+="SET p$i v$i"$'\n'; done
  case "$(printf '%s' "$pipeline" | rcli 2 --pipe 2>&1)" in
    *"errors: 0, replies: 200"*) ;; *) fail "pipelined SETs" ;; esac
  expect "a pipelined value" v137 "$(rcli 3 GET p137)"

  local base="http://127.0.0.1:${HTTP_PORT[1]}"
  expect "curl PUT" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary 'v 1' "$base/v1/kv/a%20key?consistency=all")"
  expect "curl GET via node 3" "v 1" "$(curl -s "http://127.0.0.1:${HTTP_PORT[3]}/v1/kv/a%20key?consistency=quorum")"
  expect "curl 404" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/kv/missing")"
  expect "curl DELETE" 200 "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$base/v1/kv/a%20key")"
  expect "curl bad level" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$base/v1/kv/k?consistency=most")"
  expect "healthz" ok "$(curl -sf "$base/healthz")"
  expect "readyz" ready "$(curl -sf "$base/readyz")"
  # Keep-alive: two requests, one connection.
  expect "keep-alive" "1 0" "$(curl -s -o /dev/null -o /dev/null -w '%{num_connects} ' "$base/healthz" "$base/readyz" | xargs)"
  local metrics
  metrics=$(curl -sf "$base/metrics")
  for metric in 'mks_client_operations_total{operation="put",outcome="ok"}' \
                mks_client_operation_latency_seconds_bucket mks_quorum_failures_total \
                mks_read_repairs_total 'mks_messages_total{direction="sent"}' mks_storage_puts_total; do
    case "$metrics" in *"$metric"*) ;; *) fail "metric $metric missing" ;; esac
  done
  case "$(mks 1 members)" in *'"id":3'*'"reachable":true'*) ;; *) fail "members" ;; esac
  case "$(mks 2 ring)" in *'"partition_count":256'*) ;; *) fail "ring" ;; esac
  case "$(mks 3 status)" in *'"node_id":3'*) ;; *) fail "status" ;; esac
}

# send_raw PORT BYTES: writes BYTES on a fresh connection and prints what
# comes back within a second.
send_raw() {
  python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
s.settimeout(1.0)
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
except socket.timeout:
    pass
sys.stdout.write(data.decode("latin-1"))' "$1" "$2"
}

# abrupt PORT BYTES: writes BYTES and resets the connection at once.
abrupt() {
  python3 -c '
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()' "$1" "$2"
}

case_malformed() {
  start_cluster
  local resp=${RESP_PORT[1]} http=${HTTP_PORT[1]}
  case "$(send_raw "$resp" '*1\r\n:5\r\n')" in "-ERR Protocol error"*) ;; *) fail "RESP type error" ;; esac
  case "$(send_raw "$resp" '*2\r\n$3\r\nSET\r\n$999999999\r\n')" in "-ERR Protocol error"*) ;; *) fail "RESP oversized bulk" ;; esac
  case "$(send_raw "$resp" '*-5x\r\n')" in "-ERR Protocol error"*) ;; *) fail "RESP bad count" ;; esac
  case "$(send_raw "$http" 'GARBAGE\r\n\r\n')" in "HTTP/1.1 400"*) ;; *) fail "HTTP garbage" ;; esac
  case "$(send_raw "$http" 'PUT /v1/kv/x HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n')" in
    "HTTP/1.1 413"*) ;; *) fail "HTTP oversized body" ;; esac
  case "$(send_raw "$http" 'GET /v1/kv/%zz HTTP/1.1\r\nConnection: close\r\n\r\n')" in
    "HTTP/1.1 400"*) ;; *) fail "HTTP bad escape" ;; esac
  for _ in $(seq 20); do
    abrupt "$resp" '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc'
    abrupt "$http" 'PUT /v1/kv/x HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc'
    abrupt "$resp" 'SET k v\r\nGET k\r\n'
  done
  # A value over the store's limit is an error for that command only.
  case "$(head -c 2000000 /dev/zero | tr '\0' a | rcli 1 -x SET big)" in
    *"ERR"*) ;; *) fail "oversized value accepted" ;; esac
  kill -0 "$(cat "$CLUSTER_DIR/node-1.pid")" || fail "node 1 died"
  expect "still serving RESP" PONG "$(rcli 1 PING)"
  expect "still serving writes" OK "$(rcli 1 SET after-abuse yes)"
  expect "still serving HTTP" yes "$(curl -sf "http://127.0.0.1:$http/v1/kv/after-abuse")"
}

# now_ms: the wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# member_state VIA ID: the state node VIA's view holds of node ID ("" when
# it does not know it).
member_state() {
  curl -sf "http://127.0.0.1:${HTTP_PORT[$1]}/v1/members" |
    python3 -c 'import json, sys
for m in json.load(sys.stdin):
    if m["id"] == int(sys.argv[1]): print(m["state"])' "$2"
}

# wait_state VIA ID STATE SECONDS: waits until VIA holds ID in STATE.
wait_state() {
  local deadline=$(($(now_ms) + $4 * 1000))
  while [ "$(now_ms)" -lt "$deadline" ]; do
    [ "$(member_state "$1" "$2")" = "$3" ] && return 0
    sleep 0.1
  done
  fail "node $1 does not hold node $2 $3 within $4 s (holds '$(member_state "$1" "$2")')"
}

# write_joiner_config SEED SECRET_FILE: node 4's configuration, on fresh
# ports, with no member list: it finds the cluster through node SEED.
write_joiner_config() {
  local ports
  read -r -a ports <<<"$(free_ports 3)"
  PEER_PORT[4]=${ports[0]}; RESP_PORT[4]=${ports[1]}; HTTP_PORT[4]=${ports[2]}
  cat >"$CLUSTER_DIR/node-4.yaml" <<EOF
node_id: 4
listen: 127.0.0.1:${PEER_PORT[4]}
client_host: 127.0.0.1
resp_port: ${RESP_PORT[4]}
http_port: ${HTTP_PORT[4]}
data_dir: $CLUSTER_DIR/data-4
join: ["127.0.0.1:${PEER_PORT[$1]}"]
secret_file: $2
EOF
}

# The metadata log: node 1 bootstraps a cluster, nodes 2 and 3 join it; the
# leader is killed and another leads within 3 s; it comes back as a
# follower with its log; a separately bootstrapped node is refused; a node
# joins a cluster that holds data and a member leaves it, the data moving.
case_raft() {
  cluster_ports 5
  local i started elapsed leader summary before
  write_elastic_config 1 3 0
  for i in 2 3 4 5; do write_elastic_config "$i" 3 1; done
  # Node 4 bootstraps a cluster of its own and still asks node 1 to join.
  echo "bootstrap: true" >>"$CLUSTER_DIR/node-4.yaml"
  start_node 1
  wait_members 1 1 || fail "node 1 did not bootstrap its cluster"
  start_node 2
  wait_members 1,2 1 2 || fail "node 2 did not join"
  started=$(now_ms)
  start_node 3
  wait_members 1,2,3 1 2 3 || fail "node 3 did not join"
  echo "node 3 seated on every node $(($(now_ms) - started)) ms after it started"
  cluster_json 1
  grep -q "join accepted" "$CLUSTER_DIR/node-3.log" || fail "node 3 did not log its join"
  # Three voters once three members are alive.
  for _ in $(seq 100); do
    case "$(cluster_json 1)" in *'"voters":[1,2,3]'*) break ;; esac
    sleep 0.1
  done
  case "$(cluster_json 1)" in *'"voters":[1,2,3]'*) ;; *) fail "not three voters: $(cluster_json 1)" ;; esac

  read -r -a summary <<<"$(cluster_summary 1)"
  leader=${summary[1]}
  [ "$leader" -ge 1 ] && [ "$leader" -le 3 ] || fail "no leader: ${summary[*]}"
  before=$(cluster_json "$leader" | python3 -c 'import json,sys; print(json.load(sys.stdin)["applied_index"])')
  started=$(now_ms)
  kill_node "$leader" KILL
  local others=() new_leader=""
  for i in 1 2 3; do [ "$i" -eq "$leader" ] || others+=("$i"); done
  while [ -z "$new_leader" ]; do
    elapsed=$(($(now_ms) - started))
    [ "$elapsed" -lt 3000 ] || fail "no new leader 3 s after killing leader $leader: $(mks "${others[0]}" status)"
    for i in "${others[@]}"; do
      read -r -a summary <<<"$(cluster_summary "$i")"
      if [ "${summary[1]}" != "$leader" ] && [ "${summary[1]}" != 0 ]; then new_leader=${summary[1]}; fi
    done
    [ -n "$new_leader" ] || sleep 0.05
  done
  for i in "${others[@]}"; do
    for _ in $(seq 60); do
      case "$(mks "$i" status)" in *"\"leader\":$new_leader,"*) continue 2 ;; esac
      sleep 0.05
    done
    fail "mks status on node $i does not name leader $new_leader"
  done
  echo "leader $leader killed; node $new_leader leads after $elapsed ms"
  start_node "$leader"
  for _ in $(seq 200); do
    read -r -a summary <<<"$(cluster_summary "$leader")"
    [ "${summary[1]}" = "$new_leader" ] && [ "${summary[3]}" = follower ] && break
    sleep 0.1
  done
  expect "the old leader follows node $new_leader" "$new_leader follower" "${summary[1]} ${summary[3]}"
  local after
  after=$(cluster_json "$leader" | python3 -c 'import json,sys; print(json.load(sys.stdin)["applied_index"])')
  [ "$after" -ge "$before" ] || fail "the old leader applied $after, below the $before it had"

  start_node 4
  for _ in $(seq 100); do grep -q "join refused" "$CLUSTER_DIR/node-4.log" && break; sleep 0.1; done
  grep "join refused" "$CLUSTER_DIR/node-4.log" | grep -q "never merge" ||
    fail "the separately bootstrapped node 4 was not refused: $(grep join "$CLUSTER_DIR/node-4.log")"
  wait_members 1,2,3 1 2 3 || fail "node 4 changed the members"
  echo "separately bootstrapped node 4 refused: $(grep -o 'join refused.*' "$CLUSTER_DIR/node-4.log" | head -1)"

  # Data moves: a join and a leave on a cluster that holds data.
  expect "a write" OK "$(rcli 1 SET held data CONSISTENCY all)"
  start_node 5
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${HTTP_PORT[5]}/healthz" >/dev/null && break; sleep 0.1; done
  timeout 60 "$MKS" --timeout 10 -n "127.0.0.1:${HTTP_PORT[5]}" join | tail -1 | grep -q "is a normal member" ||
    fail "mks join did not follow node 5 to a normal member"
  wait_members 1,2,3,5 1 2 3 5 || fail "node 5 did not join a cluster that holds data"
  mks 1 remove 3 --wait >/dev/null
  wait_members 1,2,5 1 2 5 || fail "node 3 did not leave"
  expect "the data is still there" data "$(rcli 5 GET held CONSISTENCY all)"
  for _ in $(seq 100); do grep -q "removed from cluster" "$CLUSTER_DIR/node-3.log" && break; sleep 0.1; done
  grep -q "removed from cluster" "$CLUSTER_DIR/node-3.log" ||
    fail "node 3 did not stop after its leave: $(tail -3 "$CLUSTER_DIR/node-3.log")"
  # A leader stopped gracefully hands the metadata log over first.
  read -r -a summary <<<"$(cluster_summary 1)"
  leader=${summary[1]}
  kill_node "$leader" TERM
  grep -q "metadata leadership handed over" "$CLUSTER_DIR/node-$leader.log" ||
    fail "leader $leader did not hand over on SIGTERM: $(tail -5 "$CLUSTER_DIR/node-$leader.log")"
  echo "leader $leader handed over on SIGTERM"
  stop_cluster 5
}

# Gossip: a 4th node joins with nothing but --join; a kill -9 is detected and
# logged everywhere; with two of three dead a QUORUM write fails at once.
case_gossip() {
  start_cluster
  expect "a write" OK "$(rcli 1 SET before joins CONSISTENCY all)"
  write_joiner_config 2 "$CLUSTER_DIR/secret"
  local started killed answer elapsed
  started=$(now_ms)
  start_node 4
  for i in 1 2 3; do wait_state "$i" 4 alive 5; done
  echo "node 4 listed alive by all three $(($(now_ms) - started)) ms after it started"
  mks 1 members | grep -q '"id":4' || fail "mks members does not list node 4"
  # Its partitions stream to it; it serves once the join finished.
  wait_members 1,2,3,4 1 4 || fail "node 4 did not join"
  expect "node 4 is ready" ready "$(curl -s "http://127.0.0.1:${HTTP_PORT[4]}/readyz")"
  expect "the write is on its replicas" joins "$(rcli 4 GET before CONSISTENCY all)"
  killed=$(now_ms)
  kill_node 3 KILL
  for i in 1 2 4; do wait_state "$i" 3 dead 20; done
  echo "node 3 held dead by every other node $(($(now_ms) - killed)) ms after kill -9"
  grep -q "member dead node=3" "$CLUSTER_DIR/node-1.log" || fail "node 1 did not log the death"
  kill_node 2 KILL
  wait_state 1 2 dead 20
  kill_node 4 KILL
  wait_state 1 4 dead 20
  # Timed from request to reply on an open connection, so the client's own
  # start does not count.
  read -r elapsed answer <<<"$(python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
command = b"*5\r\n$3\r\nSET\r\n$6\r\nlonely\r\n$5\r\nvalue\r\n$11\r\nCONSISTENCY\r\n$6\r\nquorum\r\n"
start = time.monotonic()
s.sendall(command)
reply = s.recv(4096).decode()
print(int((time.monotonic() - start) * 1000), reply.strip())' "${RESP_PORT[1]}")"
  case "$answer" in
    *" of 3 replicas alive, 2 needed"*) ;;
    *) fail "a QUORUM write with two of three dead answered '$answer'" ;;
  esac
  [ "$elapsed" -lt 50 ] || fail "the refused write took $elapsed ms"
  echo "QUORUM write with two of three dead refused in $elapsed ms: $answer"
}

# A node holding another secret can neither join nor be joined; both sides
# log why.
case_secret() {
  start_cluster
  local deadline
  write_secret "$CLUSTER_DIR/other-secret"
  write_joiner_config 1 "$CLUSTER_DIR/other-secret"
  start_node 4
  deadline=$(($(now_ms) + 10000))
  until grep -q "refused this node" "$CLUSTER_DIR/node-4.log" &&
        grep -q "does not hold this cluster's secret" "$CLUSTER_DIR/node-1.log"; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "the refusal was not logged on both sides"
    sleep 0.1
  done
  grep -h "peer refused" "$CLUSTER_DIR/node-1.log" "$CLUSTER_DIR/node-4.log" | head -2
  sleep 2
  expect "node 1 does not list node 4" "" "$(member_state 1 4)"
  expect "node 4 lists no member" "" "$(member_state 4 1)"
  expect "the cluster still serves" OK "$(rcli 1 SET still here CONSISTENCY all)"
}

# An elastic cluster under a running write load: 3 nodes grow to 5 and
# shrink back to 3 (scale_cluster, as ./dev.sh scale does); every write
# acknowledged meanwhile is read back at ALL afterwards.
case_scale() {
  cluster_ports 5
  write_elastic_config 1 3 0
  write_elastic_config 2 3 1
  write_elastic_config 3 3 1
  start_node 1
  wait_members 1 1 || fail "node 1 did not bootstrap its cluster"
  start_node 2
  wait_members 1,2 1 2 || fail "node 2 did not join"
  start_node 3
  wait_members 1,2,3 1 2 3 || fail "node 3 did not join"
  # The load: QUORUM writes of unique keys through nodes 1..3 (which stay),
  # each acknowledged key and value recorded, until the stop file appears.
  python3 - "$CLUSTER_DIR" "${HTTP_PORT[1]}" "${HTTP_PORT[2]}" "${HTTP_PORT[3]}" <<'PY' &
import http.client, os, sys, time
directory, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
conns = {}
acked = open(os.path.join(directory, "acked"), "w")
errors = 0
i = 0
while not os.path.exists(os.path.join(directory, "stop")):
    port = ports[i % len(ports)]
    key, value = "key-%06d" % i, "value-%06d-%s" % (i, "x" * (i % 200))
    try:
        conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conns[port] = conn
        conn.request("PUT", "/v1/kv/" + key + "?consistency=quorum", value)
        response = conn.getresponse()
        response.read()
        if response.status == 200:
            acked.write(key + " " + value + "\n")
            acked.flush()
        else:
            errors += 1
    except (OSError, http.client.HTTPException):
        errors += 1
        conns.pop(port, None)
    i += 1
print("load: %d writes, %d failed" % (i, errors), file=open(os.path.join(directory, "load.out"), "w"))
PY
  local load=$! started
  sleep 2
  started=$(now_ms)
  MKS=$MKS SCALE_WAIT_S=120 scale_cluster 3 5 1 || fail "the cluster did not grow to 5"
  wait_members 1,2,3,4,5 1 2 3 4 5 || fail "the members do not agree on 5"
  echo "grew 3 -> 5 under load in $(($(now_ms) - started)) ms"
  started=$(now_ms)
  MKS=$MKS SCALE_WAIT_S=120 scale_cluster 5 3 1 || fail "the cluster did not shrink to 3"
  wait_members 1,2,3 1 2 3 || fail "the members do not agree on 3"
  echo "shrank 5 -> 3 under load in $(($(now_ms) - started)) ms"
  touch "$CLUSTER_DIR/stop"
  wait "$load"
  cat "$CLUSTER_DIR/load.out"
  # Every acknowledged write, read back at ALL from the three that stayed.
  python3 - "$CLUSTER_DIR/acked" "${HTTP_PORT[1]}" "${HTTP_PORT[2]}" "${HTTP_PORT[3]}" <<'PY' || fail "acknowledged writes were lost"
import http.client, sys
path, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
lost = 0
count = 0
conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=10) for p in ports]
for n, line in enumerate(open(path)):
    key, value = line.rstrip("\n").split(" ", 1)
    conn = conns[n % len(conns)]
    conn.request("GET", "/v1/kv/" + key + "?consistency=all")
    response = conn.getresponse()
    body = response.read().decode()
    count += 1
    if response.status != 200 or body != value:
        lost += 1
        if lost <= 5:
            print("lost: %s -> %d %r" % (key, response.status, body[:80]), file=sys.stderr)
print("read back %d acknowledged writes at ALL: %d lost or wrong" % (count, lost))
sys.exit(1 if lost or count == 0 else 0)
PY
  for i in 4 5; do
    grep -q "removed from cluster" "$CLUSTER_DIR/node-$i.log" || fail "node $i did not stop after its leave"
  done
}

"case_$CASE"
echo "cluster test '$CASE' passed"
