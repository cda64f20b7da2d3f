# jobs/lib.sh: what the job scripts share, sourced after they set $repo.
#
#   dlm_find_programs SCRIPT PROG...  sets bin to the build's bin folder
#       ($DLM_BUILD_DIR, default $repo/build; relative to the current folder)
#       and stops, naming SCRIPT, if a program is missing
#   dlm_default_corpus SCRIPT         ./data/corpus as it is if it verifies,
#       else built from Debian's packages (dlm-prepare corpus)

dlm_find_programs() {
  local script=$1 p
  shift
  local build_dir=${DLM_BUILD_DIR:-$repo/build}
  [[ $build_dir == /* ]] || build_dir=$PWD/$build_dir
  bin=$build_dir/bin
  for p in "$@"; do
    [[ -x $bin/$p ]] || { echo "$script: $bin/$p is missing: run jobs/setup.sh" >&2; exit 1; }
  done
}

dlm_default_corpus() {
  if [[ -f data/corpus/debian_test.json ]] && "$bin/dlm-prepare" check data/corpus/debian_train.bin \
    data/corpus/debian_val.bin data/corpus/debian_test.bin >/dev/null 2>&1; then
    echo "$1: data/corpus is there and verifies"
  else
    echo "$1: building the default corpus into data/corpus"
    "$bin/dlm-prepare" corpus --out data/corpus --name debian
  fi
}
