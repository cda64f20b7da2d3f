#!/usr/bin/env bash
# tests/parallel_inference.sh: dlm-eval and dlm-sample with --tp or --pp
# against one rank.
#   parallel_inference.sh CASE DLM_EVAL DLM_SAMPLE RUNS WORK MPIEXEC...
# RUNS holds the tiny mdlm/ and ar/ runs of the eval fixture. Cases:
#   eval    every number of the --json report (both models, mdlm against
#           AR paired) at tp2 (2 ranks) and dp2 x tp2 (4 ranks) within a
#           relative 1e-5 of one rank (the tp sums round differently; the
#           paired difference relative to the estimates it subtracts)
#   sample  greedy draws (confidence and AR, top-k 1) at tp2 and dp2 x tp2
#           give one rank's text; the sampled runs (ancestral, confidence,
#           AR, scored) finish and write their samples (their logits are
#           checked against serial in test_parallel; a rounding difference
#           may flip a random draw, so that text is not compared)
#   pp      the same report at pp2 (2 ranks; the 2 blocks one per stage),
#           dp2 x pp2 and tp2 x pp2 (4 ranks) within a relative 1e-5 of
#           one rank (without tp, to the bit); dlm-sample at pp2 (diffusion
#           samplers scored by the AR run, the AR sampler) gives one rank's
#           samples and measures to the bit
#   bad     --tp not dividing the ranks, and tp not dividing the model's
#           heads: one message from rank 0, no hang
set -euo pipefail
case_=$1 eval=$2 sample=$3 runs=$4 work=$5
shift 5
mpi=("$@")
rm -rf "$work/$case_"
mkdir -p "$work/$case_"
cd "$work/$case_"

# the numeric fields of a --json report, one "key value" per line
numbers() { grep -E '^ *"[A-Za-z0-9_]+": -?[0-9]' "$1" | sed -E 's/^ *"([A-Za-z0-9_]+)": (-?[0-9.eE+-]+),?$/\1 \2/' | grep -v -E '^(seconds|time|[a-z_]*tokens_per_s)'; }

case $case_ in
eval|pp)
  args=("$runs/mdlm" --compare "$runs/ar" --chunks 13 --K 4 --no-out --json --threads 1)
  "${mpi[@]}" -n 1 "$eval" "${args[@]}" >serial.json
  numbers serial.json >serial.num
  [[ $(wc -l <serial.num) -ge 10 ]] || { echo "too few numbers in the report"; cat serial.json; exit 1; }
  if [[ $case_ == eval ]]; then layouts=("2 --tp 2" "4 --tp 2"); else layouts=("2 --pp 2" "4 --pp 2" "4 --tp 2 --pp 2"); fi
  for layout in "${layouts[@]}"; do
    set -- $layout
    n=$1
    shift
    "${mpi[@]}" -n "$n" "$eval" "${args[@]}" "$@" >np$n.json
    numbers np$n.json >np$n.num
    # keys in the same order; values within 1e-5 relative (1e-9 absolute for
    # zeros). The paired difference and its interval are small differences of
    # two estimates, so their 1e-5 is relative to the estimates (in bits, the
    # larger unit): a 1e-6 rounding of each is a larger share of a difference
    # near 0.
    big=$(awk '$1 ~ /estimate_bits_per_token$/ { v = $2 < 0 ? -$2 : $2; if (v > m) m = v } END { print m }' serial.num)
    paste -d' ' serial.num np$n.num | awk -v n="$n $*" -v big="$big" '
      $1 != $3 { print "field order differs: " $1 " vs " $3; bad = 1; exit }
      { d = $2 - $4; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2
        if ($1 ~ /^difference_/ && s < big) s = big
        if (d > 1e-5 * s + 1e-9) { print $1 ": serial " $2 ", -n " n " " $4; bad = 1 }
        if (d / (s + 1e-30) > worst) worst = d / (s + 1e-30); k++ }
      END { if (bad) exit 1; printf "-n %s: %d numbers within 1e-5 of serial (worst %.2g)\n", n, k, worst }'
    # without tp the stages run the serial kernels on the same rows: the same bits
    if [[ $case_ == pp && $* != *--tp* ]]; then
      diff serial.num np$n.num >/dev/null || { echo "-n $n $*: not the serial bits"; exit 1; }
      echo "-n $n $*: the serial numbers to the bit"
    fi
  done
  if [[ $case_ == pp ]]; then
    # dlm-sample at pp2: the same logits on every stage, so one rank's samples and
    # measures, bit for bit (the tokens/s column aside); the AR sampler uncached
    untimed() { grep -a -v '^\[' "$1" | awk '$1 ~ /^(ancestral|confidence|ar)$/ { $4 = "-" } { print }'; }
    for n in 1 2; do
      "${mpi[@]}" -n $n "$sample" "$runs/mdlm" --pp $n --threads 1 --n 3 --steps 4 \
        --sampler ancestral,confidence --score-with "$runs/ar" --h5 none >sample-np$n.txt
      "${mpi[@]}" -n $n "$sample" "$runs/ar" --pp $n --threads 1 --n 3 --length 24 --no-cache \
        --h5 none >>sample-np$n.txt
    done
    diff <(untimed sample-np1.txt) <(untimed sample-np2.txt) || { echo "samples at pp2 differ"; exit 1; }
    [[ $(grep -a -c '^=== sample' sample-np2.txt) == 9 ]] || { echo "expected 9 samples"; exit 1; }
    echo "dlm-sample at pp2: one rank's samples and measures"
    echo "inference $case_: ok"
    exit 0
  fi
  # the job's forward sequences are counted once per tp group
  seqs() { "${mpi[@]}" "$@" 2>/dev/null | sed -n -E 's/.*throughput .*\(([0-9]+) sequences.*/\1/p'; }
  one=$(seqs -n 1 "$eval" "$runs/mdlm" --chunks 13 --K 4 --no-out --threads 1)
  two=$(seqs -n 2 "$eval" "$runs/mdlm" --chunks 13 --K 4 --no-out --threads 1 --tp 2)
  [[ -n $one && $one == "$two" ]] || { echo "forward sequences: $one at one rank, $two at tp2"; exit 1; }
  echo "$one forward sequences at one rank and at tp2" ;;
