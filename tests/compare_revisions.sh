#!/usr/bin/env bash
# tests/compare_revisions.sh BASE [NEW] [--steps N]: builds two revisions
# (git worktrees in a temporary folder; NEW defaults to the working tree as
# it is, uncommitted changes included), runs the shortened quickstart with
# each (the corpus, both objectives, N training steps, default 8), and
# compares the runs' training loss and gradient-norm rows and validation
# loss rows bit for bit (hex floats from run.h5), and dlm-eval's estimate
# and standard error of each (eval.json, 10 digits). Exits 0 when all are
# identical, 1 when any differs (both sides are printed).
#
# For changes that must not move a number (a restructuring):
#   tests/compare_revisions.sh main~3
set -euo pipefail

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
base="" new="" steps=8
while (($#)); do
  case $1 in
    --steps) steps=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "compare_revisions: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) if [[ -z $base ]]; then base=$1; elif [[ -z $new ]]; then new=$1; else
         echo "compare_revisions: too many arguments" >&2; exit 2; fi ;;
  esac
  shift
done
[[ -n $base ]] || { usage >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
work=$(mktemp -d /tmp/dlm-compare-XXXXXX)
cleanup() {
  git -C "$repo" worktree remove --force "$work/src-base" >/dev/null 2>&1 || true
  [[ -n $new ]] && git -C "$repo" worktree remove --force "$work/src-new" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
njobs=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2)

# build <name> <source folder>: the programs and print_losses into $work/build-<name>
build() {
  echo "compare_revisions: building $1 ($(git -C "$2" rev-parse --short HEAD)$([[ $2 == "$repo" ]] && echo ', working tree'))"
  cmake -S "$2" -B "$work/build-$1" -DCMAKE_BUILD_TYPE=Release >"$work/cmake-$1.log" 2>&1
  cmake --build "$work/build-$1" -j "$njobs" --target dlm-prepare dlm-train dlm-eval \
    >"$work/make-$1.log" 2>&1 || { tail -n 30 "$work/make-$1.log" >&2; exit 1; }
}
git -C "$repo" worktree add --detach "$work/src-base" "$base" >/dev/null 2>&1
build base "$work/src-base"
if [[ -n $new ]]; then
  git -C "$repo" worktree add --detach "$work/src-new" "$new" >/dev/null 2>&1
  build new "$work/src-new"
  new_src=$work/src-new
else
  build new "$repo"
  new_src=$repo
fi
cmake --build "$work/build-new" --target print_losses >>"$work/make-new.log" 2>&1

# Same threads for both: one, so nothing but the code can differ.
export OMP_NUM_THREADS=1 BLIS_NUM_THREADS=1
for rev in base new; do
  mkdir -p "$work/run-$rev"
  [[ -d $work/run-base/data && $rev == new ]] && cp -r "$work/run-base/data" "$work/run-new/"
  src=$work/src-base
  [[ $rev == new ]] && src=$new_src
  echo "compare_revisions: shortened quickstart with $rev ($steps steps)"
  (cd "$work/run-$rev" && DLM_BUILD_DIR=$work/build-$rev bash "$src/jobs/quickstart.sh" --no-setup \
    --steps "$steps" --chunks 8 --samples 2 >"$work/quickstart-$rev.log" 2>&1) ||
    { tail -n 30 "$work/quickstart-$rev.log" >&2; exit 1; }
done

status=0
for obj in mdlm ar; do
  for rev in base new; do
    "$work/build-new/tests/print_losses" "$work/run-$rev/runs/quickstart-$obj/run.h5" >"$work/$obj-$rev.txt"
  done
  rows=$(wc -l <"$work/$obj-base.txt")
  if cmp -s "$work/$obj-base.txt" "$work/$obj-new.txt" && ((rows > 0)); then
    echo "compare_revisions: $obj: $rows loss rows bit-identical"
  else
    echo "compare_revisions: $obj: rows differ (base | new):"
    paste "$work/$obj-base.txt" "$work/$obj-new.txt"
    status=1
  fi
  for rev in base new; do
    grep -E '"(estimate|stderr)_nats_per_token"' "$work/run-$rev/runs/quickstart-$obj/eval.json" \
      >"$work/$obj-eval-$rev.txt"
  done
  if cmp -s "$work/$obj-eval-base.txt" "$work/$obj-eval-new.txt" && [[ -s $work/$obj-eval-base.txt ]]; then
    echo "compare_revisions: $obj: evaluation identical: $(tr -d ' \n' <"$work/$obj-eval-base.txt")"
  else
    echo "compare_revisions: $obj: evaluation differs (base | new):"
    paste "$work/$obj-eval-base.txt" "$work/$obj-eval-new.txt"
    status=1
  fi
done
exit "$status"
