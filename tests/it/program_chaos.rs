//! The HTTP chaos test: `streamvisor run examples/passthrough.toml --brokers <Apache Kafka>` as a child
//! process; 100,000 records written with `streamvisor produce` (ten rounds of NDJSON on stdin,
//! interleaved with the kills, so that records flow while actors die); 30 kills of random actors
//! in both modes through `POST /api/actors/kill`; SIGTERM at the end exits 0; the file, deduped
//! by (partition, offset), holds every record exactly once.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::support::kafka;
use crate::support::kills;
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const RECORDS: usize = 100_000;
const ROUNDS: usize = 10;
const KILLS: usize = 30;
const WAIT: Duration = Duration::from_secs(240);

#[test]
fn thirty_http_kills_and_a_sigterm_lose_nothing() {
    let broker = kafka::broker();
    let dir = program::test_dir("http-chaos");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/passthrough.toml");
    // The first round makes the topic (8 partitions) before the pipeline subscribes.
    program::produce_count(&broker.brokers, "events", 0, 8);
    let mut program = Program::start(&dir, &example, Some(&broker.brokers), "passthrough");
    program.wait_ready(Duration::from_secs(60));

    let seed = program::chaos_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let kills_done = Arc::new(AtomicUsize::new(0));
    let producer = kills::produce_during_kills(
        &broker.brokers,
        "events",
        RECORDS,
        ROUNDS,
        KILLS,
        &kills_done,
    );
    let file = dir.join("out/passthrough.jsonl");
    let killed = kills::kill_randomly(
        &program,
        &["/pipelines/passthrough/"],
        KILLS,
        &mut rng,
        &kills_done,
        || SinkFile::count_lines(&file) < RECORDS,
    );
    producer.join().expect("the producer thread");

    wait::wait_until_or(
        "every record in the file",
        WAIT,
        || SinkFile::read(&file).records.len() >= RECORDS,
        || {
            format!(
                "seed {seed} (CHAOS_SEED replays its kills), {} of {RECORDS} records; the log's tail:\n{}",
                SinkFile::read(&file).records.len(),
                program.log_tail()
            )
        },
    );
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    let escalations = program.metric_sum("streamvisor_supervisor_escalations_total");
    program.signal("TERM");
    let status = program.wait_exit(Duration::from_secs(60));
    let log = program.log();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0; log:\n{}",
        program.log_tail()
    );
    assert!(log.contains("summary: in="), "a summary at exit");

    let output = SinkFile::read(&file);
    let seqs: BTreeSet<i64> = output.records.values().copied().collect();
    let duplicates = output.lines - output.records.len();
    println!(
        "chaos: produced={RECORDS} distinct={} lost={} duplicates={duplicates} kills={} restarts={restarts} seed={seed}",
        output.records.len(),
        RECORDS.saturating_sub(seqs.len()),
        killed.paths.len(),
    );
    assert_eq!(
        output.records.len(),
        RECORDS,
        "one line per record after dedupe"
    );
    assert_eq!(
        seqs,
        (0..RECORDS as i64).collect::<BTreeSet<i64>>(),
        "every record, once"
    );
    assert_eq!(
        restarts, KILLS as f64,
        "each kill restarted one actor: {killed:#?}"
    );
    assert_eq!(escalations, 0.0);
}
