#!/usr/bin/env bash
# The one entry point for developers: ./dev.sh help
set -euo pipefail
cd "$(dirname "$0")"

# Debian 12 packages the project needs; `deps` installs the missing ones.
PACKAGES=(
  meson ninja-build pkg-config cmake g++
  libboost-context-dev libleveldb-dev libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev librapidcheck-dev libcli11-dev libyaml-cpp-dev
  libbenchmark-dev clang libclang-rt-14-dev
  libssl-dev    # OpenSSL's libcrypto: HMAC-SHA256 for peer authentication
  libboost-dev  # Boost.Beast (header-only): the HTTP/1.1 parser in net/
  redis-tools curl redis-server  # cluster tests and tools/bench_cluster.sh
)

BUILD_DIR=build             # plain build: -O2 -g, assertions on
ASAN_DIR=build-asan         # AddressSanitizer + UndefinedBehaviorSanitizer
RELEASE_DIR=build-release   # -O3, for benchmarks
JOBS=$(nproc 2>/dev/null || echo 2)

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

# quiet CMD...: runs CMD, showing its output only when it fails.
quiet() {
  local output
  if ! output=$("$@" 2>&1); then
    printf '%s\n' "$output" >&2
    echo "failed: $*" >&2
    return 1
  fi
}

cmd_help() {
  cat <<'USAGE'
usage: ./dev.sh COMMAND [ARGS]

  deps              install missing Debian packages (quiet when all present)
  build             deps, then build the plain configuration in build/
  test              deps, build, and run every test, plain and under
                    AddressSanitizer + UndefinedBehaviorSanitizer
  sim [SCENARIO] [--seed N]
                    deps, build, and run mks-sim on SCENARIO
                    (default scenarios/default.yaml; exit code is its verdict)
  bench             deps, release build, run the benchmarks (runtime, ring, store,
                    net, simulator, gossip, and a 3-node cluster against
                    redis-server)
  dc                build, start a local 3-node cluster on 127.0.0.1 (node 1
                    bootstraps it, nodes 2 and 3 join it)
                    (peers 7001-7003, RESP 7101-7103, HTTP 7201-7203) with
                    data in a temporary directory; in tmux panes when tmux
                    is installed, else in the background with logs
  scale N           grow the dev cluster to N nodes (new ones start with --join,
                    in the background, logs in the cluster directory) or shrink
                    it (the highest-numbered nodes decommission, one at a
                    time); data streams either way
  dc!               stop that cluster and remove its data
  help              this text
USAGE
}

cmd_deps() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$package")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "installing: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive quiet $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# setup_dir DIR [meson options...]: configure DIR once, or reconfigure it.
setup_dir() {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    quiet meson setup --reconfigure "$dir" "$@"
  else
    quiet meson setup "$dir" "$@"
  fi
}

build_plain() {
  setup_dir "$BUILD_DIR"
  quiet ninja -C "$BUILD_DIR" -j "$JOBS"
}

# The sanitizer build compiles at -Og: it finds the same memory errors and
# undefined behaviour, and builds in half the time of -O2 with sanitizers
# (whose instrumentation dominates -O2 compile time) for ~10% slower runs.
build_asan() {
  setup_dir "$ASAN_DIR" -Db_sanitize=address,undefined -Db_lundef=false -Doptimization=g
  quiet ninja -C "$ASAN_DIR" -j "$JOBS"
}

cmd_build() {
  cmd_deps
  log "building $BUILD_DIR"
  build_plain
}

run_tests() {
  local dir=$1; shift
  log "testing $dir"
  meson test -C "$dir" --num-processes "$JOBS" --print-errorlogs "$@"
}

cmd_test() {
  cmd_deps
  log "building $BUILD_DIR"
  build_plain
  run_tests "$BUILD_DIR"
  log "building $ASAN_DIR"
  build_asan
  run_tests "$ASAN_DIR"
}

# sim [SCENARIO] [mks-sim options, e.g. --seed N --trace FILE -v]
cmd_sim() {
  cmd_build
  local scenario=scenarios/default.yaml
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then scenario=$1; shift; fi
  log "simulating $scenario"
  "$BUILD_DIR/tools/mks-sim" "$scenario" "$@"
}

