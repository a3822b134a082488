# Shell functions to run a local cluster of mks-node processes on 127.0.0.1.
# Sourced by tools/cluster_test.sh, tools/bench_cluster.sh and dev.sh.
#
# Set before calling: MKS_NODE (path of mks-node), CLUSTER_DIR (a directory
# for configs, data, logs and pids). Node i (1-based) gets
# CLUSTER_DIR/node-i.yaml, data in CLUSTER_DIR/data-i, its log in
# CLUSTER_DIR/node-i.log and its pid in CLUSTER_DIR/node-i.pid. Its ports are
# in the arrays PEER_PORT, RESP_PORT and HTTP_PORT (index i).

PEER_PORT=(); RESP_PORT=(); HTTP_PORT=()

# free_ports COUNT: prints COUNT distinct ports that were free a moment ago
# (all bound at once, so they differ; meson's python3 is always there).
free_ports() {
  python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))' "$1"
}

# cluster_ports COUNT [BASE]: assigns ports to COUNT nodes; with BASE, fixed
# ones (peer BASE+i, RESP BASE+100+i, HTTP BASE+200+i), else free ones.
cluster_ports() {
  local count=$1 base=${2:-} i ports
  if [ -z "$base" ]; then
    read -r -a ports <<<"$(free_ports $((3 * count)))"
  fi
  for ((i = 1; i <= count; i++)); do
    if [ -n "$base" ]; then
      PEER_PORT[i]=$((base + i)); RESP_PORT[i]=$((base + 100 + i)); HTTP_PORT[i]=$((base + 200 + i))
    else
      PEER_PORT[i]=${ports[3 * i - 3]}; RESP_PORT[i]=${ports[3 * i - 2]}; HTTP_PORT[i]=${ports[3 * i - 1]}
    fi
  done
}

# write_secret FILE: a new random cluster secret in FILE (mode 600).
write_secret() {
  (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1")
}

# node_yaml I N: the settings every node I's config holds: its addresses
# and data directory, the cluster secret of CLUSTER_DIR/secret (written when
# missing), N and QUORUM defaults.
node_yaml() {
  local i=$1 n=$2
  [ -f "$CLUSTER_DIR/secret" ] || write_secret "$CLUSTER_DIR/secret"
  cat <<EOF
node_id: $i
listen: 127.0.0.1:${PEER_PORT[i]}
client_host: 127.0.0.1
resp_port: ${RESP_PORT[i]}
http_port: ${HTTP_PORT[i]}
data_dir: $CLUSTER_DIR/data-$i
secret_file: $CLUSTER_DIR/secret
replication_factor: $n
read_consistency: quorum
write_consistency: quorum
EOF
}

# write_configs COUNT N [extra YAML lines]: one config file per node. Every
# node lists the members (they bootstrap the cluster) and, but node 1,
# joins gossip through node 1's address.
write_configs() {
  local count=$1 n=$2 extra=${3:-} i j peers="" join
  for ((j = 1; j <= count; j++)); do
    peers+="\"$j=127.0.0.1:${PEER_PORT[j]}\", "
  done
  for ((i = 1; i <= count; i++)); do
    join="[]"
    [ "$i" -eq 1 ] || join="[\"127.0.0.1:${PEER_PORT[1]}\"]"
    { node_yaml "$i" "$n"; printf 'peers: [%s]\njoin: %s\n%s\n' "${peers%, }" "$join" "$extra"; } \
      >"$CLUSTER_DIR/node-$i.yaml"
  done
}

# write_elastic_config I N SEED [extra YAML lines]: node I's config with no
# member list: node SEED's address to join through, or, when SEED is 0,
# `bootstrap: true` (node I creates the cluster).
write_elastic_config() {
  local i=$1 n=$2 seed=$3 extra=${4:-} origin
  origin="join: [\"127.0.0.1:${PEER_PORT[seed]:-0}\"]"
  [ "$seed" -ne 0 ] || origin="bootstrap: true"
  { node_yaml "$i" "$n"; printf '%s\n%s\n' "$origin" "$extra"; } >"$CLUSTER_DIR/node-$i.yaml"
}

# cluster_json I: node I's /v1/cluster, or "" when it does not answer.
cluster_json() {
  curl -sf "http://127.0.0.1:${HTTP_PORT[$1]}/v1/cluster" 2>/dev/null || true
}

# cluster_summary I: "CLUSTER_ID LEADER TERM ROLE NORMAL_MEMBERS" of node I.
cluster_summary() {
  cluster_json "$1" | python3 -c '
import json, sys
try:
    c = json.load(sys.stdin)
except ValueError:
    print("- 0 0 - -"); sys.exit()
normal = ",".join(str(m["id"]) for m in sorted(c["members"], key=lambda m: m["id"])
                  if m["membership"] == "normal")
print(c["cluster_id"] or "-", c["leader"], c["term"], c["raft_role"], normal or "-")'
}

# members_agree MEMBERS NODE...: true when each NODE holds the normal
# members MEMBERS ("1,2,3") under one cluster id.
members_agree() {
  local members=$1 i summary first=""
  shift
  for i in "$@"; do
    read -r -a summary <<<"$(cluster_summary "$i")"
    [ "${summary[4]}" = "$members" ] && [ "${summary[0]}" != "-" ] || return 1
    [ -z "$first" ] || [ "$first" = "${summary[0]}" ] || return 1
    first=${summary[0]}
  done
}

# wait_members MEMBERS NODE...: waits (at most 30 s) until members_agree.
wait_members() {
  local i
  for _ in $(seq 300); do
    members_agree "$@" && return 0
    sleep 0.1
  done
  for i in "${@:2}"; do echo "node $i holds: $(cluster_summary "$i")" >&2; done
  return 1
}

# start_node I: starts node I in the background, appending to its log.
start_node() {
  "$MKS_NODE" --config "$CLUSTER_DIR/node-$1.yaml" >>"$CLUSTER_DIR/node-$1.log" 2>&1 &
  echo $! >"$CLUSTER_DIR/node-$1.pid"
  disown $! 2>/dev/null || true  # no "Killed" notice when a test kills it
}

# kill_node I [SIGNAL]: signals node I (default KILL) and waits until it is gone.
kill_node() {
  local pid_file="$CLUSTER_DIR/node-$1.pid" pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  kill "-${2:-KILL}" "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$pid_file"
}

# stop_cluster COUNT: SIGTERM to every node still running.
stop_cluster() {
  local i
  for ((i = 1; i <= $1; i++)); do kill_node "$i" TERM; done
}

# wait_connected COUNT: waits (at most 20 s) until every node serves HTTP and
# reaches all its peers.
wait_connected() {
  local count=$1 i status
  for ((i = 1; i <= count; i++)); do
    for _ in $(seq 200); do
      status=$(curl -sf "http://127.0.0.1:${HTTP_PORT[i]}/v1/status" 2>/dev/null || true)
      case "$status" in *"\"reachable_peers\":$((count - 1)),"*) continue 2 ;; esac
      sleep 0.1
    done
    echo "node $i did not connect to its peers; its log:" >&2
    cat "$CLUSTER_DIR/node-$i.log" >&2
    return 1
  done
}

