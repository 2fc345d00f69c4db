//! Record-level rejections go to the dead letters, and nothing restarts, through the real
//! program against Apache Kafka. One input broadcast to three Kafka sinks, each refusing other
//! records:
//!
//! - `plain`: only the record above the producer's `message.max.bytes` (1,000,000), refused
//!   before it leaves; its dead letter carries the payload cut to what fits and says so;
//! - `small`: a topic with `max.message.bytes = 2048`, whose broker refuses whole message sets
//!   for the 4,000-byte records in them: the records are tried again alone, and only the large
//!   ones are dead letters;
//! - `compacted`: a compacted topic, whose broker refuses the records without a key
//!   (INVALID_RECORD) and asks for the others of their message sets again.
//!
//! Every other record is written once, and each sink's dead letters are exactly its refusals.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::support::kafka;
use crate::support::program::{self, Isolation, Program};
use crate::support::wait;

const SMALL: usize = 300;
const MEDIUM: usize = 10;
const KEYLESS: usize = 5;
const HUGE_BYTES: usize = 1_000_500;
const PARTITIONS: i32 = 2;

/// The input: `SMALL` keyed records of about 60 bytes, one of `HUGE_BYTES`, `MEDIUM` of 4,000
/// bytes and `KEYLESS` small ones without a key, interleaved.
fn produce(brokers: &str, topic: &str) -> usize {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.max.bytes", "2000000")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut sent = 0;
    let mut send = |key: Option<String>, value: String| {
        let mut record = BaseRecord::to(topic)
            .payload(&value)
            .partition((sent % PARTITIONS as usize) as i32);
        if let Some(key) = &key {
            record = record.key(key);
        }
        producer
            .send(record)
            .map_err(|(error, _)| error)
            .expect("queued");
        sent += 1;
    };
    for i in 0..SMALL {
        send(
            Some(format!("k{i}")),
            format!(r#"{{"seq":{i},"kind":"small"}}"#),
        );
        if i == 100 {
            let huge = format!(
                r#"{{"kind":"huge","pad":"{}"}}"#,
                "x".repeat(HUGE_BYTES - 24)
            );
            assert_eq!(huge.len(), HUGE_BYTES);
            send(Some("huge".into()), huge);
        }
        if i % 30 == 7 {
            let pad = "m".repeat(4_000);
            send(
                Some(format!("m{i}")),
                format!(r#"{{"kind":"medium","pad":"{pad}"}}"#),
            );
        }
        if i % 60 == 11 {
            send(None, format!(r#"{{"seq":{i},"kind":"keyless"}}"#));
        }
    }
    producer.flush(Duration::from_secs(60)).expect("flushed");
    sent
}

/// A passthrough program from `<name>-in` (filled by [`produce`]) into a Kafka sink on
/// `<name>-small`, a topic of `max.message.bytes = 2048` (as are the `also_small` topics, made
/// first), with `sink` added to the sink's table. Returns it once every input record is
/// committed (it must not restart on the way), and the records produced.
fn into_a_small_topic(
    broker: &kafka::Kafka,
    name: &str,
    also_small: &[String],
    sink: &str,
) -> (Program, usize) {
    let (input, output) = (format!("{name}-in"), format!("{name}-small"));
    actix_rt::Runtime::new()
        .expect("a runtime")
        .block_on(async {
            kafka::create_topic(&broker.brokers, &input, PARTITIONS).await;
            for topic in std::iter::once(&output).chain(also_small) {
                kafka::create_topic_with(
                    &broker.brokers,
                    topic,
                    PARTITIONS,
                    &[("max.message.bytes", "2048")],
                )
                .await;
            }
        });
    let produced = produce(&broker.brokers, &input);
    let dir = program::test_dir(name);
    let text = format!(
        "name = \"{name}\"\n[kafka]\ngroup = \"{name}\"\n[sources.events]\nkind = \"kafka\"\n\
         topic = \"{input}\"\npartitions = {PARTITIONS}\nformat = \"bytes\"\n[stages.pass]\n\
         inputs = [\"events\"]\nop = \"passthrough\"\n[sinks.out]\ninputs = [\"pass\"]\n\
         kind = \"kafka\"\ntopic = \"{output}\"\n{sink}\n"
    );
    let pipeline = dir.join(format!("{name}.toml"));
    std::fs::write(&pipeline, text).expect("pipeline file");
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), name);
    program.wait_ready(Duration::from_secs(60));
    let log = program.log_file();
    wait::wait_until_or(
        "every record committed",
        Duration::from_secs(120),
        || {
            program.assert_alive();
            program::lag(&broker.brokers, name, &input, PARTITIONS) == 0
        },
        || program::tail_of(&log),
    );
    (program, produced)
}

fn header(message: &impl Message, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == name)
        .and_then(|header| header.value)
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[test]
fn records_a_topic_refuses_become_dead_letters_and_the_rest_is_written_once() {
    crate::show_warnings();
    let broker = kafka::broker();
    let name = format!("refusals-{}", fastrand::u32(..));
    let topics = ["in", "plain", "small", "compacted"].map(|topic| format!("{name}-{topic}"));
    let runtime = actix_rt::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        kafka::create_topic(&broker.brokers, &topics[0], PARTITIONS).await;
        kafka::create_topic(&broker.brokers, &topics[1], PARTITIONS).await;
        kafka::create_topic_with(
            &broker.brokers,
            &topics[2],
            PARTITIONS,
            &[("max.message.bytes", "2048")],
        )
        .await;
        kafka::create_topic_with(
            &broker.brokers,
            &topics[3],
            PARTITIONS,
            &[("cleanup.policy", "compact")],
        )
        .await;
    });
    let produced = produce(&broker.brokers, &topics[0]);
    assert_eq!(produced, SMALL + 1 + MEDIUM + KEYLESS);

    let dir = program::test_dir(&name);
    let sink = |sink: &str, topic: &str| {
        format!("[sinks.{sink}]\ninputs = [\"pass\"]\nkind = \"kafka\"\ntopic = \"{topic}\"\n")
    };
    let text = format!(
        "name = \"{name}\"\n[kafka]\ngroup = \"{name}\"\n[sources.events]\nkind = \"kafka\"\n\
         topic = \"{}\"\npartitions = {PARTITIONS}\nformat = \"bytes\"\n[stages.pass]\n\
         inputs = [\"events\"]\nop = \"passthrough\"\n{}{}{}",
        topics[0],
        sink("plain", &topics[1]),
        sink("small", &topics[2]),
        sink("compacted", &topics[3]),
    );
    let pipeline = dir.join("refusals.toml");
    std::fs::write(&pipeline, text).expect("pipeline file");
    let mut program = Program::start(&dir, &pipeline, Some(&broker.brokers), &name);
    program.wait_ready(Duration::from_secs(60));
    wait::wait_until("every record committed", Duration::from_secs(120), || {
        program.assert_alive();
        program::lag(&broker.brokers, &name, &topics[0], PARTITIONS) == 0
    });
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    program.signal("INT");
    program.wait_exit(Duration::from_secs(60));

    let count = |topic: &str| {
        program::read_to_end(
            &broker.brokers,
            topic,
            PARTITIONS,
            Isolation::ReadUncommitted,
        )
    };
    let letters = program::read_to_end(
        &broker.brokers,
        &format!("{name}.dead-letters"),
        1,
        Isolation::ReadUncommitted,
    );
    let mut by_sink: BTreeMap<String, usize> = BTreeMap::new();
    for letter in &letters {
        let actor = header(letter, "streamvisor.actor").expect("the sink");
        *by_sink
            .entry(actor.rsplit('/').next().unwrap_or_default().to_owned())
            .or_default() += 1;
        assert_eq!(
            header(letter, "streamvisor.reason").as_deref(),
            Some("refused_by_sink")
        );
        let huge = header(letter, "streamvisor.truncated");
        if let Some(length) = huge {
            assert_eq!(length, format!("{}", HUGE_BYTES));
            assert!(letter.payload().map_or(0, <[u8]>::len) < 1_000_000);
        }
    }
    println!(
        "refusals: dead letters by sink {by_sink:?}, restarts {restarts}, out {} {} {}",
        count(&topics[1]).len(),
        count(&topics[2]).len(),
        count(&topics[3]).len()
    );
    assert_eq!(restarts, 0.0, "a refused record never restarts a sink");
    let expected = BTreeMap::from([
        ("compacted".to_owned(), 1 + KEYLESS),
        ("plain".to_owned(), 1),
        ("small".to_owned(), 1 + MEDIUM),
    ]);
    assert_eq!(by_sink, expected);
    let distinct = |topic: &str| {
        let records = count(topic);
        let origins: std::collections::BTreeSet<(i32, i64)> =
            records.iter().map(program::origin_of).collect();
        assert_eq!(origins.len(), records.len(), "{topic}: each record once");
        records.len()
    };
    assert_eq!(distinct(&topics[1]), produced - 1);
    assert_eq!(distinct(&topics[2]), produced - 1 - MEDIUM);
    assert_eq!(distinct(&topics[3]), produced - 1 - KEYLESS);
    assert_eq!(
        letters
            .iter()
            .filter(|letter| header(*letter, "streamvisor.truncated").is_some())
            .count(),
        3,
        "the huge record's dead letter, once per sink, cut to fit"
    );
}

