#!/usr/bin/env bash
# tests/same_at_ranks.sh: runs one command at several MPI rank counts and
# fails unless its output is the same at every count as at the first, bit
# for bit: stdout (after --normalise, a sed script that blanks timings) and
# each --file it writes (.h5 files through h5_digest, timings --skip'ped;
# others as text). In the command, @N@ stands for the rank count and @DIR@
# for that run's own folder under --work.
#
#   same_at_ranks.sh --work DIR --ranks "1 2 3" --digest h5_digest [--skip NAME]...
#       [--normalise SED] [--file NAME]... -- mpiexec -n @N@ PROGRAM ... --out @DIR@/x.h5
set -euo pipefail

work="" ranks="" digest="" normalise="" skips=() files=()
while (($#)); do
  case $1 in
    --work) work=$2; shift ;;
    --ranks) ranks=$2; shift ;;
    --digest) digest=$2; shift ;;
    --skip) skips+=(--skip "$2"); shift ;;
    --normalise) normalise=$2; shift ;;
    --file) files+=("$2"); shift ;;
    --) shift; break ;;
    *) echo "same_at_ranks: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $work && -n $ranks && $# -gt 0 ]] || { echo "same_at_ranks: see the usage at the top" >&2; exit 2; }

rm -rf "$work"
mkdir -p "$work"
first=""
for n in $ranks; do
  dir=$work/np$n
  mkdir -p "$dir"
  cmd=()
  for a in "$@"; do
    a=${a//@N@/$n}
    cmd+=("${a//@DIR@/$dir}")
  done
  if ! "${cmd[@]}" >"$dir/stdout" 2>"$dir/stderr"; then
    echo "same_at_ranks: the run at $n ranks failed: ${cmd[*]}"
    cat "$dir/stderr"
    exit 1
  fi
  # rank 0 speaks for the job: a log line from another rank is a duplicate or a stray
  if grep -v '^\[0\]' "$dir/stderr" | grep -q . || grep -q '^\[[1-9][0-9]*\] ' "$dir/stdout"; then
    echo "same_at_ranks: at $n ranks, ranks other than 0 logged:"
    cat "$dir/stderr" "$dir/stdout"
    exit 1
  fi
  # the log's info lines (stdout) say how the job ran, which differs by design
  sed -e '/^\[0\] info: /d' -e "s|$dir|@DIR@|g" ${normalise:+-e "$normalise"} "$dir/stdout" \
    >"$dir/stdout.cmp"
  for f in "${files[@]}"; do
    [[ -s $dir/$f ]] || { echo "same_at_ranks: the run at $n ranks wrote no $f"; exit 1; }
    if [[ $f == *.h5 ]]; then
      "$digest" "$dir/$f" "${skips[@]}" | sed "s|$dir|@DIR@|g" >"$dir/$f.cmp"
    else
      sed "s|$dir|@DIR@|g" "$dir/$f" >"$dir/$f.cmp"
    fi
  done
  if [[ -z $first ]]; then
    first=$n
    continue
  fi
  for f in stdout "${files[@]}"; do
    if ! diff "$work/np$first/$f.cmp" "$dir/$f.cmp" >"$dir/$f.diff"; then
      echo "same_at_ranks: $f differs between $first and $n ranks (< $first, > $n):"
      head -n 40 "$dir/$f.diff"
      exit 1
    fi
    echo "same_at_ranks: $f at $n ranks = at $first ranks ($(wc -l <"$dir/$f.cmp") lines compared)"
  done
done
echo "same_at_ranks: identical at ranks $ranks"
