//! The broker away mid-run, in two phases, on a broker of the test's own: (a) SIGSTOP for 20 s,
//! then SIGCONT; (b) SIGKILL, 20 s away, then a restart on the same folder and port. In each
//! phase, while `streamvisor run` works through 30,000 records (file sink, about 1,000 a
//! second): the broker away is retried in place (`streamvisor_actor_restarts_total` unchanged),
//! the program's CPU stays under 10% of a core while the broker is away, `/health/ready` turns
//! 503 with a reason naming the broker once nothing answered for `BROKER_SILENCE_LIMIT` (10 s),
//! and 200 again once the broker is back. Nothing is lost: the file holds every record, and the
//! group is committed to every partition's end.

use std::time::{Duration, Instant};

use streamvisor_actors::BROKER_SILENCE_LIMIT;

use crate::support::kafka::{self, Kafka};
use crate::support::program::{self, Program, SinkFile};
use crate::support::wait;

const RECORDS: usize = 30_000;
const PARTITIONS: i32 = 4;
const AWAY: Duration = Duration::from_secs(20);
const WAIT: Duration = Duration::from_secs(240);
/// The unready reason may come this long after the silence limit (statistics come once a
/// second; the probe polls every 200 ms).
const REPORT_SLACK: Duration = Duration::from_secs(4);
/// CPU time is measured from this long into the outage (the sink first writes what it holds).
const SETTLE: Duration = Duration::from_secs(5);

/// What one outage showed.
struct Outage {
    /// When `/health/ready` first answered 503 naming the broker, after the broker went away.
    unready_after: Duration,
    /// The program's CPU while the broker was away (after [`SETTLE`]), in cores.
    cpu_cores: f64,
    /// How long `/health/ready` took to answer 200 again once the broker was back.
    ready_again_after: Duration,
}

#[test]
fn a_broker_stopped_then_killed_mid_run_is_retried_in_place_and_reported_unready() {
    let broker = kafka::private();
    let dir = program::test_dir("outage");
    let topic = format!("outage-{}", std::process::id());
    program::produce_count(&broker.brokers, &topic, RECORDS, PARTITIONS);
    let pipeline = program::Passthrough {
        name: "outage",
        group: &topic,
        topic: &topic,
        tables: "[flow]\nbatch_size = 100\nmax_unacked_per_partition = 500\n\
                 [commit]\ninterval = \"500ms\"",
        sink: "delay_per_batch = \"100ms\"",
        ..Default::default()
    }
    .write(&dir);
    let file = dir.join("out/outage.jsonl");
    let mut run = Program::start(&dir, &pipeline, Some(&broker.brokers), "outage");
    run.wait_ready(WAIT);
    let lines_before = |run: &mut Program, more: usize| {
        let at = SinkFile::count_lines(&file) + more;
        wait::wait_until(&format!("{at} lines written"), WAIT, || {
            run.assert_alive();
            SinkFile::count_lines(&file) >= at
        });
    };
    lines_before(&mut run, 3_000);
    let restarts = run.metric_sum("streamvisor_actor_restarts_total");

    let stopped = outage(
        &broker,
        &mut run,
        "SIGSTOP",
        |broker| broker.signal("STOP"),
        |broker| broker.signal("CONT"),
    );
    assert_eq!(
        run.metric_sum("streamvisor_actor_restarts_total"),
        restarts,
        "a stopped broker restarted no actor; log:\n{}",
        run.log_tail()
    );
    lines_before(&mut run, 3_000);
    let killed = outage(&broker, &mut run, "SIGKILL", Kafka::kill, Kafka::restart);
    assert_eq!(
        run.metric_sum("streamvisor_actor_restarts_total"),
        restarts,
        "a killed broker restarted no actor; log:\n{}",
        run.log_tail()
    );
    let written = SinkFile::count_lines(&file);
    assert!(
        written < RECORDS,
        "records still flowed after the second outage ({written} lines written)"
    );

    let log = run.log_file();
    wait::wait_until_or(
        "every record in the file",
        WAIT,
        || {
            run.assert_alive();
            SinkFile::read(&file).records.len() >= RECORDS
        },
        || program::tail_of(&log),
    );
    wait::wait_until("commits at every partition's end", WAIT, || {
        program::lag(&broker.brokers, &topic, &topic, PARTITIONS) == 0
    });
    run.signal("TERM");
    assert_eq!(
        run.wait_exit(Duration::from_secs(60)).code(),
        Some(0),
        "{}",
        run.log_tail()
    );
    let output = SinkFile::read(&file);
    let seqs: std::collections::BTreeSet<i64> = output.records.values().copied().collect();
    for (phase, outage) in [("stop", &stopped), ("kill", &killed)] {
        println!(
            "broker-outage {phase}: away={AWAY:?} unready_after={:?} cpu_cores={:.3} ready_again_after={:?}",
            outage.unready_after, outage.cpu_cores, outage.ready_again_after
        );
    }
    println!(
        "broker-outage: produced={RECORDS} distinct={} lost={} duplicates={} restarts={}",
        output.records.len(),
        RECORDS.saturating_sub(seqs.len()),
        output.lines - output.records.len(),
        (run.metric_sum("streamvisor_actor_restarts_total") - restarts) as i64
    );
    assert_eq!(seqs, (0..RECORDS as i64).collect());
    for outage in [&stopped, &killed] {
        assert!(
            outage.cpu_cores < 0.10,
            "CPU while the broker was away: {:.3} of a core",
            outage.cpu_cores
        );
    }
}

