#!/bin/sh
# The chaos regression suite, run by `meson test` (suite 'chaos') and so by
# `./dev.sh test` and CI:
#  1. every scenario in SCENARIO_DIR (not regressions/) for seeds 1..K (or
#     fewer: a file's `suite_seeds:`), stopping a scenario at its first
#     failing seed;
#  2. every regression file in SCENARIO_DIR/regressions/, replayed with its
#     own seed, must give the verdict it records (`expect:`);
#  3. a determinism re-run: seeds 1 and K of every scenario, and every
#     regression, run twice must give the same trace hash (skipped when the
#     fourth argument is `no-rerun`: the sanitizer build, whose traces are
#     the plain build's; it also sweeps only seed 1 of a scenario with its
#     own `suite_seeds:`, those costing seconds a seed).
# Scenarios and regressions are found by globbing, so new files join the
# suite as they land. It prints seeds per minute for each sweep and overall.
#
# Usage: chaos_suite.sh MKS_SIM SCENARIO_DIR SEEDS [rerun|no-rerun]
# MKS_CHAOS_SEEDS overrides SEEDS (K); MKS_CHAOS_JOBS the worker processes
# per sweep (default: the number of processors).
set -u
mks_sim=$1
scenarios=$2
seeds=${MKS_CHAOS_SEEDS:-$3}
reruns=${4:-rerun}
case "$reruns" in
  rerun|no-rerun) ;;
  *) echo "chaos_suite.sh: fourth argument must be rerun or no-rerun, not '$reruns'" >&2; exit 2 ;;
esac
jobs=${MKS_CHAOS_JOBS:-$(nproc 2>/dev/null || echo 2)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
seeds_run=0

now() { date +%s.%N; }
start=$(now)

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# The exit code mks-sim gives for a verdict name.
exit_code_of() {
  case "$1" in
    "pass") echo 0 ;;
    "safety violation") echo 3 ;;
    "liveness violation") echo 4 ;;
    *) echo "" ;;
  esac
}

trace_hash() { sed -n 's/^trace hash: //p' "$1"; }

echo "== chaos: seeds 1..$seeds of every scenario in $scenarios, $jobs jobs"
# A file's own `suite_seeds:` (scenarios costing seconds a seed) caps K.
seeds_of() {
  own=$(sed -n 's/^suite_seeds: *\([0-9]*\).*/\1/p' "$1")
  if [ -n "$own" ] && [ "$reruns" = no-rerun ]; then echo 1; return; fi
  if [ -n "$own" ] && [ "$own" -lt "$seeds" ]; then echo "$own"; else echo "$seeds"; fi
}

for scenario in "$scenarios"/*.yaml; do
  [ -f "$scenario" ] || continue
  "$mks_sim" --seeds "1..$(seeds_of "$scenario")" --jobs "$jobs" "$scenario" >"$work/sweep" 2>&1
  code=$?
  ran=$(sed -n 's/.*; \([0-9]*\) seeds in .*/\1/p' "$work/sweep")
  seeds_run=$((seeds_run + ${ran:-0}))
  if [ "$code" -ne 0 ]; then
    cat "$work/sweep"
    fail "$scenario: $(sed -n 's/^verdict: //p' "$work/sweep" | tail -1)," \
         "replay: $(sed -n 's/^replay: //p' "$work/sweep")"
  else
    echo "ok: $(basename "$scenario"): $(sed -n 's/^sweep: every seed of //p' "$work/sweep")"
  fi
done

echo "== chaos: regressions"
regressions=0
for file in "$scenarios"/regressions/*.yaml; do
  [ -f "$file" ] || continue
  regressions=$((regressions + 1))
  expected=$(sed -n 's/^expect: *//p' "$file" | tr -d '"')
  want=$(exit_code_of "$expected")
  if [ -z "$want" ]; then
    fail "$file records no verdict (expect: pass, safety violation or liveness violation)"
    continue
  fi
  "$mks_sim" "$file" >"$work/replay" 2>&1
  got=$?
  seeds_run=$((seeds_run + 1))
  if [ "$got" -ne "$want" ]; then
    cat "$work/replay"
    fail "$file: exit $got, but it records '$expected' (exit $want); replay: $mks_sim $file"
  else
    echo "ok: $(basename "$file"): $expected"
  fi
done

rerun() {  # rerun DESCRIPTION MKS_SIM_ARGS...
  what=$1; shift
  "$mks_sim" "$@" >"$work/first" 2>&1
  "$mks_sim" "$@" >"$work/second" 2>&1
  seeds_run=$((seeds_run + 2))
  first=$(trace_hash "$work/first")
  second=$(trace_hash "$work/second")
  if [ -z "$first" ] || [ "$first" != "$second" ]; then
    fail "$what: trace hash '$first' then '$second'"
  else
    echo "ok: $what: $first twice"
  fi
}
determinism_reruns() {
  echo "== chaos: determinism (same seed twice, same trace hash)"
  for scenario in "$scenarios"/*.yaml; do
    [ -f "$scenario" ] || continue
    last=$(seeds_of "$scenario")
    rerun "$(basename "$scenario") seed 1" --seed 1 "$scenario"
    # Scenarios with their own suite_seeds (expensive ones) re-run seed 1 only.
    if [ "$last" -eq "$seeds" ]; then
      rerun "$(basename "$scenario") seed $last" --seed "$last" "$scenario"
    fi
  done
  for file in "$scenarios"/regressions/*.yaml; do
    [ -f "$file" ] || continue
    rerun "regressions/$(basename "$file")" "$file"
  done
}
if [ "$reruns" = rerun ]; then determinism_reruns; fi

elapsed=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
rate=$(awk -v n="$seeds_run" -v s="$elapsed" 'BEGIN { if (s > 0) printf "%.0f", n * 60 / s; else print 0 }')
echo "== chaos: $seeds_run seeds (sweeps, $regressions regressions, re-runs) in $elapsed s: $rate seeds/minute with $jobs jobs"
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "chaos suite passed"
