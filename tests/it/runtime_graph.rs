//! A pipeline built in Rust (`Pipeline::builder()`) run through the library against Apache Kafka:
//! Rust closures as stages (a map, a filter, a key_by), a broadcast to two branches. Every
//! record reaches the branch without the filter; the filter's branch gets exactly the records
//! it keeps; the partitions are committed to their ends only once both branches are done with
//! each record (a record that fans out is acknowledged when all its children are). A flat_map
//! whose pieces are broadcast to two sinks while its actor and a sink are killed: each sink holds
//! exactly the expected pieces, and the partitions commit to their ends.

use std::sync::Arc;
use std::time::Duration;

use streamvisor::actors::Operation;
use streamvisor::actors::SinkTarget;
use streamvisor::config::PipelineConfig;
use streamvisor::graph::{FanOut, GraphError, Pipeline};
use streamvisor::runtime::{Overrides, Runtime};

use crate::support::kafka;
use crate::support::program::{self, SinkFile};
use crate::support::wait::wait_for;

const RECORDS: usize = 2_000;
const PARTITIONS: i32 = 4;

/// Creates `topic` with PARTITIONS partitions and writes RECORDS records into it
/// (`{"key": "k<i % 1000>", "seq": i}`).
async fn load(broker: &kafka::Kafka, topic: &str) {
    kafka::create_topic(&broker.brokers, topic, PARTITIONS).await;
    kafka::produce(&broker.brokers, topic, PARTITIONS, RECORDS);
}

/// Starts `graph` with the pipeline settings `settings` on `broker`.
async fn start(
    broker: &kafka::Kafka,
    graph: streamvisor::graph::Graph<Operation, SinkTarget>,
    settings: &str,
) -> Runtime {
    let config = PipelineConfig::parse_settings(settings, "settings.toml").expect("settings");
    Runtime::start_graph(
        config,
        graph,
        Overrides {
            brokers: Some(broker.brokers.clone()),
        },
    )
    .await
    .expect("the graph starts")
}

/// Waits until the group named like `topic` committed every partition to its end.
async fn wait_committed(broker: &kafka::Kafka, topic: &str) {
    wait_for(
        "the commits to reach the ends",
        Duration::from_secs(120),
        async || match program::lag(&broker.brokers, topic, topic, PARTITIONS) {
            0 => Ok(()),
            lag => Err(format!("lag {lag}")),
        },
    )
    .await;
}

