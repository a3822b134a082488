#!/bin/sh
# Checks `mks-sim --seeds A..B [--jobs J]`: a passing range, a range with
# failures (the lowest failing seed is reported whatever the number of
# jobs, with a replay command that reproduces it), per-seed lines in seed
# order, usage errors, and a scenario's own `seed:`.
# Usage: mks_sim_sweep_test.sh MKS_SIM
set -u
mks_sim=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() { echo "FAIL: $*"; cat "$work/out"; failures=$((failures + 1)); }

expect() {  # expect CODE DESCRIPTION COMMAND...
  want=$1; what=$2; shift 2
  "$@" >"$work/out" 2>&1
  got=$?
  if [ "$got" -ne "$want" ]; then
    fail "$what: exit $got, expected $want"
  else
    echo "ok: $what (exit $got)"
  fi
}

printf 'nodes: 3\nduration_ms: 500\nworkload: {clients: 1}\n' >"$work/tiny.yaml"
# The planted bug loses acknowledged increments when a node crashes before
# gossip spread them: some seeds catch it, most do not.
cat >"$work/canary.yaml" <<'EOF'
nodes: 2
duration_ms: 1000
liveness_bound_ms: 5000
canaries: [ack_without_persist]
workload: {clients: 1, ops_per_second: 20, key_space: 4, read_percent: 50, write_percent: 50}
faults:
  crash: {interval_ms: [300, 1500], duration_ms: [10, 50], max_down: 1}
EOF

expect 0 "passing sweep" "$mks_sim" --seeds 1..8 --jobs 2 "$work/tiny.yaml"
grep -q "every seed of 1..8 passed" "$work/out" || fail "no pass summary"
grep -q "seeds/minute" "$work/out" || fail "no seeds per minute"

# The first failing seed, found one run at a time.
first=""
seed=1
while [ "$seed" -le 40 ]; do
  "$mks_sim" --seed "$seed" "$work/canary.yaml" >/dev/null 2>&1
  if [ $? -eq 3 ]; then first=$seed; break; fi
  seed=$((seed + 1))
done
if [ -z "$first" ] || [ "$first" -lt 2 ]; then
  echo "FAIL: the canary scenario should pass its first seed and fail one of 2..40 (got '$first')"
  failures=$((failures + 1))
  first=1
fi
for jobs in 1 2 3; do
  expect 3 "failing sweep, $jobs jobs" "$mks_sim" --seeds 1..40 --jobs "$jobs" "$work/canary.yaml"
  grep -q "^failing seed: $first$" "$work/out" || fail "$jobs jobs: expected failing seed $first"
  grep -q "^verdict: safety violation (exit 3)$" "$work/out" || fail "$jobs jobs: no verdict line"
  grep -q "seeds/minute" "$work/out" || fail "$jobs jobs: no seeds per minute"
done
replay=$(sed -n 's/^replay: //p' "$work/out")
[ "$replay" = "$mks_sim --seed $first $work/canary.yaml" ] || fail "replay command is '$replay'"
expect 3 "the replay command reproduces the failure" $replay
grep -q "^seed: $first$" "$work/out" || fail "replay ran another seed"

expect 3 "per-seed lines" "$mks_sim" --seeds 1..40 --jobs 3 -v "$work/canary.yaml"
grep '^seed [0-9]*: ' "$work/out" | sed 's/^seed \([0-9]*\): .*/\1/' >"$work/order"
seq 1 "$first" >"$work/want"
cmp -s "$work/order" "$work/want" || fail "per-seed lines are not seeds 1..$first in order"

expect 2 "reversed range" "$mks_sim" --seeds 5..3 "$work/tiny.yaml"
expect 2 "malformed range" "$mks_sim" --seeds 1-5 "$work/tiny.yaml"
expect 2 "--seeds with --seed" "$mks_sim" --seeds 1..2 --seed 3 "$work/tiny.yaml"
expect 2 "--seeds with --trace" "$mks_sim" --seeds 1..2 --trace "$work/t" "$work/tiny.yaml"
expect 2 "--jobs without --seeds" "$mks_sim" --jobs 2 "$work/tiny.yaml"
expect 2 "--jobs 0" "$mks_sim" --seeds 1..2 --jobs 0 "$work/tiny.yaml"
printf 'nodes: 3\nnodez: 4\n' >"$work/unknown.yaml"
expect 2 "invalid scenario" "$mks_sim" --seeds 1..2 "$work/unknown.yaml"
printf 'nodes: 3\ncanaries: [no_such_bug]\n' >"$work/canary_unknown.yaml"
expect 2 "unknown canary" "$mks_sim" --seeds 1..2 "$work/canary_unknown.yaml"

printf 'seed: 77\nnodes: 3\nduration_ms: 300\nworkload: {clients: 1}\n' >"$work/seeded.yaml"
expect 0 "the scenario's own seed" "$mks_sim" "$work/seeded.yaml"
grep -q "^seed: 77$" "$work/out" || fail "the file's seed was not used"
expect 0 "--seed overrides it" "$mks_sim" --seed 5 "$work/seeded.yaml"
grep -q "^seed: 5$" "$work/out" || fail "--seed did not override"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "sweeps behave as documented"
