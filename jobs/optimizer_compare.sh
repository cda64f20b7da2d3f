#!/usr/bin/env bash
# jobs/optimizer_compare.sh: AdamW against Muon on the quickstart shape and
# the default corpus, both objectives, the same steps and seed; prints each
# run's final validation loss, its mean wall time per step (validation
# included; 32 x 128 tokens per step, the quickstart's), and the validation loss
# Muon had reached by AdamW's wall time. Run it from a folder with
# data/corpus (jobs/quickstart.sh or `dlm-prepare corpus` makes it).
#
#   jobs/optimizer_compare.sh [--steps N] [--threads T] [--set KEY=VALUE ...]
#
# --steps defaults to 300, --threads to the cores; --set goes to every run.
# DLM_BUILD_DIR names the build folder (default build/).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
steps=300
threads=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
extra=()
while (($#)); do
  case $1 in
    --steps) steps=$2; shift ;;
    --threads) threads=$2; shift ;;
    --set) extra+=(--set "$2"); shift ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "optimizer_compare: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
source "$repo/jobs/lib.sh"
dlm_find_programs optimizer_compare dlm-train
train=$bin/dlm-train
[[ -f data/corpus/debian_train.bin ]] || { echo "optimizer_compare: no data/corpus here" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}

# the validation loss logged at or before wall second $2 of log $1 (its step lines carry no
# clock, so each is placed at (step x mean step time))
val_by() {
  awk -v t="$2" -v ms="$3" '/ step [0-9]+\/[0-9]+ .* val [0-9.]+/ {
      split($0, a, " step "); split(a[2], b, "/"); s = b[1] + 0
      if (s * ms / 1000 <= t) { for (i = 1; i <= NF; i++) if ($i == "val") v = $(i + 1); at = s } }
    END { printf "%s (step %d)", v, at }' "$1"
}
# mean step time (ms) from the logged tokens/s of a log, batch x seq_len tokens per step
step_ms() { awk -v tok="$2" '/tokens\/s/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "tokens/s") { s += tok / $i * 1000; n++ } }
             END { printf "%.1f", s / n }' "$1"; }
last_val() { grep -o ' val [0-9.]*' "$1" | tail -1 | awk '{print $2}'; }

printf "%-5s %-6s %10s %12s %s\n" objective optimizer "val loss" "ms/step" "val at AdamW's wall time"
for obj in mdlm ar; do
  declare -A ms=()
  for opt in adamw muon; do
    dir=runs/optcmp-$obj-$opt
    rm -rf "$dir"
    "$train" "$repo/configs/quickstart-mdlm.cfg" --threads "$threads" --set objective.kind=\"$obj\" \
      --set train.steps="$steps" --set train.warmup=20 --set train.val_every=25 \
      --set train.checkpoint_every="$steps" --set train.optimizer=\"$opt\" \
      --set run.dir=\"$dir\" "${extra[@]}" >"$dir.log" 2>&1 || { tail "$dir.log" >&2; exit 1; }
    ms[$opt]=$(step_ms "$dir.log" 4096)
  done
  wall=$(awk -v m="${ms[adamw]}" -v s="$steps" 'BEGIN { print m * s / 1000 }')
  for opt in adamw muon; do
    printf "%-9s %-6s %10s %12s %s\n" "$obj" "$opt" "$(last_val "runs/optcmp-$obj-$opt.log")" "${ms[$opt]}" \
      "$(val_by "runs/optcmp-$obj-$opt.log" "$wall" "${ms[$opt]}")"
  done
done
