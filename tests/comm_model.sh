#!/usr/bin/env bash
# tests/comm_model.sh: the README's performance model of what each rank
# sends per optimizer step, as code.
#   comm_model.sh --check N      N dlm-bench lines on stdin: each line's
#                                comm_bytes against the model (exit 1 beyond 1e-6
#                                relative: the model counts the same floats)
#   comm_model.sh --table        predicted network bytes and step times for
#                                GPT-2 small and medium at 8 and 64 nodes
# Bytes rank 0 sends per step, G sequences of T tokens, width C, L blocks,
# N0 parameter floats on rank 0, a bandwidth-optimal all-reduce sending
# 2 (p-1)/p of its payload:
#   dp: 2 (dp-1)/dp * 4 N0  (gradients; ZeRO-1's reduce-scatter + all-gather
#       send the same)  +  8 (dp-1) G/dp  (the per-sequence losses gathered)
#   tp: 2 (tp-1)/tp * ((4 L + 2) * 4 C T G/dp  (2 all-reduces per block
#       forward, 2 backward, the embedding and the head's input gradient)
#       + 20 T G/dp  (the vocabulary-parallel cross-entropy: a max and two
#       sums per token)  + 8  (the gradient norm))
#   pp: 4 C T G/dp per stage boundary a rank sends across (activations
#       forward, their gradients backward: stage 0 and the last send one
#       direction, inner stages both)
set -euo pipefail
mode=${1:-}
case $mode in
--check)
  awk -v want="${2:?--check needs the number of bench lines expected}" '
    /^bench / {
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      dp = tp = pp = 1; lay = v["layout"]
      if (match(lay, /dp[0-9]+/)) dp = substr(lay, RSTART + 2, RLENGTH - 2) + 0
      if (match(lay, /tp[0-9]+/)) tp = substr(lay, RSTART + 2, RLENGTH - 2) + 0
      if (match(lay, /pp[0-9]+/)) pp = substr(lay, RSTART + 2, RLENGTH - 2) + 0
      G = v["batch"]; T = v["T"]; C = v["d"]; L = v["L"]; N0 = v["params"]
      tok = G / dp * T
      pred = 0
      if (dp > 1) pred += 2 * (dp - 1) / dp * 4 * N0 + 8 * (dp - 1) * G / dp
      if (tp > 1) pred += 2 * (tp - 1) / tp * ((4 * L + 2) * 4 * C * tok + 20 * tok + 8)
      if (pp > 1) pred += 4 * C * tok
      rel = (v["comm_bytes"] - pred) / pred; if (rel < 0) rel = -rel
      printf "comm_model %s %s: measured %.0f B, model %.0f B, relative difference %.2e\n",
             lay, v["objective"], v["comm_bytes"], pred, rel
      n++; if (rel > 1e-6) bad = 1
    }
    END { if (n != want) { print "comm_model: " n " bench lines, expected " want; exit 1 }
          if (bad) { print "comm_model: FAIL"; exit 1 } print "comm_model: ok" }'
  ;;
--table)
  # node: 64 cores at 100 GFLOP/s each (dlm-bench here: l6-d384 at 212-233
  # GFLOP/s on 2 cores); network 100 Gb/s = 12.5e9 B/s per node; G = 512
  # sequences of T = 1024 tokens; tp and pp inside a node send nothing over
  # the network (the tp2 rows put tp across two nodes); pp4 (inner stages) runs micro-batches of 1 with 1F1B's
  # bubble; no overlap (compute + comm) and full overlap (max) bound the
  # step time; the network part of a node at the busiest (inner) stage.
  awk 'BEGIN {
    split("gpt2-small gpt2-medium", names, " "); Ls[1] = 12; Cs[1] = 768; Ls[2] = 24; Cs[2] = 1024
    V = 50304; T = 1024; G = 512; rate = 64 * 100e9; bw = 12.5e9
    printf "%-12s %5s %-22s %14s %10s %10s %14s\n", "shape", "nodes", "network layout", "bytes/node", "compute s", "comm s", "step s (overlap - none)"
    for (s = 1; s <= 2; s++) {
      L = Ls[s]; C = Cs[s]; Nne = 12 * L * C * C; N = Nne + V * C
      fpt = 6 * Nne + 6 * C * V + 12 * L * C * T
      for (k = 1; k <= 2; k++) {
        nodes = k == 1 ? 8 : 64; comp = fpt * G * T / (nodes * rate)
        for (lay = 1; lay <= 3; lay++) {
          if (lay == 1) { dp = nodes; b = 8 * (dp - 1) / dp * N; name = sprintf("dp%d", dp) }
          else if (lay == 2) { dp = nodes / 4; b = 8 * (dp - 1) / dp * N / 4 + 8 * C * T * G / dp; name = sprintf("dp%d x pp4", dp) }
          else { dp = nodes / 2; b = 8 * (dp - 1) / dp * N / 2 + (4 * L + 2) * 4 * C * T * G / dp; name = sprintf("dp%d x tp2", dp) }
          m = G / dp; t = lay != 2 ? comp : comp * (m + 3) / m  # 1F1B bubble, micro-batches of 1
          c = b / bw; lo = t > c ? t : c
          printf "%-12s %5d %-22s %14.3e %10.2f %10.3f %6.2f - %5.2f\n", names[s], nodes, name, b, t, c, lo, t + c
        }
      }
    }
  }'
  ;;
*) echo "usage: comm_model.sh --check | --table" >&2; exit 2 ;;
esac
