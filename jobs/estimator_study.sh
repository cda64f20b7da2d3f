#!/usr/bin/env bash
# jobs/estimator_study.sh [--steps N] [--seeds "1 2 3"] [--jobs J] [--out DIR] [--build DIR]
#                         [--corpus DIR [--recipes "loglinear exactk-inverse"]]
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
# --corpus DIR (dlm-prepare corpus's folder, debian_*.bin): the same
# comparison at the quickstart's shape and recipe (configs/quickstart-mdlm.cfg,
# 1,500 steps unless --steps), scored on 256 test chunks with K 8 and EMA
# weights as the README's quickstart table, the chunk-wise window entropy
# unknown (the +% column is then left out). About 11 minutes a run on one
# thread here.
set -euo pipefail
steps="" seeds="1 2 3" jobs=2 out=runs/estimator-study corpus=""
recipes="loglinear power3 exactk-inverse exactk-uniform"
build=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build
while (($#)); do
  case $1 in
  --steps) steps=$2; shift ;;
  --seeds) seeds=$2; shift ;;
  --jobs) jobs=$2; shift ;;
  --out) out=$2; shift ;;
  --build) build=$2; shift ;;
  --corpus) corpus=$2; shift ;;
  --recipes) recipes=$2; shift ;;
  -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
  *) echo "estimator_study: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for p in dlm-prepare dlm-train dlm-eval; do
  [[ -x $build/bin/$p ]] || { echo "estimator_study: $build/bin/$p not found (--build)" >&2; exit 1; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [[ -n $corpus ]]; then
  [[ -e $corpus/debian_train.bin && -e $corpus/debian_test.bin ]] ||
    { echo "estimator_study: $corpus/debian_{train,val,test}.bin not found (dlm-prepare corpus --out $corpus)" >&2; exit 1; }
  corpus=$(cd "$corpus" && pwd)
  cfg=$build/../configs/quickstart-mdlm.cfg
  [[ -e $cfg ]] || cfg=$(dirname "${BASH_SOURCE[0]}")/../configs/quickstart-mdlm.cfg
  # option lists as words, exported to the runs (no paths with spaces; the
  # literal quotes make libconfig strings)
  # shellcheck disable=SC2089,SC2090
  shape="--set data.train=\"$corpus/debian_train.bin\" --set data.val=\"$corpus/debian_val.bin\"
    --set train.log_every=100 --set train.val_every=500"
  [[ -n $steps ]] && shape+=" --set train.steps=$steps --set train.checkpoint_every=$steps"
  scoring="--data $corpus/debian_test.bin --K 8 --chunks 256 --weights ema"
  entropy=""
else
  data=$out/data
  [[ -e $data/markov_train.bin ]] || "$build/bin/dlm-prepare" synthetic --out "$data" --name markov --seq-len 32 >/dev/null
  steps=${steps:-4000}
  cfg=""
  # shellcheck disable=SC2089,SC2090
  shape="--set data.source=\"shards\" --set data.train=\"$data/markov_train.bin\" --set data.val=\"$data/markov_val.bin\"
    --set model.layers=2 --set model.width=64 --set model.heads=4 --set model.seq_len=32
    --set train.batch=64 --set train.lr=5e-3 --set train.steps=$steps
    --set train.log_every=500 --set train.val_every=1000 --set train.checkpoint_every=$steps"
  scoring="--data $data/markov_test.bin --K 16 --chunks 512 --weights raw"
  entropy=1.6993
fi

recipe_args() {
  case $1 in
  loglinear) echo '--set objective.estimator="mc-t" --set objective.schedule="loglinear"' ;;
  power3) echo '--set objective.estimator="mc-t" --set objective.schedule="power" --set objective.power=3' ;;
  exactk-uniform) echo '--set objective.estimator="exact-k" --set objective.k_proposal="uniform"' ;;
  exactk-inverse) echo '--set objective.estimator="exact-k" --set objective.k_proposal="inverse"' ;;
  esac
}
one_run() { # recipe seed
  local dir=$out/$1-s$2
  [[ -e $dir/score ]] && return 0
  # shellcheck disable=SC2046,SC2086,SC2090 # recipe_args and shape are lists of options
  "$build/bin/dlm-train" $cfg --threads 1 $shape --set train.seed="$2" \
    $(eval echo "$(recipe_args "$1")") --set run.dir=\"$dir\" >"$dir.log" 2>&1
  # shellcheck disable=SC2086
  "$build/bin/dlm-eval" "$dir" --threads 1 $scoring --estimator exact-k --seed 1 --json --no-out >"$dir.json"
  sed -n 's/.*"estimate_nats_per_token": \([0-9.]*\).*/\1/p' "$dir.json" >"$dir/score"
}

export -f one_run recipe_args
# shellcheck disable=SC2090
export out build cfg shape scoring
for r in $recipes; do for s in $seeds; do echo "$r $s"; done; done |
  xargs -P "$jobs" -n 2 bash -c 'one_run "$0" "$1" && echo "done $0 seed $1: $(cat "$out/$0-s$1/score")"'

echo "recipe          seed  exact-k NELBO"
for r in $recipes; do for s in $seeds; do printf "%-15s %4s  %s\n" "$r" "$s" "$(cat "$out/$r-s$s/score")"; done; done
for r in $recipes; do
  for s in $seeds; do echo "$(cat "$out/$r-s$s/score") $(cat "$out/loglinear-s$s/score")"; done |
    awk -v r="$r" -v h="$entropy" '{ d = $1 - $2; m += $1; dm += d; d2 += d * d; n++ }
      END { m /= n; dm /= n; se = n > 1 ? sqrt((d2 / n - dm * dm) * n / (n - 1) / n) : 0
            printf "%-15s mean %.4f", r, m
            if (h != "") printf " (+%.1f%% over %s)", 100 * (m / h - 1), h
            if (r != "loglinear") printf ", paired difference from loglinear %+.4f +- %.4f%s", dm, se, (dm < -2 * se || dm > 2 * se) ? " (counts)" : " (within 2 SE)"
            printf "\n" }'
done
