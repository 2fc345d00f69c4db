//! The runtime through its library API, on the embedded broker: a pipeline file with a
//! generator runs, every generated record reaches the file once, shutdown drains and commits.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use streamvisor::config::PipelineConfig;
use streamvisor::runtime::{Overrides, Runtime};

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
    let began = Instant::now();
    let seqs = loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let seqs: Vec<i64> = text
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).expect("JSON line");
                record["value"]["seq"].as_i64().expect("seq")
            })
            .collect();
        if seqs.len() >= 5000 {
            break seqs;
        }
        assert!(
            began.elapsed() < WAIT,
            "only {} of 5000 records reached the file",
            seqs.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let distinct: BTreeSet<i64> = seqs.iter().copied().collect();
    assert_eq!(seqs.len(), 5000, "no duplicates without failures");
    assert_eq!(distinct, (0..5000).collect::<BTreeSet<i64>>());
    runtime.shutdown().await.expect("clean shutdown");
}
