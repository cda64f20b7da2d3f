#!/usr/bin/env bash
# tests/bench_binaries.sh [--reps N] NAME=DLM-BENCH ... [-- BENCH OPTIONS]: runs
# several dlm-bench binaries in turn (A, B, C, A, B, C, ...; N rounds,
# default 3) with the same options, so machine noise falls on all alike,
# and prints each case's median tokens/s per binary and its ratio to the
# first. Example, two builds of two revisions:
#   tests/bench_binaries.sh old=/tmp/old/bin/dlm-bench new=build/bin/dlm-bench -- --threads 2
set -euo pipefail

reps=3
names=() bins=() opts=()
while (($#)); do
  case $1 in
    --reps) reps=$2; shift ;;
    -h | --help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; opts=("$@"); break ;;
    *=*) names+=("${1%%=*}"); bins+=("${1#*=}") ;;
    *) echo "bench_binaries: expected NAME=PATH, got '$1'" >&2; exit 2 ;;
  esac
  shift
done
((${#bins[@]} >= 1)) || { echo "bench_binaries: no binaries given (see --help)" >&2; exit 2; }
for b in "${bins[@]}"; do [[ -x $b ]] || { echo "bench_binaries: $b is not executable" >&2; exit 2; }; done

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((r = 1; r <= reps; r++)); do
  for i in "${!bins[@]}"; do
    echo "bench_binaries: round $r/$reps, ${names[$i]}" >&2
    "${bins[$i]}" "${opts[@]}" | sed -n "s/^bench /${names[$i]} /p" >>"$out"
  done
done

# lines: <name> shape=<s> objective=<o> ... tokens_per_s=<x> ... (fields found by key,
# so binaries from before and after a field was added compare)
awk -v order="${names[*]}" '
  { name = $1
    for (f = 2; f <= NF; f++) { split($f, kv, "="); val[kv[1]] = kv[2] }
    key = val["shape"] " " val["objective"]; if (!(key in seen)) { seen[key] = 1; keys[++nk] = key }
    v[name, key, ++n[name, key]] = val["tokens_per_s"] + 0 }
  function median(name, key,   m, i, j, t, a) {
    m = n[name, key]; for (i = 1; i <= m; i++) a[i] = v[name, key, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
  END {
    nn = split(order, names, " ")
    printf "%-22s", "case (median tokens/s)"; for (i = 1; i <= nn; i++) printf " %12s", names[i]
    for (i = 2; i <= nn; i++) printf " %10s", names[i] "/" names[1]; printf "\n"
    for (k = 1; k <= nk; k++) {
      printf "%-22s", keys[k]
      for (i = 1; i <= nn; i++) { med[i] = median(names[i], keys[k]); printf " %12.1f", med[i] }
      for (i = 2; i <= nn; i++) printf " %10.3f", med[i] / med[1]
      printf "\n" } }' "$out"
