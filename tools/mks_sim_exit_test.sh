#!/bin/sh
# Checks mks-sim's documented exit codes: 0 pass, 2 invalid scenario or
# usage, and that --diff tells equal traces from different ones.
# Usage: mks_sim_exit_test.sh MKS_SIM SCENARIO_DIR
set -u
mks_sim=$1
scenarios=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

expect() {  # expect CODE DESCRIPTION COMMAND...
  want=$1; what=$2; shift 2
  "$@" >"$work/out" 2>&1
  got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, expected $want"; cat "$work/out"
    failures=$((failures + 1))
  else
    echo "ok: $what (exit $got)"
  fi
}

printf 'nodes: 3\nnodez: 4\n' >"$work/unknown.yaml"
printf 'nodes: 3\nstore: {replicas: 9}\n' >"$work/bad_value.yaml"
printf 'nodes: 3\nduration_ms: 500\nliveness_bound_ms: 5000\nworkload: {clients: 1}\n' >"$work/tiny.yaml"

expect 2 "unknown field" "$mks_sim" --seed 1 "$work/unknown.yaml"
grep -q "unknown.yaml:2: unknown field 'nodez'" "$work/out" ||
  { echo "FAIL: message does not name file and line"; cat "$work/out"; failures=$((failures + 1)); }
expect 2 "bad value" "$mks_sim" --seed 1 "$work/bad_value.yaml"
grep -q "bad_value.yaml:2:" "$work/out" ||
  { echo "FAIL: message does not name the line"; failures=$((failures + 1)); }
expect 2 "missing file" "$mks_sim" --seed 1 "$work/absent.yaml"
expect 2 "no scenario" "$mks_sim" --seed 1
expect 2 "bad option" "$mks_sim" --no-such-option "$work/tiny.yaml"
expect 2 "bad seed" "$mks_sim" --seed minus-one "$work/tiny.yaml"
expect 0 "a passing run" "$mks_sim" --seed 3 "$work/tiny.yaml" --trace "$work/a.trace"
grep -q "^seed: 3$" "$work/out" || { echo "FAIL: seed not printed"; failures=$((failures + 1)); }
grep -q "^trace hash: " "$work/out" || { echo "FAIL: no trace hash"; failures=$((failures + 1)); }
expect 0 "same seed" "$mks_sim" --seed 3 "$work/tiny.yaml" --trace "$work/b.trace"
expect 0 "equal traces" "$mks_sim" --diff "$work/a.trace" "$work/b.trace"
expect 0 "other seed" "$mks_sim" --seed 4 "$work/tiny.yaml" --trace "$work/c.trace"
expect 1 "different traces" "$mks_sim" --diff "$work/a.trace" "$work/c.trace"
grep -q "first difference at line" "$work/out" || { echo "FAIL: no diff report"; failures=$((failures + 1)); }
expect 0 "default scenario" "$mks_sim" --seed 1 "$scenarios/default.yaml"
# Gossip needs tens of milliseconds; demanding convergence within 1 ms of the
# end of a write-heavy phase cannot be met.
printf 'nodes: 5\nduration_ms: 1000\nliveness_bound_ms: 1\nworkload: {clients: 4, ops_per_second: 200, read_percent: 0, write_percent: 100}\n' >"$work/impatient.yaml"
expect 4 "liveness bound missed" "$mks_sim" --seed 1 "$work/impatient.yaml"
grep -q "^verdict: liveness violation$" "$work/out" || { echo "FAIL: no liveness verdict"; failures=$((failures + 1)); }

# An abort (what a failed MKS_ASSERT does) exits 5 after flushing the
# parameters already printed. A run far longer than the test is aborted
# from outside, once it has printed its seed (into a fresh file: an earlier
# run's "seed: 1" would send the signal before the handler is installed).
printf 'nodes: 3\nduration_ms: 1000000000\nworkload: {clients: 20, ops_per_second: 1000}\n' >"$work/long.yaml"
"$mks_sim" --seed 1 "$work/long.yaml" >"$work/long.out" 2>&1 &
pid=$!
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  grep -q "^seed: 1$" "$work/long.out" 2>/dev/null && break
  sleep 0.1
done
kill -ABRT "$pid"
wait "$pid"
got=$?
if [ "$got" -ne 5 ] || ! grep -q "^seed: 1$" "$work/long.out"; then
  echo "FAIL: abort: exit $got, expected 5 with the parameters flushed"
  failures=$((failures + 1))
else
  echo "ok: abort (exit 5)"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all exit codes as documented"
