#!/usr/bin/env bash
# The test command: installs what a fresh Debian machine lacks (build libraries, PostgreSQL for
# the sink tests (the tests start private clusters; the package's own is left alone), Debian's
# Prometheus and promtool for the monitoring tests (started by the tests on loopback), the
# rustfmt and clippy components, Java 17 and Maven when missing, Apache Kafka's jars for the test
# broker), then checks formatting and lints and runs every test of the workspace. CI (.ci/run)
# runs exactly this. The tests start and stop their services themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

log "system packages"
missing=()
for package in pkg-config libssl-dev zlib1g-dev build-essential postgresql postgresql-client prometheus; do
    dpkg -s "${package}" >/dev/null 2>&1 || missing+=("${package}")
done
# Apache Kafka's broker (tests/kafka/pom.xml) needs Java 17 and Maven.
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
if ((${#missing[@]})); then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    ${sudo_cmd} apt-get update -qq
    # The packages' own services (PostgreSQL's cluster, Prometheus on :9090) are not started:
    # the tests start their own on free loopback ports.
    policy=/usr/sbin/policy-rc.d
    added_policy=""
    if [ ! -e "${policy}" ]; then
        printf '#!/bin/sh\nexit 101\n' | ${sudo_cmd} tee "${policy}" >/dev/null
        ${sudo_cmd} chmod +x "${policy}"
        added_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive ${sudo_cmd} apt-get install -y -qq "${missing[@]}"
    if [ -n "${added_policy}" ]; then
        ${sudo_cmd} rm -f "${policy}"
    fi
fi

log "toolchain"
if ! command -v cargo >/dev/null; then
    echo "cargo not found: install Rust (rustup) first" >&2
    exit 1
fi
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^${component}"; then
        rustup component add "${component}"
    fi
done
cargo --version

log "test broker (Apache Kafka's jars, through Maven)"
# tests/kafka/pom.xml pins the version; the jars stay in ~/.m2 between runs. The tests start
# the broker themselves (tests/it/support/kafka.rs), on loopback, in a temp folder.
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
if [ "${java_major%%.*}" -lt 17 ]; then
    echo "java ${java_major} found: Apache Kafka 4's broker needs Java 17 or later" >&2
    exit 1
fi
mvn -q -B -f tests/kafka/pom.xml dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
echo "classpath: $(tr ':' '\n' < tests/kafka/target/classpath.txt | wc -l) jars, $(tr ':' '\n' < tests/kafka/target/classpath.txt | grep -o 'kafka_2.13-[0-9.]*')"

log "format"
cargo fmt --all -- --check

log "lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

log "imports"
python3 scripts/import_cycles.py actors/src src supervision/src

log "tests"
cargo test --workspace --locked
