#!/usr/bin/env bash
# jobs/estimator_study.sh [--steps N] [--seeds "1 2 3"] [--jobs J] [--out DIR] [--build DIR]
# The mdlm training recipes compared over paired seeds on dlm-prepare's
# default order-2 Markov source (16 symbols, window entropy 1.6993 at
# T = 32): loglinear mc-t (the default), power-3 mc-t, exact-k with the
# uniform and the inverse proposal. One shape (L=2 d=64 H=4, batch 64 x 32,
# lr 5e-3 cosine, raw weights, one thread a run, J runs side by side); the
# seed (train.seed) sets the initialisation and the data order, the same
# for every recipe, so runs with the same seed are paired. Each run is
# scored by dlm-eval's exact-k NELBO (K 16, 512 test chunks, eval seed 1:
# the same masks for every run). Prints each run, each recipe's mean, and
# each recipe's paired difference from the default with its standard error
# over seeds; a difference counts when it exceeds 2 paired standard errors.
# About 3 minutes a run on one thread here (4,000 steps).
set -euo pipefail
steps=4000 seeds="1 2 3" jobs=2 out=runs/estimator-study
build=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build
while (($#)); do
  case $1 in
  --steps) steps=$2; shift ;;
  --seeds) seeds=$2; shift ;;
  --jobs) jobs=$2; shift ;;
  --out) out=$2; shift ;;
  --build) build=$2; shift ;;
  -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
  *) echo "estimator_study: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for p in dlm-prepare dlm-train dlm-eval; do
  [[ -x $build/bin/$p ]] || { echo "estimator_study: $build/bin/$p not found (--build)" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
data=$out/data
[[ -e $data/markov_train.bin ]] || "$build/bin/dlm-prepare" synthetic --out "$data" --name markov --seq-len 32 >/dev/null

recipe_args() {
  case $1 in
  loglinear) echo '--set objective.estimator="mc-t" --set objective.schedule="loglinear"' ;;
  power3) echo '--set objective.estimator="mc-t" --set objective.schedule="power" --set objective.power=3' ;;
  exactk-uniform) echo '--set objective.estimator="exact-k" --set objective.k_proposal="uniform"' ;;
  exactk-inverse) echo '--set objective.estimator="exact-k" --set objective.k_proposal="inverse"' ;;
  esac
}
recipes="loglinear power3 exactk-uniform exactk-inverse"

one_run() { # recipe seed
  local dir=$out/$1-s$2
  [[ -e $dir/score ]] && return 0
  # shellcheck disable=SC2046 # recipe_args is a list of options
  "$build/bin/dlm-train" --threads 1 --set data.source=\"shards\" \
    --set data.train=\"$data/markov_train.bin\" --set data.val=\"$data/markov_val.bin\" \
    --set model.layers=2 --set model.width=64 --set model.heads=4 --set model.seq_len=32 \
    --set train.batch=64 --set train.lr=5e-3 --set train.steps="$steps" --set train.seed="$2" \
    --set train.log_every=500 --set train.val_every=1000 --set train.checkpoint_every="$steps" \
    $(eval echo "$(recipe_args "$1")") --set run.dir=\"$dir\" >"$dir.log" 2>&1
  "$build/bin/dlm-eval" "$dir" --threads 1 --data "$data/markov_test.bin" --estimator exact-k \
    --K 16 --chunks 512 --seed 1 --weights raw --json --no-out >"$dir.json"
  sed -n 's/.*"estimate_nats_per_token": \([0-9.]*\).*/\1/p' "$dir.json" >"$dir/score"
}

export -f one_run recipe_args
export out data build steps
for r in $recipes; do for s in $seeds; do echo "$r $s"; done; done |
  xargs -P "$jobs" -n 2 bash -c 'one_run "$0" "$1" && echo "done $0 seed $1: $(cat "$out/$0-s$1/score")"'

echo "recipe          seed  exact-k NELBO"
for r in $recipes; do for s in $seeds; do printf "%-15s %4s  %s\n" "$r" "$s" "$(cat "$out/$r-s$s/score")"; done; done
for r in $recipes; do
  for s in $seeds; do echo "$(cat "$out/$r-s$s/score") $(cat "$out/loglinear-s$s/score")"; done |
    awk -v r="$r" '{ d = $1 - $2; m += $1; dm += d; d2 += d * d; n++ }
      END { m /= n; dm /= n; se = n > 1 ? sqrt((d2 / n - dm * dm) * n / (n - 1) / n) : 0
            printf "%-15s mean %.4f (+%.1f%% over 1.6993)", r, m, 100 * (m / 1.6993 - 1)
            if (r != "loglinear") printf ", paired difference from loglinear %+.4f +- %.4f%s", dm, se, (dm < -2 * se || dm > 2 * se) ? " (counts)" : " (within 2 SE)"
            printf "\n" }'
done
