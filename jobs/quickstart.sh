#!/usr/bin/env bash
# jobs/quickstart.sh: the first command a new user runs. Sets up (installs
# what is missing, builds), builds the default corpus from Debian packages
# (cached), trains a small masked-diffusion model and an AR baseline of the
# same shape for about five minutes each, evaluates both on the same test
# chunks and prints one table. Data goes to ./data, runs to ./runs.
#
#   jobs/quickstart.sh [--no-setup] [--steps N] [--chunks N] [--samples K]
#
# --steps overrides train.steps of both runs (CI uses a few); --chunks and
# --samples set the evaluation's test chunks and mask draws per chunk.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
setup=1
steps=""
chunks=256
samples=8
while (($#)); do
  case $1 in
    --no-setup) setup=0 ;;
    --steps) steps=$2; shift ;;
    --chunks) chunks=$2; shift ;;
    --samples) samples=$2; shift ;;
    -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ((setup)); then bash "$repo/jobs/setup.sh"; fi
source "$repo/jobs/lib.sh"
dlm_find_programs quickstart dlm-prepare dlm-train dlm-eval

# One process using every core, unless the caller chose otherwise.
cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cores}
export BLIS_NUM_THREADS=${BLIS_NUM_THREADS:-$cores}
t0=$SECONDS

dlm_default_corpus quickstart

extra=()
[[ -n $steps ]] && extra=(--set "train.steps=$steps" --set "train.warmup=$((steps / 10))" \
  --set "train.checkpoint_every=$steps" --set "train.val_every=$steps" --set "train.log_every=$(((steps + 3) / 4))")
for obj in mdlm ar; do
  echo "quickstart: training $obj (configs/quickstart-$obj.cfg)"
  "$bin/dlm-train" "$repo/configs/quickstart-$obj.cfg" "${extra[@]}"
done

for obj in mdlm ar; do
  echo "quickstart: evaluating $obj on $chunks test chunks"
  "$bin/dlm-eval" "runs/quickstart-$obj" --data data/corpus/debian_test.bin \
    --chunks "$chunks" --K "$samples" --json >"runs/quickstart-$obj/eval.json"
done

field() { sed -n "s/.*\"$2\": *\"\{0,1\}\([^,\"}]*\).*/\1/p" "$1" | head -n 1; }
echo
printf '%-6s %12s %12s %26s %10s\n' objective parameters tokens "test loss (nats/token)" bits/byte
for obj in mdlm ar; do
  j=runs/quickstart-$obj/eval.json
  loss=$(field "$j" estimate_nats_per_token)
  se=$(field "$j" stderr_nats_per_token)
  if [[ $obj == mdlm ]]; then
    shown=$(printf '<= %.4f +- %.4f' "$loss" "$se")
  else
    shown=$(printf '%.4f (exact)' "$loss")
  fi
  printf '%-6s %12s %12s %26s %10.4f\n' "$obj" "$(field "$j" parameters)" "$(field "$j" tokens_seen)" \
    "$shown" "$(field "$j" bits_per_byte)"
done
echo
echo "mdlm's figure is an upper bound on its negative log-likelihood (the diffusion ELBO),"
echo "with the standard error over test chunks; ar's is its exact likelihood on the same chunks."
echo "quickstart: done in $((SECONDS - t0)) s; runs in runs/quickstart-{mdlm,ar}, metrics in run.h5"