#[actix_rt::test]
async fn a_rust_graph_runs_its_closures_and_acknowledges_every_path() {
    crate::show_warnings();
    let broker = kafka::broker();
    let topic = format!("graph-{}", fastrand::u32(..));
    load(broker, &topic).await;
    let dir = program::test_dir("rust-graph");
    let (all, even) = (dir.join("all.jsonl"), dir.join("even.jsonl"));

    // A typo fails at build, naming it.
    let error = Pipeline::builder()
        .source("events")
        .stage("upper", ["event"], Operation::Passthrough)
        .sink("all", ["upper"], SinkTarget::File(all.clone()))
        .build()
        .expect_err("a dangling input");
    assert_eq!(
        error,
        GraphError::DanglingInput {
            node: "upper".into(),
            input: "event".into()
        }
    );

    // `seq` doubled by a closure, then broadcast to a file of everything and, through a
    // filter keeping even keys' numbers, a second file.
    let double = Operation::Map(Arc::new(|record, out| {
        let mut value: serde_json::Value = serde_json::from_slice(record.value).unwrap_or_default();
        let seq = value["seq"].as_i64().unwrap_or(-1);
        value["double"] = (seq * 2).into();
        serde_json::to_writer(out, &value).map_err(|error| error.to_string())
    }));
    let even_keys = Operation::Filter(Arc::new(|record| {
        record
            .key
            .and_then(|key| std::str::from_utf8(&key[1..]).ok()?.parse::<u64>().ok())
            .is_some_and(|number| number % 2 == 0)
    }));
    // The file of everything is keyed anew: `seq % 7` (key_by).
    let rekey = Operation::KeyBy(Arc::new(|record, out| {
        let value: serde_json::Value = serde_json::from_slice(record.value).unwrap_or_default();
        let seq = value["seq"].as_i64().ok_or("no seq")?;
        out.extend_from_slice(format!("r{}", seq % 7).as_bytes());
        Ok(())
    }));
    let graph = Pipeline::builder()
        .source("events")
        .stage("double", ["events"], double)
        .stage("even", ["double"], even_keys)
        .stage("rekey", ["double"], rekey)
        .fan_out("double", FanOut::Broadcast)
        .sink("all", ["rekey"], SinkTarget::File(all.clone()))
        .sink("even_only", ["even"], SinkTarget::File(even.clone()))
        .build()
        .expect("a valid graph");
    let settings = format!(
        r#"name = "rust-graph"
[flow]
batch_size = 100
max_unacked_per_partition = 1000
[kafka]
group = "{topic}"
[sources.events]
kind = "kafka"
topic = "{topic}"
"#
    );
    let runtime = start(broker, graph, &settings).await;

    wait_for(
        "both files and the commits",
        Duration::from_secs(90),
        async || {
            let (all, even) = (SinkFile::count_lines(&all), SinkFile::count_lines(&even));
            let lag = program::lag(&broker.brokers, &topic, &topic, PARTITIONS);
            match all >= RECORDS && even >= RECORDS / 2 && lag == 0 {
                true => Ok(()),
                false => Err(format!("all={all} even={even} lag={lag}")),
            }
        },
    )
    .await;
    let all = crate::support::lines::json_lines(&all);
    let even = crate::support::lines::json_lines(&even);
    assert_eq!(
        all.len(),
        RECORDS,
        "every record once (no kills, no replays)"
    );
    for line in &all {
        let value = &line["value"];
        let seq = value["seq"].as_i64().expect("seq");
        assert_eq!(value["double"], seq * 2);
        assert_eq!(line["key"], format!("r{}", seq % 7), "keyed anew by key_by");
    }
    let mut kept: Vec<i64> = even
        .iter()
        .map(|line| line["value"]["seq"].as_i64().expect("seq"))
        .collect();
    kept.sort_unstable();
    let expected: Vec<i64> = (0..RECORDS as i64)
        .filter(|seq| (seq % 1000) % 2 == 0)
        .collect();
    assert_eq!(
        kept, expected,
        "the filter's branch holds exactly the even keys' records"
    );
    println!(
        "rust graph: records={RECORDS} all={} even={} committed to the end",
        all.len(),
        even.len()
    );
    runtime.shutdown().await.expect("a clean shutdown");
}

/// A Rust map that panics on two records: each fails its stage actor (restarted, the partition
/// replayed) until its retry budget is spent, then goes to the dead letters with the panic's
/// message; every other record is written, and the partitions are committed to their ends.
#[actix_rt::test]
async fn a_record_a_user_function_keeps_panicking_on_goes_to_the_dead_letters() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};

    crate::show_warnings();
    let broker = kafka::broker();
    let topic = format!("poison-{}", fastrand::u32(..));
    load(broker, &topic).await;
    let dir = program::test_dir("rust-graph-poison");
    let out = dir.join("out.jsonl");
    let picky = Operation::Map(Arc::new(|record, out| {
        let value: serde_json::Value = serde_json::from_slice(record.value).unwrap_or_default();
        let seq = value["seq"].as_i64().unwrap_or(-1);
        assert!(seq % 1000 != 7, "poison record {seq}");
        serde_json::to_writer(out, &value).map_err(|error| error.to_string())
    }));
    let graph = Pipeline::builder()
        .source("events")
        .stage("picky", ["events"], picky)
        .sink("out", ["picky"], SinkTarget::File(out.clone()))
        .build()
        .expect("a valid graph");
    let name = format!("poison-{}", fastrand::u32(..));
    let settings = format!(
        "name = \"{name}\"\n[kafka]\ngroup = \"{topic}\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"{topic}\"\n"
    );
    let runtime = start(broker, graph, &settings).await;
    wait_committed(broker, &topic).await;
    let written = SinkFile::read(&out);
    let seqs: std::collections::BTreeSet<i64> = written.records.values().copied().collect();
    let expected: std::collections::BTreeSet<i64> =
        (0..RECORDS as i64).filter(|seq| seq % 1000 != 7).collect();
    assert_eq!(
        seqs, expected,
        "every record but the poison ones is written"
    );

    let reader: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("group.id", format!("{name}-dl-reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a reader");
    reader
        .subscribe(&[&format!("{name}.dead-letters")])
        .expect("subscribe");
    // At least once: a rewind before a dead letter's delivery acknowledged it sends it again.
    let mut dead = std::collections::BTreeMap::new();
    wait_for("two dead letters", Duration::from_secs(60), async || {
        if let Some(Ok(message)) = reader.poll(Duration::from_millis(500)) {
            let value: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
            let error = message
                .headers()
                .and_then(|headers| {
                    headers
                        .iter()
                        .find(|header| header.key == "streamvisor.error")
                        .and_then(|header| header.value)
                        .map(|value| String::from_utf8_lossy(value).into_owned())
                })
                .unwrap_or_default();
            dead.insert(value["seq"].as_i64().unwrap_or(-1), error);
        }
        match dead.len() >= 2 {
            true => Ok(()),
            false => Err(format!("{dead:?}")),
        }
    })
    .await;
    let restarts = runtime
        .actors()
        .iter()
        .filter(|actor| actor.path.as_str().contains("/stages/picky/"))
        .map(|actor| actor.restarts)
        .sum::<u32>();
    println!("poison: dead_letters={dead:?} stage_restarts={restarts}");
    assert_eq!(dead.keys().copied().collect::<Vec<_>>(), [7, 1007]);
    for (seq, error) in &dead {
        assert!(
            error
                .starts_with("the stage's function panicked 4 times on this record: poison record")
                && error.contains(&seq.to_string()),
            "{error}"
        );
    }
    assert_eq!(
        restarts, 6,
        "each poison record failed its actor 3 times (its budget)"
    );
    runtime.shutdown().await.expect("a clean shutdown");
}