/// The exactly-once sink: the same input into the `small` topic. The record above the
/// producer's limit is refused before it leaves; the 4,000-byte ones make the broker refuse
/// their message sets, so they go again alone and are then refused for good. Each refusal aborts
/// its transaction, the next carries the rest: a `read_committed` reader sees every other record
/// once, the dead letters are exactly the refusals, and nothing restarts.
#[test]
fn the_exactly_once_sink_dead_letters_refused_records_and_commits_the_rest_once() {
    crate::show_warnings();
    let broker = kafka::broker();
    let name = format!("eos-refusals-{}", fastrand::u32(..));
    let (mut program, produced) = into_a_small_topic(broker, &name, &[], "exactly_once = true");
    let output = format!("{name}-small");
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    program.signal("INT");
    program.wait_exit(Duration::from_secs(60));

    let letters = program::read_to_end(
        &broker.brokers,
        &format!("{name}.dead-letters"),
        1,
        Isolation::ReadUncommitted,
    );
    let written = program::read_to_end(
        &broker.brokers,
        &output,
        PARTITIONS,
        Isolation::ReadCommitted,
    );
    let origins: std::collections::BTreeSet<(i32, i64)> =
        written.iter().map(program::origin_of).collect();
    let refused: std::collections::BTreeSet<(i32, i64)> =
        letters.iter().map(program::origin_of).collect();
    println!(
        "exactly-once refusals: produced={produced} written={} distinct={} dead_letters={} restarts={restarts}",
        written.len(),
        origins.len(),
        letters.len()
    );
    assert_eq!(restarts, 0.0, "a refused record never restarts the sink");
    assert_eq!(
        letters.len(),
        1 + MEDIUM,
        "the huge record and the medium ones"
    );
    assert_eq!(refused.len(), letters.len(), "one dead letter each");
    assert_eq!(
        written.len(),
        produced - 1 - MEDIUM,
        "every other record once"
    );
    assert_eq!(origins.len(), written.len());
    assert!(origins.is_disjoint(&refused));
}

