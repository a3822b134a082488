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
  libboost-dev  # Boost.Beast (header-only): the HTTP/1.1 parser in net/
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
  bench             deps, release build, run the benchmarks
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

build_asan() {
  setup_dir "$ASAN_DIR" -Db_sanitize=address,undefined -Db_lundef=false
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
}

command=${1:-help}
shift || true
case "$command" in
  deps|build|test|sim|bench|help) "cmd_$command" "$@" ;;
  *) echo "unknown command: $command" >&2; cmd_help >&2; exit 2 ;;
esac
