#!/usr/bin/env bash
# tests/estimator_initial_loss.sh <print_losses> <work dir> <dlm-train command...>:
# an untrained model's loss under mdlm's exact-k estimator, for every
# proposal, is about ln 257: with every CE near ln V the NELBO per token,
# (1/T) sum_k (1/k) E_k[sum CE], is ln V. Estimand: the mean logged loss of
# 32 steps at a learning rate of 1e-9 (the model stays untrained); it must
# lie within 3 standard errors of the 32 losses (plus 0.02 for the
# untrained model's own distance from uniform) of ln 257.
set -euo pipefail
print_losses=$1 work=$2
shift 2
train=("$@") # under mpiexec -n 1: LeakSanitizer's tracer fails in an MPI singleton
rm -rf "$work" && mkdir -p "$work"
for kp in uniform inverse power; do
  "${train[@]}" --threads 1 --set data.source=synthetic --set train.steps=32 --set train.warmup=0 \
    --set train.lr=1e-9 --set train.min_lr=1e-9 --set train.batch=64 --set train.log_every=1 \
    --set train.val_every=1000 --set model.layers=1 --set model.width=32 --set model.heads=2 \
    --set model.seq_len=64 --set objective.estimator=\"exact-k\" --set objective.k_proposal=\"$kp\" \
    --set run.dir=\""$work/$kp"\" >"$work/$kp.log"
  "$print_losses" "$work/$kp/run.h5" | awk -v kp="$kp" '
    $1 == "train/loss" { s += $4; s2 += $4 * $4; n++ }
    END {
      m = s / n; se = sqrt((s2 / n - m * m) / (n - 1)); d = m - log(257)
      printf "estimator %s: mean loss %.4f +- %.4f over %d steps, ln 257 = %.4f\n", kp, m, se, n, log(257)
      if (n != 32 || d > 3 * se + 0.02 || -d > 3 * se + 0.02) { print "estimator " kp ": FAIL"; exit 1 }
    }'
done
echo "estimator initial loss: ok"
