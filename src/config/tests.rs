use super::*;

const GOOD: &str = r#"
name = "demo"
[supervision]
max_restarts = 5
within = "10s"
backoff = { min = "10ms", max = "1s", factor = 2.0 }
[flow]
batch_size = 100
max_unacked_per_partition = 1000
[kafka.properties]
"session.timeout.ms" = "6000"
[sources.events]
kind = "kafka"
topic = "events"
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "out/demo.jsonl"
"#;

#[test]
fn a_good_file_loads_with_defaults() {
    let config = PipelineConfig::parse(GOOD, "demo.toml").expect("valid");
    assert_eq!(config.name, "demo");
    assert_eq!(config.group(), "demo");
    assert_eq!(config.commit.max_records, 5_000);
    assert_eq!(config.sources["events"].format, "json");
    assert_eq!(config.kafka.properties["session.timeout.ms"], "6000");
    assert_eq!(config.chain().expect("a line"), ["pass"]);
    assert_eq!(
        config.supervision.settings().backoff.max,
        std::time::Duration::from_secs(1)
    );
}

fn error_of(text: &str) -> String {
    PipelineConfig::parse(text, "bad.toml")
        .expect_err("rejected")
        .to_string()
}

#[test]
fn unknown_fields_are_rejected_with_field_and_line() {
    let text = GOOD.replace("op = \"passthrough\"", "op = \"passthrough\"\nopp = 1");
    let error = error_of(&text);
    assert!(error.contains("unknown field `opp`"), "{error}");
    assert!(error.contains("line 18"), "{error}");
}

#[test]
fn graph_errors_name_the_field_and_line() {
    let dangling = GOOD.replace("inputs = [\"pass\"]", "inputs = [\"nowhere\"]");
    let error = error_of(&dangling);
    assert!(error.contains("`sinks.out.inputs` (line 19)"), "{error}");
    assert!(
        error.contains("\"nowhere\" is neither a source nor a stage"),
        "{error}"
    );

    let window = GOOD.replace("within = \"10s\"", "within = \"0s\"");
    let error = error_of(&window);
    assert!(error.contains("`supervision.within` (line 5)"), "{error}");

    let unit = GOOD.replace("within = \"10s\"", "within = \"10 parsecs\"");
    let error = error_of(&unit);
    assert!(error.contains("line 5"), "{error}");

    let cap = GOOD.replace(
        "max_unacked_per_partition = 1000",
        "max_unacked_per_partition = 10",
    );
    let error = error_of(&cap);
    assert!(
        error.contains("`flow.max_unacked_per_partition` (line 9)"),
        "{error}"
    );

    let op = GOOD.replace("op = \"passthrough\"", "op = \"teleport\"");
    let error = error_of(&op);
    assert!(error.contains("`stages.pass.op` (line 17)"), "{error}");
}