# member_state_of I NODE: NODE's membership ("joining", "normal", "leaving",
# or "" when not seated) in node I's metadata.
member_state_of() {
  cluster_json "$1" | python3 -c '
import json, sys
try:
    c = json.load(sys.stdin)
except ValueError:
    print("?"); sys.exit()
print(next((m["membership"] for m in c["members"] if m["id"] == int(sys.argv[1])), ""))' "$2"
}

# scale_cluster FROM TO ASK: grows nodes 1..FROM to 1..TO by starting nodes
# FROM+1..TO with --join (through node ASK), one at a time, each once the
# one before is normal; or shrinks it by decommissioning nodes FROM..TO+1,
# one at a time, each leave waited for (the node stops itself after it).
# Needs MKS (path of the mks client) and ports for nodes 1..max(FROM, TO).
# Waits at most SCALE_WAIT_S (default 600) seconds a node.
scale_cluster() {
  local from=$1 to=$2 ask=$3 i pid state waited
  for ((i = from + 1; i <= to; i++)); do
    write_elastic_config "$i" 3 "$ask"
    start_node "$i"
    waited=0
    while state=$(member_state_of "$ask" "$i"); [ "$state" != normal ]; do
      waited=$((waited + 1))
      [ "$waited" -le "$((${SCALE_WAIT_S:-600} * 10))" ] || { echo "node $i did not join (state '$state')" >&2; return 1; }
      sleep 0.1
    done
    echo "node $i joined: its partitions streamed to it" >&2
  done
  for ((i = from; i > to; i--)); do
    "$MKS" --timeout 10 -n "127.0.0.1:${HTTP_PORT[i]}" decommission --wait \
      --retry "${SCALE_WAIT_S:-600}" >/dev/null || { echo "node $i did not leave" >&2; return 1; }
    pid=$(cat "$CLUSTER_DIR/node-$i.pid" 2>/dev/null || echo "")
    for _ in $(seq 300); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$CLUSTER_DIR/node-$i.pid"
    echo "node $i left: its partitions streamed away, it stopped" >&2
  done
}
