#!/usr/bin/env bash
# Fuzzes one cargo-fuzz target of fuzz/ (or `all`, each in turn) for SECONDS seconds:
#   scripts/fuzz.sh TARGET SECONDS        e.g. scripts/fuzz.sh record_json 300
# Not part of the test command. Installs cargo-fuzz when missing; builds with the nightly
# toolchain when one is installed, else with stable and RUSTC_BOOTSTRAP=1 (cargo-fuzz passes
# -Z flags). Each target runs on its corpus, fuzz/corpus/TARGET (the seed-* files are
# committed), with libFuzzer's limits: 10 s an input (a hang), 2 GiB (out of memory), and an
# input size fitting the target. A crash, hang or out-of-memory makes the script exit non-zero
# and names the input libFuzzer kept under fuzz/artifacts/TARGET/.
#
# Coverage: libFuzzer's last status line (`cov:` edges and `ft:` features reached; a count, not a
# source report: `cargo fuzz coverage` is too heavy here), then the target's own decoders that the
# corpus reached, from a replay of the corpus with -print_coverage=1 (needs llvm-symbolizer).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: $0 TARGET|all SECONDS  (targets: ${targets[*]})" >&2
    exit 2
}

targets=()
for file in fuzz/fuzz_targets/*.rs; do
    targets+=("$(basename "${file}" .rs)")
done
[ $# -eq 2 ] || usage
[[ $2 =~ ^[0-9]+$ ]] || usage
seconds=$2
if [ "$1" = all ]; then
    chosen=("${targets[@]}")
elif [ -f "fuzz/fuzz_targets/$1.rs" ]; then
    chosen=("$1")
else
    usage
fi

# The largest input a target is given (the file target adds up to 2 MiB of filler to its own).
max_len() {
    case $1 in
        kill_body) echo 4096 ;; # ADMIN_BODY_LIMIT: the route reads no more
        json_path_predicate) echo 4096 ;;
        file_torn_tail) echo 65536 ;;
        *) echo 16384 ;;
    esac
}

# Where the target's decoders are, as functions or files in -print_coverage's lines.
decoders() {
    case $1 in
        record_json) echo 'source(::|/)decode|ingest(::|/)records|sink(::|/)json_lines' ;;
        record_msgpack) echo 'source(::|/)decode|ingest(::|/)records' ;;
        json_path_predicate) echo 'operators(::|/)json' ;;
        file_torn_tail) echo 'sink(::|/)file(::|\.rs)|sink(::|/)rolling' ;;
        socket_*) echo 'ingest(::|/)(socket|records)' ;;
        pipeline_toml) echo 'streamvisor::config|/src/config' ;;
        kill_body) echo 'http(::|/)routes|supervision(::|/src/)(registry|path)' ;;
        *) echo 'streamvisor' ;;
    esac
}

if rustup toolchain list 2>/dev/null | grep '^nightly' >/dev/null; then
    cargo=(cargo +nightly)
else
    cargo=(cargo)
    export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# The fuzz crate is a workspace of its own: start its lock from the project's versions.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

# The file targets write and fsync a file per input: on a tmpfs that costs nothing.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    scratch=$(mktemp -d /dev/shm/streamvisor-fuzz.XXXXXX)
else
    scratch=$(mktemp -d)
fi
trap 'rm -rf "${scratch}"' EXIT

"${cargo[@]}" fuzz build

failed=()
for target in "${chosen[@]}"; do
    corpus=fuzz/corpus/${target}
    log=${scratch}/${target}.log
    mkdir -p "${corpus}"
    printf '\n== %s: %s s\n' "${target}" "${seconds}"
    status=0
    TMPDIR=${scratch} "${cargo[@]}" fuzz run "${target}" "${corpus}" -- \
        -max_total_time="${seconds}" -max_len="$(max_len "${target}")" \
        -rss_limit_mb=2048 -timeout=10 2>&1 | tee "${log}" || status=$?

    printf '\n== %s: coverage (libFuzzer: cov = edges, ft = features)\n' "${target}"
    grep -E '^#[0-9]+.* cov: ' "${log}" | tail -n 1 || echo "(no status line)"
    reached=$(TMPDIR=${scratch} "${cargo[@]}" fuzz run "${target}" "${corpus}" -- \
        -runs=0 -print_coverage=1 2>&1 | grep '^COVERED_FUNC' |
        grep -E "$(decoders "${target}")" | sed -E 's/^COVERED_FUNC: hits: [0-9]+ //' | sort -u || true)
    if [ -n "${reached}" ]; then
        printf '%s decoder functions reached, for example:\n' "$(wc -l <<<"${reached}")"
        head -n 12 <<<"${reached}"
    else
        echo "WARNING: no decoder function of ${target} in -print_coverage's list (none reached, or no llvm-symbolizer)"
    fi

    if [ "${status}" -ne 0 ]; then
        printf '\n== %s FAILED (exit %s)\n' "${target}" "${status}"
        grep -E -A1 'panicked at|^SUMMARY|Test unit written to|Reproduce with' "${log}" || true
        failed+=("${target}")
    fi
done

if ((${#failed[@]})); then
    printf '\n== failed: %s (inputs under fuzz/artifacts/<target>/; replay one with\n' "${failed[*]}"
    printf '   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>)\n'
    exit 1
fi
printf '\n== no crash, hang or out-of-memory in: %s\n' "${chosen[*]}"
