#!/usr/bin/env bash
# Before/after benchmark runs, interleaved so that the machine's drift hits both sides alike:
#   scripts/bench_compare.sh REV [RUNS]
# builds the actors' benchmarks (keyed_count and pipeline_vs_raw; BENCHES="..." for others) of
# REV, in a temporary worktree, and of this tree, in release and in one target directory, then
# runs them RUNS times (3 by default) in the order before, after, before, after... and prints
# each run's summary line. Not part of the tests. Judge by the medians against the spread: on
# 2 shared cores one run's ratio moves by 0.2.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

rev=${1:?usage: scripts/bench_compare.sh REV [RUNS]}
runs=${2:-3}
read -r -a benches <<< "${BENCHES:-keyed_count pipeline_vs_raw}"
out="${root}/target/bench-compare"
rm -rf "${out}"
mkdir -p "${out}/before" "${out}/after"

# Builds each benchmark of the tree in $1 and copies its binary to ${out}/$2.
build() {
    local tree=$1 side=$2 bench executable
    for bench in "${benches[@]}"; do
        executable=$(cd "${tree}" && CARGO_TARGET_DIR="${root}/target" cargo bench \
            -p streamvisor-actors --bench "${bench}" --no-run 2>&1 |
            sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
        if [ -z "${executable}" ]; then
            echo "no ${bench} benchmark in ${tree}" >&2
            exit 1
        fi
        cp "${executable}" "${out}/${side}/${bench}"
    done
}

worktree=$(mktemp -d)
trap 'git worktree remove --force "${worktree}" >/dev/null 2>&1 || true' EXIT
git worktree add --detach --force "${worktree}" "${rev}" >/dev/null
build "${worktree}" before
build "${root}" after

for run in $(seq 1 "${runs}"); do
    for bench in "${benches[@]}"; do
        for side in before after; do
            printf '== run %s %s %s\n' "${run}" "${bench}" "${side}"
            "${out}/${side}/${bench}" --bench 2>/dev/null | grep -E "^${bench}: records=" || true
        done
    done
done