/// Takes the broker away with `away`, watches the program for [`AWAY`], brings it back with
/// `back`, and waits until the program is ready again.
fn outage(
    broker: &Kafka,
    run: &mut Program,
    what: &str,
    away: impl Fn(&Kafka),
    back: impl Fn(&Kafka),
) -> Outage {
    let began = Instant::now();
    away(broker);
    let mut unready_after = None;
    let mut cpu_from = None;
    while began.elapsed() < AWAY {
        run.assert_alive();
        if unready_after.is_none() && names_the_broker(run, &broker.brokers) {
            unready_after = Some(began.elapsed());
        }
        if cpu_from.is_none() && began.elapsed() >= SETTLE {
            cpu_from = Some((Instant::now(), cpu_seconds(run.pid())));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (cpu_began, cpu_before) = cpu_from.expect("the outage outlasts the settling time");
    let cpu_cores = (cpu_seconds(run.pid()) - cpu_before) / cpu_began.elapsed().as_secs_f64();
    let unready_after = unready_after.unwrap_or_else(|| {
        panic!(
            "/health/ready never named the broker in {AWAY:?} after the {what} (it answered {:?}); log:\n{}",
            run.get("/health/ready").map(|answer| (answer.status, answer.body)),
            run.log_tail()
        )
    });
    // The silence counts from the broker's last answer, up to a heartbeat before it went away.
    assert!(
        unready_after >= BROKER_SILENCE_LIMIT - Duration::from_millis(1_500)
            && unready_after <= BROKER_SILENCE_LIMIT + REPORT_SLACK,
        "unready {unready_after:?} after the {what}, not about {BROKER_SILENCE_LIMIT:?}"
    );
    let back_at = Instant::now();
    back(broker);
    run.wait_ready(WAIT);
    Outage {
        unready_after,
        cpu_cores,
        ready_again_after: back_at.elapsed(),
    }
}

/// True when `/health/ready` answers 503 with a reason naming `brokers`.
fn names_the_broker(run: &Program, brokers: &str) -> bool {
    run.get("/health/ready").is_some_and(|answer| {
        answer.status == 503
            && answer
                .body
                .contains(&format!("no answer from the Kafka brokers {brokers}"))
    })
}

/// User and system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the command (which may hold spaces) start at the state, field 3.
    let after_command = &stat[stat.rfind(')').expect("a command in parentheses") + 2..];
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    let ticks = |index: usize| -> f64 { fields[index - 3].parse().expect("a tick count") };
    (ticks(14) + ticks(15)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    let output = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}