/// A dead letter the dead-letter topic itself refuses (a topic configured smaller than the
/// producer's limit) cannot go anywhere: replaying its record would only be refused again. It
/// is lost, and said so: counted in `streamvisor_records_lost_total{reason="dead_letter_refused"}`
/// (whose alert fires), its offset acknowledged, the partition going on; nothing restarts and
/// nothing loops.
#[test]
fn a_dead_letter_its_own_topic_refuses_is_counted_lost_and_nothing_loops() {
    crate::show_warnings();
    let broker = kafka::broker();
    let name = format!("dl-refused-{}", fastrand::u32(..));
    let dead_letters = format!("{name}.dead-letters");
    let (mut program, produced) = into_a_small_topic(broker, &name, &[dead_letters], "");
    let output = format!("{name}-small");
    let lost = program.metric_where(
        "streamvisor_records_lost_total",
        &[("reason", "dead_letter_refused")],
    );
    let restarts = program.metric_sum("streamvisor_actor_restarts_total");
    program.signal("INT");
    program.wait_exit(Duration::from_secs(60));
    let written = program::read_to_end(
        &broker.brokers,
        &output,
        PARTITIONS,
        Isolation::ReadUncommitted,
    );
    let letters = program::read_to_end(
        &broker.brokers,
        &format!("{name}.dead-letters"),
        PARTITIONS,
        Isolation::ReadUncommitted,
    );
    println!(
        "dead letters refused: produced={produced} written={} dead_letters={} lost={lost} restarts={restarts}",
        written.len(),
        letters.len()
    );
    assert_eq!(
        lost,
        (1 + MEDIUM) as f64,
        "the huge and the medium records, counted lost"
    );
    assert_eq!(letters.len(), 0, "none fit the dead-letter topic");
    assert_eq!(written.len(), produced - 1 - MEDIUM, "every other record");
    assert_eq!(restarts, 0.0);
}
