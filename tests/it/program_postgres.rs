//! The PostgreSQL sink through the real program, against Apache Kafka and a private PostgreSQL:
//! - chaos: 100,000 records -> passthrough -> PostgreSQL (upsert on the origin) while 30
//!   random actors are killed: the table holds exactly the produced records;
//! - outage: PostgreSQL stopped for 20 s mid-run: nothing lost, `/health/ready` 503 meanwhile
//!   and 200 after, and the retries follow the backoff (counted);
//! - bad input: a record the database refuses goes to the dead letters with the database's
//!   error and the others are written; wrong credentials and an unknown table are errors at
//!   start (`check` and `run` exit 2).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::ClientConfig;

use crate::support::kafka;
use crate::support::kills;
use crate::support::postgres::Postgres;
use crate::support::program::{self, Passthrough, Program, RunWithin};
use crate::support::wait;

const WAIT: Duration = Duration::from_secs(240);

/// A passthrough pipeline `name` from `topic` into table `events` of `pg`.
fn pipeline(dir: &Path, name: &str, topic: &str, pg: &Postgres, sink: &str) -> PathBuf {
    let password_file = pg.dir().join("pwfile");
    Passthrough {
        name,
        group: name,
        topic,
        sink,
        sink_target: Some(format!(
            "kind = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\ntable = \"events\"\ncreate_table = true",
            pg.url(),
            password_file.display()
        )),
        ..Passthrough::default()
    }
    .write(dir)
}

/// Rows in `events`, and distinct `seq` values among them.
fn rows(pg: &Postgres) -> (i64, i64) {
    let answer = pg.query("SELECT count(*) || ' ' || count(DISTINCT value->>'seq') FROM events");
    let line = answer.first().cloned().unwrap_or_default();
    let mut numbers = line.split(' ').map(|n| n.parse().unwrap_or(-1));
    (numbers.next().unwrap_or(-1), numbers.next().unwrap_or(-1))
}

#[test]
fn thirty_kills_leave_exactly_the_produced_records_in_postgres() {
    const RECORDS: usize = 100_000;
    const KILLS: usize = 30;
    let broker = kafka::broker();
    let pg = Postgres::start("chaos");
    let dir = program::test_dir("pg-chaos");
    program::produce_count(&broker.brokers, "pg-chaos", 0, 8);
    let file = pipeline(&dir, "pgchaos", "pg-chaos", &pg, "");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "pgchaos");
    program.wait_ready(Duration::from_secs(60));

    let seed = program::chaos_seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let done = Arc::new(AtomicUsize::new(0));
    let producer =
        kills::produce_during_kills(&broker.brokers, "pg-chaos", RECORDS, 10, KILLS, &done);
    let killed = kills::kill_randomly(
        &program,
        &["/pipelines/pgchaos/"],
        KILLS,
        &mut rng,
        &done,
        || rows(&pg).0 < RECORDS as i64,
    );
    producer.join().expect("the producer thread");
    wait::wait_until("every record in the table", WAIT, || {
        rows(&pg).1 >= RECORDS as i64
    });
    let written = program.metric_sum("streamvisor_records_out_total");
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    program.signal("TERM");
    let status = program.wait_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM exits 0: {}",
        program.log_tail()
    );

    let (count, distinct) = rows(&pg);
    let (low, high) = (
        pg.count("SELECT min((value->>'seq')::bigint) FROM events"),
        pg.count("SELECT max((value->>'seq')::bigint) FROM events"),
    );
    println!(
        "chaos-pg: produced={RECORDS} rows={count} lost={} replayed={} kills={} restarts={restarts} seed={seed}",
        RECORDS as i64 - distinct,
        written as i64 - count,
        killed.paths.len()
    );
    assert_eq!(count, RECORDS as i64, "one row per record");
    assert_eq!(distinct, RECORDS as i64, "every record");
    assert_eq!((low, high), (0, RECORDS as i64 - 1));
    assert_eq!(
        restarts, KILLS as f64,
        "each kill restarted one actor: {killed:#?}"
    );
}

