#!/usr/bin/env bash
# Compares two builds of the throughput bench on the same minutes of a shared, drifting machine: both
# run at once, one per core, swapping cores every round (see README, "Performance"). Side by side each
# runs slower than alone (they share the memory system); the comparison is the per-round ratio.
#
# usage: benches/side-by-side.sh BENCH_A BENCH_B [ROUNDS] [-- BENCH ARGS...]
#   BENCH_A, BENCH_B: bench binaries, e.g. copies of target/release/deps/throughput-<hash> made after
#   `cargo bench --bench throughput --no-run` on each build
#   ROUNDS: default 4
#   BENCH ARGS: default --clients 10000 --minutes 2 --no-bare --transports long-polling --replicas 1
# Prints, per round, each build's speed (the bench's "speed" column), its wall time, and B's change
# in speed against A (from the wall times); then the mean change and its standard deviation.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
a=$1
b=$2
shift 2
rounds=4
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  rounds=$1
  shift
fi
[ "${1:-}" = "--" ] && shift
args=("$@")
if [ ${#args[@]} -eq 0 ]; then
  args=(--clients 10000 --minutes 2 --no-bare --transports long-polling --replicas 1)
fi
[ "$(nproc)" -ge 2 ] || { echo "side-by-side needs two cores" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The bench's first result row: its wall seconds (column 5, two decimals) and speed (column 7). The
# change is taken from the walls: the speed's one decimal is 1 % at 10×.
wall() { awk 'NR > 1 && $0 !~ /^rtsim/ { print $5; exit }' "$1"; }
speed() { awk 'NR > 1 && $0 !~ /^rtsim/ { sub(/×$/, "", $7); print $7; exit }' "$1"; }
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then core_a=0; core_b=1; else core_a=1; core_b=0; fi
  taskset -c "$core_a" "$a" "${args[@]}" > "$out/a" 2>&1 &
  taskset -c "$core_b" "$b" "${args[@]}" > "$out/b" 2>&1
  wait
  awk -v r="$round" -v a="$(speed "$out/a")" -v b="$(speed "$out/b")" \
    -v wa="$(wall "$out/a")" -v wb="$(wall "$out/b")" \
    'BEGIN { printf "round %d: A %.1f× (%.2f s)  B %.1f× (%.2f s)  B/A %+.1f %%\n", r, a, wa, b, wb, (wa / wb - 1) * 100 }' \
    | tee -a "$out/rounds"
done
# The mean change and its spread (the rounds' own standard deviation, not the mean's): below 2-3 %,
# a change needs about ten rounds to stand out.
awk '{ v = $NF == "%" ? $(NF - 1) : $NF; sub(/%/, "", v); n++; s += v; ss += v * v }
  END { m = s / n; var = ss / n - m * m; sd = var > 0 ? sqrt(var) : 0
        printf "B/A over %d rounds: mean %+.1f %%, standard deviation %.1f %%\n", n, m, sd }' "$out/rounds"