cmd_bench() {
  cmd_deps
  setup_dir "$RELEASE_DIR" --buildtype=release -Db_ndebug=false
  quiet ninja -C "$RELEASE_DIR" -j "$JOBS"
  "$RELEASE_DIR/tools/bench-runtime" "$@"
  "$RELEASE_DIR/tools/bench-ring" "$@"
  "$RELEASE_DIR/tools/bench-store" "$@"
  "$RELEASE_DIR/tools/bench-net" "$@"
  "$RELEASE_DIR/tools/bench-sim"
  "$RELEASE_DIR/tools/bench-gossip" 50 256  # docs/membership.md: 200 seeds, up to 512
  "$RELEASE_DIR/tools/bench-raft" 200       # docs/metadata.md: 1000 seeds
  "$RELEASE_DIR/tools/bench-elastic" 3
  tools/bench_cluster.sh "$RELEASE_DIR"
  tools/bench_join.sh "$RELEASE_DIR"
}

DC_STATE=$BUILD_DIR/dc-dir  # holds the running dev cluster's directory

cmd_dc() {
  if [ -f "$DC_STATE" ]; then
    echo "a dev cluster is already running in $(cat "$DC_STATE"); ./dev.sh dc! stops it" >&2
    return 1
  fi
  cmd_build
  MKS_NODE=$PWD/$BUILD_DIR/tools/mks-node
  CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mks-dc.XXXXXX")
  . tools/cluster_lib.sh
  cluster_ports 3 7000
  # Node 1 bootstraps the cluster; nodes 2 and 3 join it through node 1.
  write_elastic_config 1 3 0
  write_elastic_config 2 3 1
  write_elastic_config 3 3 1
  echo "$CLUSTER_DIR" >"$DC_STATE"
  if command -v tmux >/dev/null; then
    tmux new-session -d -s mks-dc -x 200 -y 50 "exec $MKS_NODE --config $CLUSTER_DIR/node-1.yaml"
    tmux split-window -t mks-dc "exec $MKS_NODE --config $CLUSTER_DIR/node-2.yaml"
    tmux split-window -t mks-dc "exec $MKS_NODE --config $CLUSTER_DIR/node-3.yaml"
    tmux select-layout -t mks-dc even-vertical
    local i=1 pid
    for pid in $(tmux list-panes -t mks-dc -F '#{pane_pid}'); do
      echo "$pid" >"$CLUSTER_DIR/node-$i.pid"; i=$((i + 1))
    done
    log "nodes in tmux session mks-dc (tmux attach -t mks-dc)"
  else
    for i in 1 2 3; do start_node "$i"; done
    log "nodes in the background; logs in $CLUSTER_DIR/node-*.log"
  fi
  wait_members 1,2,3 1 2 3
  log "cluster up: redis-cli -p 7101 | curl localhost:7201/v1/status | $BUILD_DIR/tools/mks -n 127.0.0.1:7201 status"
}

cmd_scale() {
  local to=${1:-}
  if [ ! -f "$DC_STATE" ]; then echo "no dev cluster is running; ./dev.sh dc starts one" >&2; return 1; fi
  case "$to" in ''|*[!0-9]*) echo "usage: ./dev.sh scale N (N >= 1)" >&2; return 2 ;; esac
  [ "$to" -ge 1 ] && [ "$to" -le 64 ] || { echo "scale: N must be in 1..64" >&2; return 2; }
  cmd_build
  MKS_NODE=$PWD/$BUILD_DIR/tools/mks-node
  MKS=$PWD/$BUILD_DIR/tools/mks
  CLUSTER_DIR=$(cat "$DC_STATE")
  . tools/cluster_lib.sh
  local from
  from=$(cat "$CLUSTER_DIR/size" 2>/dev/null || echo 3)
  cluster_ports $((to > from ? to : from)) 7000
  log "scaling the dev cluster from $from to $to nodes"
  scale_cluster "$from" "$to" 1
  echo "$to" >"$CLUSTER_DIR/size"
  log "dev cluster at $to nodes: $BUILD_DIR/tools/mks -n 127.0.0.1:7201 ring --watch"
}

cmd_dc!() {
  if [ ! -f "$DC_STATE" ]; then echo "no dev cluster is running" >&2; return 0; fi
  CLUSTER_DIR=$(cat "$DC_STATE")
  . tools/cluster_lib.sh
  stop_cluster 64
  if command -v tmux >/dev/null; then tmux kill-session -t mks-dc 2>/dev/null || true; fi
  rm -rf "$CLUSTER_DIR" "$DC_STATE"
  log "dev cluster stopped"
}

command=${1:-help}
shift || true
case "$command" in
  deps|build|test|sim|bench|dc|dc!|scale|help) "cmd_$command" "$@" ;;
  *) echo "unknown command: $command" >&2; cmd_help >&2; exit 2 ;;
esac
