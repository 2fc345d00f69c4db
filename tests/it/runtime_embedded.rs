//! The runtime through its library API, on the embedded broker: a pipeline file with a
//! generator runs, every generated record reaches the file once, shutdown drains and commits.

use std::collections::BTreeSet;
use std::time::Duration;

use streamvisor::config::PipelineConfig;
use streamvisor::runtime::{Overrides, Runtime};

use crate::support::lines::json_lines;
use crate::support::wait::wait_for;

const WAIT: Duration = Duration::from_secs(60);

#[actix_rt::test]
async fn a_generated_load_reaches_the_file_exactly_once() {
    let dir = std::env::temp_dir().join(format!("streamvisor-runtime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("out.jsonl");
    let text = format!(
        r#"
name = "embedded"
[flow]
batch_size = 100
max_unacked_per_partition = 1000
[sources.events]
kind = "kafka"
topic = "events"
partitions = 4
generator = {{ records = 5000 }}
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "{}"
"#,
        file.display()
    );
    let config = PipelineConfig::parse(&text, "embedded.toml").expect("valid pipeline");
    let runtime = Runtime::start(config, Overrides::default())
        .await
        .expect("runtime starts");
    let actors: Vec<String> = runtime
        .actors()
        .into_iter()
        .map(|actor| actor.path.to_string())
        .collect();
    for path in [
        "/pipelines/embedded/sinks/out",
        "/pipelines/embedded/sources/events",
        "/pipelines/embedded/stages/pass",
    ] {
        assert!(
            actors.contains(&path.to_owned()),
            "{path} listed: {actors:?}"
        );
    }
    let seqs = wait_for("5000 records in the file", WAIT, async || {
        let seqs: Vec<i64> = json_lines(&file)
            .iter()
            .map(|record| record["value"]["seq"].as_i64().expect("seq"))
            .collect();
        match seqs.len() {
            written if written >= 5000 => Ok(seqs),
            written => Err(format!("{written} written")),
        }
    })
    .await;
    let distinct: BTreeSet<i64> = seqs.iter().copied().collect();
    assert_eq!(seqs.len(), 5000, "no duplicates without failures");
    assert_eq!(distinct, (0..5000).collect::<BTreeSet<i64>>());
    runtime.shutdown().await.expect("clean shutdown");
}

/// Every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found
}

#[actix_rt::test]
async fn rolled_message_pack_files_by_date_and_partition_hold_every_record() {
    let dir = std::env::temp_dir().join(format!("streamvisor-rolling-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        r#"
name = "archive"
[sources.events]
kind = "kafka"
topic = "events"
partitions = 4
generator = {{ records = 3000, rate_per_second = 1000 }}
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "{}"
format = "msgpack"
layout = "date-partition"
rotate_bytes = 2000
"#,
        dir.display()
    );
    let config = PipelineConfig::parse(&text, "archive.toml").expect("valid pipeline");
    let runtime = Runtime::start(config, Overrides::default())
        .await
        .expect("runtime starts");
    let read_all = || -> Vec<(i64, std::path::PathBuf)> {
        let mut records = Vec::new();
        for file in files_under(&dir) {
            let bytes = std::fs::read(&file).unwrap_or_default();
            let mut cursor = std::io::Cursor::new(&bytes[..]);
            while (cursor.position() as usize) < bytes.len() {
                let record: serde_json::Value =
                    rmp_serde::from_read(&mut cursor).expect("a MessagePack record");
                records.push((record["value"]["seq"].as_i64().expect("seq"), file.clone()));
            }
        }
        records
    };
    wait_for(
        "3000 records in the files",
        WAIT,
        async || match read_all().len() {
            written if written >= 3000 => Ok(()),
            written => Err(format!("{written} written")),
        },
    )
    .await;
    runtime.shutdown().await.expect("clean shutdown");
    let records = read_all();
    let seqs: BTreeSet<i64> = records.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(records.len(), 3000, "each record once");
    assert_eq!(seqs, (0..3000).collect::<BTreeSet<i64>>());
    let folders: BTreeSet<String> = records
        .iter()
        .filter_map(|(_, file)| {
            let partition = file.parent()?.file_name()?.to_str()?.to_owned();
            let date = file.parent()?.parent()?.file_name()?.to_str()?.to_owned();
            Some(format!("{date}/{partition}"))
        })
        .collect();
    let partitions: BTreeSet<&str> = folders
        .iter()
        .filter_map(|folder| folder.split('/').nth(1))
        .collect();
    assert_eq!(
        partitions,
        BTreeSet::from(["partition=0", "partition=1", "partition=2", "partition=3"]),
        "{folders:?}"
    );
    assert!(
        folders.iter().all(|folder| folder.starts_with("date=20")),
        "{folders:?}"
    );
    assert!(files_under(&dir).len() > 4, "files rolled over at 2 kB");
}
