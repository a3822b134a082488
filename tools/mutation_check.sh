#!/usr/bin/env bash
# The harness checks itself: plants each mutation of tools/mutations.txt (a
# realistic one-line bug) in a scratch copy of the source, rebuilds mks-sim,
# and runs the shipped scenarios until one of them fails. A mutation that
# no scenario catches within the seed budget is a blind spot of the checker.
#
# Usage: tools/mutation_check.sh [--seeds K] [--block B] [--jobs J]
#                                [--only NAME] [--list]
#   --seeds K   seeds per scenario before a mutation counts as missed (200)
#   --block B   seeds per scenario per round (25): rounds go over every
#               scenario with seeds 1..B, then B+1..2B, ..., so the first
#               scenario to catch a mutation is found early whatever its
#               place in the list
#   --jobs J    worker processes per sweep (the number of processors)
#   --only NAMES just these mutations (comma-separated)
#   --list      print the mutations and exit
#
# Prints a table: mutation, caught or not, the first scenario and seed that
# failed, its verdict, and the seconds from the start of the runs to the
# catch. Exits 0 when every mutation was caught, 1 otherwise, 2 on a usage
# or setup error. Not part of `./dev.sh test` (it rebuilds mks-sim once per
# mutation, about 15 times); run it before changing the checker or the
# scenarios' seed counts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seeds=200
block=25
jobs=$(nproc 2>/dev/null || echo 2)
only=""
list=false
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds=$2; shift 2 ;;
    --block) block=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --list) list=true; shift ;;
    *) echo "unknown option: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

# Reads tools/mutations.txt into parallel arrays.
names=(); files=(); whys=(); finds=(); replaces=()
name="" file="" why="" find="" replace=""
flush() {
  if [ -n "$name" ]; then
    if [ -z "$file" ] || [ -z "$find" ] || [ -z "$replace" ]; then
      echo "mutation '$name' lacks file, find or replace" >&2; exit 2
    fi
    names+=("$name"); files+=("$file"); whys+=("$why")
    finds+=("$find"); replaces+=("$replace")
  fi
  name="" file="" why="" find="" replace=""
}
while IFS= read -r line || [ -n "$line" ]; do
  case "$line" in
    "#"*) ;;
    "") flush ;;
    "name: "*) name=${line#name: } ;;
    "file: "*) file=${line#file: } ;;
    "why: "*) why=${line#why: } ;;
    "find: "*) find=${line#find: } ;;
    "replace: "*) replace=${line#replace: } ;;
    *) echo "tools/mutations.txt: cannot read line: $line" >&2; exit 2 ;;
  esac
done <tools/mutations.txt
flush

if $list; then
  for i in "${!names[@]}"; do printf '%-32s %-22s %s\n' "${names[$i]}" "${files[$i]}" "${whys[$i]}"; done
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mks-mutants.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src"
# The working tree as it is, committed or not (ignored files excluded).
git ls-files -z --cached --others --exclude-standard |
  (cd "$root" && xargs -0 cp --parents -t "$src")
echo "== building mks-sim in $work (plain, -O2)"
(cd "$src" && meson setup build >/dev/null && ninja -C build tools/mks-sim >/dev/null) || {
  echo "setup or build of the unmutated copy failed" >&2; exit 2; }
scenarios=("$src"/scenarios/*.yaml)

# apply_mutation FILE FIND REPLACE: replaces the one occurrence of FIND.
apply_mutation() {
  FIND=$2 REPLACE=$3 perl -0777 -i -e '
    my ($find, $replace) = ($ENV{FIND}, $ENV{REPLACE});
    s/\\n/\n/g for ($find, $replace);
    my $text = <STDIN>;
    my $count = () = $text =~ /\Q$find\E/g;
    die "found $count times, not once\n" if $count != 1;
    my $at = index($text, $find);
    substr($text, $at, length($find)) = $replace;
    print $text;' <"$1" >"$1.mutant" && mv "$1.mutant" "$1"
}

rows=()
missed=0
for i in "${!names[@]}"; do
  [ -z "$only" ] || [[ ",$only," == *",${names[$i]},"* ]] || continue
  target=$src/${files[$i]}
  cp "$target" "$work/pristine"
  if ! apply_mutation "$target" "${finds[$i]}" "${replaces[$i]}" 2>"$work/apply"; then
    rows+=("$(printf '%-32s %-9s %s' "${names[$i]}" "error" "find: $(cat "$work/apply")")")
    missed=$((missed + 1))
    continue
  fi
  echo "== ${names[$i]}: ${whys[$i]}"
  if ! ninja -C "$src/build" tools/mks-sim >"$work/build.log" 2>&1; then
    cp "$work/pristine" "$target"
    tail -20 "$work/build.log"
    rows+=("$(printf '%-32s %-9s %s' "${names[$i]}" "error" "does not build")")
    missed=$((missed + 1))
    continue
  fi
  start=$(date +%s.%N)
  result=""
  low=1
  while [ "$low" -le "$seeds" ] && [ -z "$result" ]; do
    high=$((low + block - 1))
    [ "$high" -le "$seeds" ] || high=$seeds
    for scenario in "${scenarios[@]}"; do
      # A file's `suite_seeds:` caps its seeds here as in the chaos suite.
      own=$(sed -n 's/^suite_seeds: *\([0-9]*\).*/\1/p' "$scenario")
      top=$high
      if [ -n "$own" ] && [ "$own" -lt "$top" ]; then top=$own; fi
      [ "$low" -le "$top" ] || continue
      if "$src/build/tools/mks-sim" --seeds "$low..$top" --jobs "$jobs" "$scenario" \
          >"$work/sweep" 2>&1; then
        continue
      fi
      seed=$(sed -n 's/^replay: .* --seed \([0-9]*\) .*/\1/p' "$work/sweep" | head -1)
      verdict=$(sed -n 's/^verdict: \(.*\) (exit [0-9]*)$/\1/p' "$work/sweep" | head -1)
      elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
      result=$(printf '%-32s %-9s %-28s %-5s %-18s %6s s' "${names[$i]}" "caught" \
               "$(basename "$scenario")" "${seed:-?}" "${verdict:-?}" "$elapsed")
      grep -m1 -E "^  (read|write|delete) |^  after convergence|^  stamp ceiling|^  ring agreement|assert" \
        "$work/sweep" | cut -c1-300 || true
      break
    done
    low=$((high + 1))
  done
  if [ -z "$result" ]; then
    elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    result=$(printf '%-32s %-9s %-28s %-5s %-18s %6s s' "${names[$i]}" "MISSED" \
             "(${#scenarios[@]} scenarios)" "1..$seeds" "pass" "$elapsed")
    missed=$((missed + 1))
  fi
  echo "$result"
  rows+=("$result")
  cp "$work/pristine" "$target"
done

echo
printf '%-32s %-9s %-28s %-5s %-18s %8s\n' "mutation" "outcome" "first scenario" "seed" "verdict" "time"
for row in "${rows[@]}"; do echo "$row"; done
echo "${#rows[@]} mutations, $missed not caught within $seeds seeds per scenario"
[ "$missed" -eq 0 ]