#[test]
fn a_twenty_second_outage_is_retried_with_backoff_and_loses_nothing() {
    const ROUND: usize = 20_000;
    let broker = kafka::broker();
    let pg = Postgres::start("outage");
    let dir = program::test_dir("pg-outage");
    program::produce_count(&broker.brokers, "pg-outage", 0, 4);
    let retry = "retry = { min = \"100ms\", max = \"2s\", factor = 2.0 }";
    let file = pipeline(&dir, "pgoutage", "pg-outage", &pg, retry);
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "pgoutage");
    program.wait_ready(Duration::from_secs(60));
    kills::produce_round(&broker.brokers, "pg-outage", 0, ROUND);
    wait::wait_until("the first round in the table", WAIT, || {
        rows(&pg).0 == ROUND as i64
    });
    let retries_before = program.metric_sum("streamvisor_sink_retries_total");

    let stopped_at = Instant::now();
    pg.stop();
    kills::produce_round(&broker.brokers, "pg-outage", ROUND, ROUND);
    let mut unready = 0;
    let mut reasons = String::new();
    while stopped_at.elapsed() < Duration::from_secs(20) {
        program.assert_alive();
        if let Some(answer) = program.get("/health/ready") {
            if answer.status == 503 {
                unready += 1;
                reasons = answer.body;
            } else {
                assert!(
                    stopped_at.elapsed() < Duration::from_secs(2),
                    "ready {:?} into the outage: {}",
                    stopped_at.elapsed(),
                    answer.body
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    pg.start_again();
    let outage = stopped_at.elapsed();
    wait::wait_until(
        "/health/ready 200 after the outage",
        Duration::from_secs(30),
        || {
            program
                .get("/health/ready")
                .is_some_and(|answer| answer.status == 200)
        },
    );
    kills::produce_round(&broker.brokers, "pg-outage", 2 * ROUND, ROUND);
    wait::wait_until("every record in the table", WAIT, || {
        rows(&pg).1 >= 3 * ROUND as i64
    });
    let retries = program.metric_sum("streamvisor_sink_retries_total") - retries_before;
    program.signal("TERM");
    assert_eq!(program.wait_exit(Duration::from_secs(60)).code(), Some(0));

    // Attempt k (k = 1, 2, ...) fails when it starts before PostgreSQL is back: it starts
    // after the sum of the first k - 1 delays (100 ms doubling, at most 2 s).
    let delays = (1..).map(|k: u32| (100f64 * 2f64.powi(k as i32 - 1)).min(2000.0) / 1000.0);
    let mut expected = 0;
    let mut started = 0.0;
    for delay in delays {
        if started >= outage.as_secs_f64() {
            break;
        }
        expected += 1;
        started += delay;
    }
    let (count, distinct) = rows(&pg);
    println!(
        "pg-outage: outage={outage:?} unready_samples={unready} retries={retries} expected_retries={expected} rows={count} distinct={distinct}"
    );
    assert!(
        unready >= 80,
        "unready only {unready} times of ~100: {reasons}"
    );
    assert!(
        reasons.contains("PostgreSQL"),
        "the reason names it: {reasons}"
    );
    assert!(
        (retries as i64 - expected as i64).abs() <= 1,
        "{retries} retries, the backoff gives {expected} in {outage:?}"
    );
    assert_eq!(count, 3 * ROUND as i64, "one row per record");
    assert_eq!(distinct, 3 * ROUND as i64, "nothing lost");
}

#[test]
fn a_refused_record_goes_to_the_dead_letters_and_bad_settings_fail_at_start() {
    let broker = kafka::broker();
    let pg = Postgres::start("bad-input");
    let dir = program::test_dir("pg-bad-input");
    program::produce_count(&broker.brokers, "pg-bad", 0, 2);

    // Wrong credentials and an unknown table: `check` and `run` exit 2, naming the problem.
    let wrong = dir.join("wrong-password");
    std::fs::write(&wrong, "not-the-password").expect("password file");
    let url = pg.url();
    let wrong_password = Passthrough {
        name: "pgwrong",
        group: "pgwrong",
        topic: "pg-bad",
        sink_target: Some(format!(
            "kind = \"postgres\"\nurl = \"{url}\"\npassword_file = \"{}\"\ntable = \"events\"",
            wrong.display()
        )),
        ..Passthrough::default()
    }
    .write(&dir);
    let checked = program::streamvisor()
        .arg("check")
        .arg(&wrong_password)
        .output_within_timeout();
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert_eq!(checked.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("sinks.out") && stderr.contains("password authentication failed"),
        "{stderr}"
    );
    let unknown_table = Passthrough {
        name: "pgmissing",
        group: "pgmissing",
        topic: "pg-bad",
        sink_target: Some(format!(
            "kind = \"postgres\"\nurl = \"{url}\"\npassword_file = \"{}\"\ntable = \"missing\"",
            pg.dir().join("pwfile").display()
        )),
        ..Passthrough::default()
    }
    .write(&dir);
    let ran = program::streamvisor()
        .args([
            "run",
            "--brokers",
            &broker.brokers,
            "--http",
            &format!("127.0.0.1:{}", program::free_port()),
        ])
        .arg(&unknown_table)
        .current_dir(&dir)
        .output_within_timeout();
    let stderr = String::from_utf8_lossy(&ran.stderr);
    assert_eq!(ran.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("relation \"missing\" does not exist"),
        "{stderr}"
    );

    // A NUL escape is valid JSON that jsonb refuses (22P05): that record goes to the dead
    // letters, the other nine are written.
    let file = pipeline(&dir, "pgbad", "pg-bad", &pg, "");
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "pgbad");
    program.wait_ready(Duration::from_secs(60));
    let mut lines = String::new();
    for seq in 0..10 {
        let note = if seq == 4 { "\\u0000" } else { "fine" };
        lines.push_str(&format!(
            "{{\"key\":\"k{seq}\",\"seq\":{seq},\"note\":\"{note}\"}}\n"
        ));
    }
    let produced = program::output_within(
        program::streamvisor().args(["produce", "--brokers", &broker.brokers, "--topic", "pg-bad"]),
        Some(lines.into_bytes()),
        program::COMMAND_TIMEOUT,
    );
    assert!(produced.status.success());
    wait::wait_until("nine rows", WAIT, || rows(&pg).0 == 9);
    wait::wait_until("the dead letter counted", WAIT, || {
        program.metric_sum("streamvisor_dead_letters_total") >= 1.0
    });
    wait::wait_until("every offset committed", WAIT, || {
        program::lag(&broker.brokers, "pgbad", "pg-bad", 2) == 0
    });
    program.signal("TERM");
    assert_eq!(program.wait_exit(Duration::from_secs(60)).code(), Some(0));
    assert_eq!(
        pg.count("SELECT count(*) FROM events WHERE value->>'seq' = '4'"),
        0
    );

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", "pgbad-dead-letter-reader")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a reader");
    reader
        .subscribe(&["pgbad.dead-letters"])
        .expect("subscribe");
    let mut letter = None;
    wait::wait_until("a dead letter", Duration::from_secs(60), || {
        match reader.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => letter = Some(message.detach()),
            Some(Err(error)) => panic!("reading the dead letters: {error}"),
            None => {}
        }
        letter.is_some()
    });
    let letter = letter.expect("a dead letter");
    let headers = letter.headers().expect("headers");
    let header = |name: &str| {
        headers
            .iter()
            .find(|header| header.key == name)
            .and_then(|header| header.value)
            .map(|value| String::from_utf8_lossy(value).into_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("streamvisor.origin.topic"), "pg-bad");
    assert_eq!(header("streamvisor.actor"), "/pipelines/pgbad/sinks/out");
    assert!(
        header("streamvisor.error").contains("22P05"),
        "{}",
        header("streamvisor.error")
    );
    let payload: serde_json::Value =
        serde_json::from_slice(letter.payload().unwrap_or_default()).expect("JSON payload");
    assert_eq!(payload["seq"], 4);
}

/// A refused write's row-by-row pass over 5,000 rows outlasts the write timeout (200 ms): it
/// gets 50 ms a row instead of being retried whole for ever, and a write that still cannot
/// finish is halved. The refused record goes to the dead letters, the 4,999 others are written
/// once, and nothing restarts.
#[test]
fn a_row_by_row_pass_longer_than_the_write_timeout_finishes() {
    const RECORDS: usize = 5_000;
    let broker = kafka::broker();
    let pg = Postgres::start("isolation");
    let dir = program::test_dir("pg-isolation");
    let topic = format!("pg-isolation-{}", fastrand::u32(..));
    program::produce_count(&broker.brokers, &topic, 0, 1);
    let file = pipeline(
        &dir,
        "pgisolation",
        &topic,
        &pg,
        "max_rows = 5000\nlinger = \"2s\"\nwrite_timeout = \"200ms\"",
    );
    let mut lines = String::new();
    for seq in 0..RECORDS {
        let note = if seq == 2_500 { "\\u0000" } else { "fine" };
        lines.push_str(&format!(
            "{{\"key\":\"k{seq}\",\"seq\":{seq},\"note\":\"{note}\"}}\n"
        ));
    }
    let produced = program::output_within(
        program::streamvisor().args(["produce", "--brokers", &broker.brokers, "--topic", &topic]),
        Some(lines.into_bytes()),
        program::COMMAND_TIMEOUT,
    );
    assert!(produced.status.success());
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "pgisolation");
    program.wait_ready(Duration::from_secs(60));
    let log = program.log_file();
    wait::wait_until_or(
        "every offset committed",
        WAIT,
        || program::lag(&broker.brokers, "pgisolation", &topic, 1) == 0,
        || program::tail_of(&log),
    );
    let (count, distinct) = rows(&pg);
    let dead = program.metric_sum("streamvisor_dead_letters_total");
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    let retries = program.metric_sum("streamvisor_sink_retries_total");
    program.signal("TERM");
    assert_eq!(program.wait_exit(Duration::from_secs(60)).code(), Some(0));
    println!("pg-isolation: rows={count} distinct={distinct} dead_letters={dead} retries={retries} restarts={restarts}");
    assert_eq!((count, distinct), (RECORDS as i64 - 1, RECORDS as i64 - 1));
    assert_eq!(dead, 1.0, "the refused record");
    assert_eq!(restarts, 0.0);
}