/// map_async through the library against Apache Kafka: a future per record (sleeping 0 to 4 ms), 8 in
/// flight, results in order: every record is written once, in its partition's order, with its
/// new value; the records whose future fails go to the dead letters; the partitions commit to
/// their ends.
#[actix_rt::test]
async fn map_async_keeps_order_and_sends_failures_to_the_dead_letters() {
    use streamvisor::actors::{AsyncRecord, AsyncValue};

    crate::show_warnings();
    let broker = kafka::broker();
    let topic = format!("async-{}", fastrand::u32(..));
    load(broker, &topic).await;
    let dir = program::test_dir("rust-graph-async");
    let out = dir.join("out.jsonl");
    let lookup = Operation::MapAsync {
        function: Arc::new(|record: AsyncRecord| -> AsyncValue {
            Box::pin(async move {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&record.value).map_err(|error| error.to_string())?;
                let seq = value["seq"].as_i64().unwrap_or(-1);
                tokio::time::sleep(Duration::from_millis((seq % 5) as u64)).await;
                if seq % 500 == 3 {
                    return Err(format!("declined {seq}"));
                }
                value["looked_up"] = format!("v{seq}").into();
                serde_json::to_vec(&value).map_err(|error| error.to_string())
            })
        }),
        parallelism: 8,
        ordered: true,
    };
    let graph = Pipeline::builder()
        .source("events")
        .stage("lookup", ["events"], lookup)
        .sink("out", ["lookup"], SinkTarget::File(out.clone()))
        .build()
        .expect("a valid graph");
    let name = format!("async-{}", fastrand::u32(..));
    let settings = format!(
        "name = \"{name}\"\n[flow]\nbatch_size = 100\nmax_unacked_per_partition = 1000\n[kafka]\ngroup = \"{topic}\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"{topic}\"\n"
    );
    let runtime = start(broker, graph, &settings).await;
    wait_committed(broker, &topic).await;
    let text = std::fs::read_to_string(&out).expect("the sink's file");
    let mut last_offset = std::collections::BTreeMap::new();
    let mut seqs = std::collections::BTreeSet::new();
    for line in text.lines() {
        let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let (partition, offset) = (line["partition"].as_i64(), line["offset"].as_i64());
        let seq = line["value"]["seq"].as_i64().expect("seq");
        assert_eq!(line["value"]["looked_up"], format!("v{seq}"));
        let previous = last_offset.insert(partition, offset);
        assert!(
            previous < Some(offset),
            "partition {partition:?}: {offset:?} after {previous:?}"
        );
        assert!(seqs.insert(seq), "seq {seq} written twice");
    }
    let expected: std::collections::BTreeSet<i64> =
        (0..RECORDS as i64).filter(|seq| seq % 500 != 3).collect();
    println!(
        "map_async: written={} declined={}",
        seqs.len(),
        RECORDS - seqs.len()
    );
    assert_eq!(
        seqs, expected,
        "every record but the declined ones, once, in order"
    );
    runtime.shutdown().await.expect("a clean shutdown");
}

/// How many pieces the flat_map test makes of record `seq`.
fn pieces_of(seq: i64) -> i64 {
    if seq == 3 {
        1_000
    } else {
        seq % 3
    }
}

/// Pieces by (partition, offset, index): their `seq` and `piece`.
type PieceMap = std::collections::BTreeMap<(i64, i64, i64), (i64, i64)>;