sample)
  # greedy draws (top-k 1) follow the argmax, which a 1e-5 rounding moves only
  # at a near tie: the text must be one rank's; the sampled runs must finish
  greedy=("$runs/mdlm" --threads 1 --n 3 --steps 4 --sampler confidence --top-k 1 --h5 none)
  "${mpi[@]}" -n 1 "$sample" "${greedy[@]}" >serial-greedy.txt
  "${mpi[@]}" -n 1 "$sample" "$runs/ar" --threads 1 --n 3 --length 24 --top-k 1 --h5 none >>serial-greedy.txt
  for layout in "2 2" "4 2"; do
    set -- $layout
    "${mpi[@]}" -n "$1" "$sample" "${greedy[@]}" --tp "$2" >np$1-greedy.txt
    "${mpi[@]}" -n "$1" "$sample" "$runs/ar" --tp "$2" --threads 1 --n 3 --length 24 --top-k 1 \
      --h5 none >>np$1-greedy.txt
    # the text and the run line, not the log or the table's timings
    diff <(grep -v -E '^(\[|confidence |ar )' serial-greedy.txt) <(grep -v -E '^(\[|confidence |ar )' np$1-greedy.txt) ||
      { echo "greedy samples at -n $1 tp2 differ from one rank's"; exit 1; }
    "${mpi[@]}" -n "$1" "$sample" "$runs/mdlm" --tp "$2" --threads 1 --n 3 --steps 4 \
      --sampler ancestral,confidence --score-with "$runs/ar" --h5 np$1.h5 >np$1.txt
    "${mpi[@]}" -n "$1" "$sample" "$runs/ar" --tp "$2" --threads 1 --n 3 --length 24 --h5 none >>np$1.txt
    for s in ancestral confidence ar; do
      grep -q "^$s " np$1.txt || { echo "no $s row at -n $1"; cat np$1.txt; exit 1; }
    done
    [[ $(grep -c '^=== sample' np$1.txt) == 9 ]] || { echo "expected 9 samples at -n $1"; cat np$1.txt; exit 1; }
    [[ -s np$1.h5 ]] || { echo "no samples.h5 at -n $1"; exit 1; }
  done
  echo "greedy samples at tp2 and dp2 x tp2 = one rank's; sampled runs complete" ;;
bad)
  check() { # expected message, then the command; one line from rank 0, none from others
    local want=$1; shift
    if "$@" >out.txt 2>err.txt; then echo "succeeded: $*"; exit 1; fi
    grep -q "^\[0\] .*failed: .*$want" err.txt || { echo "no '$want' from rank 0:"; cat err.txt; exit 1; }
    if grep -q '^\[[1-9][0-9]*\] ' err.txt; then echo "other ranks spoke:"; cat err.txt; exit 1; fi
  }
  check "--tp 2 x --pp 1 must divide the 3 MPI ranks" "${mpi[@]}" -n 3 "$eval" "$runs/ar" --tp 2 --no-out --threads 1
  check "model.heads (2) must be a multiple of the tensor-parallel size 4" \
    "${mpi[@]}" -n 4 "$sample" "$runs/mdlm" --tp 4 --h5 none --threads 1
  echo "bad layouts refused with one message" ;;
*) echo "unknown case $case_"; exit 2 ;;
esac
echo "inference $case_: ok"
