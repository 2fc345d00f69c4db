//! The memory budget by bytes, through the real program: `memory_budget = "64MiB"`, records of
//! 800 KB, ten times the budget produced while the PostgreSQL sink is held for 30 s (its table
//! locked). Partitions pause on bytes, not on their record cap (10,000 records would be 8 GB):
//! the in-flight gauge reaches the budget and never passes it by more than one batch, the
//! process's peak resident memory stays under the budget plus the consumer's prefetch plus a
//! fixed overhead, and every record is written once when the sink goes on.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::support::kafka;
use crate::support::postgres::{self, Postgres};
use crate::support::program::{self, Passthrough, Program};
use crate::support::wait;

const MIB: u64 = 1 << 20;
/// The budget under test.
const BUDGET: u64 = 64 * MIB;
/// One batch's bytes at most: a 32nd of the budget.
const BATCH_BYTES: u64 = BUDGET / 32;
/// Each record's payload.
const RECORD_BYTES: usize = 800_000;
/// Ten times the budget, and some.
const RECORDS: usize = (10 * BUDGET as usize) / RECORD_BYTES + 1;
/// What the consumer may prefetch: its queue (`queued.max.messages.kbytes`) and one fetch
/// response on its way (`fetch.max.bytes`).
const PREFETCH: u64 = 8 * MIB + 4 * MIB;
/// What the process holds besides records, over its resident memory when ready: librdkafka's
/// producer and consumer buffers, the PostgreSQL sink's write (8 MiB of rows, encoded, then on
/// the wire), the read-ahead of each partition, the allocator's slack. (Measured: 142 MiB at
/// the peak, against a bound of 173 MiB.)
const OVERHEAD: u64 = 64 * MIB;
/// How long the sink is held.
const HOLD: Duration = Duration::from_secs(30);

#[test]
fn a_memory_budget_bounds_the_bytes_in_flight_and_the_resident_memory() {
    crate::show_warnings();
    let broker = kafka::broker();
    let pg = Postgres::start("memory");
    let dir = program::test_dir("memory-budget");
    let topic = format!("memory-{}", std::process::id());
    program::produce_count(&broker.brokers, &topic, 0, 4);
    let pipeline = Passthrough {
        name: "memory",
        group: &topic,
        topic: &topic,
        tables: "[runtime]\nmemory_budget = \"64MiB\"\n[flow]\nbatch_size = 100",
        kafka_properties: "\"queued.max.messages.kbytes\" = \"8192\"\n\"fetch.max.bytes\" = \"4194304\"",
        sink_target: Some(format!(
            "kind = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\ntable = \"events\"\ncreate_table = true",
            pg.url(),
            pg.dir().join("pwfile").display()
        )),
        ..Passthrough::default()
    }
    .write(&dir);
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), "memory");
    program.wait_ready(Duration::from_secs(60));
    let ready_rss = program::peak_rss_kib(program.pid()).expect("the program's VmHWM") * 1024;
    wait::wait_until(
        "the budget's gauge at 64 MiB",
        Duration::from_secs(10),
        || program.metric_sum("streamvisor_memory_budget_bytes") as u64 == BUDGET,
    );

    let lock = hold_table(&pg);
    let produced = Instant::now();
    produce_large(&broker.brokers, &topic);
    println!(
        "memory: produced {RECORDS} records of {RECORD_BYTES} bytes in {:?}",
        produced.elapsed()
    );
    let mut highest = 0_u64;
    let mut lock = lock;
    while lock.try_wait().expect("the lock's psql").is_none() {
        highest = highest.max(program.metric_sum("streamvisor_inflight_bytes") as u64);
        assert_eq!(
            pg.count("SELECT count(*) FROM events"),
            0,
            "nothing written while the table is locked"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let peak_gauge = program.metric_sum("streamvisor_inflight_bytes_peak") as u64;
    wait::wait_until_or(
        "every record in the table",
        Duration::from_secs(240),
        || pg.count("SELECT count(DISTINCT value->>'seq') FROM events") >= RECORDS as i64,
        || program.log_tail(),
    );
    let rows = pg.count("SELECT count(*) FROM events");
    let distinct = pg.count("SELECT count(DISTINCT value->>'seq') FROM events");
    let peak_rss = program::peak_rss_kib(program.pid()).expect("VmHWM") * 1024;
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    program.signal("TERM");
    assert_eq!(program.wait_exit(Duration::from_secs(60)).code(), Some(0));
    println!(
        "memory: budget={} MiB in_flight_highest_sampled={:.1} MiB peak={:.1} MiB \
         rss_ready={:.1} MiB rss_peak={:.1} MiB (bound {:.1} MiB) rows={rows} restarts={restarts}",
        BUDGET / MIB,
        highest as f64 / MIB as f64,
        peak_gauge as f64 / MIB as f64,
        ready_rss as f64 / MIB as f64,
        peak_rss as f64 / MIB as f64,
        (ready_rss + BUDGET + PREFETCH + OVERHEAD) as f64 / MIB as f64,
    );
    assert_eq!(
        (rows, distinct),
        (RECORDS as i64, RECORDS as i64),
        "every record once"
    );
    assert!(
        highest >= BUDGET,
        "the bytes in flight reached the budget while the sink was held: {highest}"
    );
    assert!(
        peak_gauge <= BUDGET + BATCH_BYTES,
        "never past the budget by more than a batch: {peak_gauge}"
    );
    assert!(
        peak_rss <= ready_rss + BUDGET + PREFETCH + OVERHEAD,
        "peak RSS {peak_rss} over ready {ready_rss} + budget + prefetch + overhead"
    );
}

/// Locks table `events` for [`HOLD`] in a psql of its own; returns once the lock is held.
fn hold_table(pg: &Postgres) -> std::process::Child {
    let sql = format!(
        "BEGIN; LOCK TABLE events IN EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT;",
        HOLD.as_secs()
    );
    let child = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            &sql,
            "-d",
            &pg.url(),
        ])
        .env("PGPASSWORD", postgres::PASSWORD)
        .stdout(Stdio::null())
        .spawn()
        .expect("psql");
    wait::wait_until("the table locked", Duration::from_secs(30), || {
        pg.count(
            "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass \
             AND mode = 'ExclusiveLock' AND granted",
        ) == 1
    });
    child
}

/// [`RECORDS`] JSON records of [`RECORD_BYTES`] (`seq` and padding) over four partitions.
fn produce_large(brokers: &str, topic: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut value = Vec::with_capacity(RECORD_BYTES);
    for seq in 0..RECORDS {
        value.clear();
        write!(value, "{{\"seq\":{seq},\"pad\":\"").expect("a value");
        value.resize(RECORD_BYTES - 2, b'x');
        value.extend_from_slice(b"\"}");
        let key = format!("k{seq}");
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition((seq % 4) as i32);
        let since = Instant::now();
        while let Err((error, returned)) = producer.send(record) {
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "the producer queue stayed full for a minute: {error}"
            );
            record = returned;
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every large record delivered");
}