/// The pieces in a sink's file (repeats collapse), and its lines.
fn pieces_in(path: &std::path::Path) -> (PieceMap, usize) {
    let records = crate::support::lines::json_lines(path);
    let mut pieces = std::collections::BTreeMap::new();
    for record in &records {
        let identity = (
            record["partition"].as_i64().expect("partition"),
            record["offset"].as_i64().expect("offset"),
            record["index"].as_i64().expect("a piece has its index"),
        );
        let value = (
            record["value"]["seq"].as_i64().expect("seq"),
            record["value"]["piece"].as_i64().expect("piece"),
        );
        let before = pieces.insert(identity, value);
        assert!(
            before.is_none_or(|seen| seen == value),
            "a replay changed {identity:?}"
        );
    }
    (pieces, records.len())
}

#[actix_rt::test]
async fn flat_map_pieces_reach_every_sink_and_a_record_commits_after_all_of_them() {
    crate::show_warnings();
    crate::quiet_intended_panics();
    let broker = kafka::broker();
    let topic = format!("flatmap-{}", fastrand::u32(..));
    load(broker, &topic).await;
    let dir = program::test_dir("flat-map");
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    // Record `seq` becomes seq % 3 pieces: none, one, or two; record 3 makes 1,000 (more than
    // a sink's inlet takes, 16 batches of 50: they go on in chunks); broadcast to two sinks.
    let split = Operation::FlatMap(Arc::new(|record, pieces| {
        let value: serde_json::Value = serde_json::from_slice(record.value).unwrap_or_default();
        let seq = value["seq"].as_i64().ok_or("no seq")?;
        for piece in 0..pieces_of(seq) {
            let piece = serde_json::json!({"seq": seq, "piece": piece});
            pieces.emit(piece.to_string().as_bytes());
        }
        Ok(())
    }));
    // Paced (about 5 s for the whole topic), so that the kills land mid-flow.
    let paced = Operation::Throttle(streamvisor::actors::ThrottleSettings {
        rate: 100,
        per: Duration::from_secs(1),
        burst: 50,
    });
    let graph = Pipeline::builder()
        .source("events")
        .stage("paced", ["events"], paced)
        .stage("split", ["paced"], split)
        .fan_out("split", FanOut::Broadcast)
        .sink("a", ["split"], SinkTarget::File(a.clone()))
        .sink("b", ["split"], SinkTarget::File(b.clone()))
        .build()
        .expect("a valid graph");
    let settings = format!(
        "name = \"flatmap\"\n[flow]\nbatch_size = 50\nmax_unacked_per_partition = 200\n\
         [kafka]\ngroup = \"{topic}\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"{topic}\"\n"
    );
    let runtime = start(broker, graph, &settings).await;
    // Kill the flat_map of partition 1 and one sink while records flow.
    wait_for(
        "400 pieces in a.jsonl",
        Duration::from_secs(60),
        async || match SinkFile::count_lines(&a) {
            lines if lines >= 400 => Ok(()),
            lines => Err(format!("{lines} lines")),
        },
    )
    .await;
    for victim in [
        "/pipelines/flatmap/stages/split/p1",
        "/pipelines/flatmap/sinks/a",
    ] {
        wait_for(
            &format!("a kill of {victim} to land"),
            Duration::from_secs(30),
            async || {
                runtime
                    .kill(victim, streamvisor::supervision::KillMode::Panic)
                    .map_err(|error| error.to_string())
            },
        )
        .await;
    }
    wait_committed(broker, &topic).await;

    // `produce` wrote seq i to partition i % 4 at offset i / 4 of a new topic.
    let expected: PieceMap = (0..RECORDS as i64)
        .flat_map(|seq| {
            (0..pieces_of(seq)).map(move |piece| {
                (
                    (seq % PARTITIONS as i64, seq / PARTITIONS as i64, piece),
                    (seq, piece),
                )
            })
        })
        .collect();
    for file in [&a, &b] {
        let (pieces, lines) = pieces_in(file);
        assert_eq!(
            pieces.len(),
            expected.len(),
            "{}: distinct pieces",
            file.display()
        );
        assert!(
            pieces == expected,
            "{}: the pieces are not the expected ones",
            file.display()
        );
        println!(
            "flat_map: {} pieces of {RECORDS} records in {}, {} lines (replays after the kills)",
            expected.len(),
            file.display(),
            lines
        );
    }
    runtime.shutdown().await.expect("clean shutdown");
}
