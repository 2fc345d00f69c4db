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
    assert_eq!(config.stages_in_order().expect("a graph"), ["pass"]);
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
        error.contains("`out` reads from `nowhere`, which names no source or stage"),
        "{error}"
    );
    // Fan-out to two sinks, and a merge: graphs the runtime runs.
    let fan_out = format!(
        "{GOOD}[sinks.copy]\ninputs = [\"pass\"]\nkind = \"file\"\npath = \"out/copy.jsonl\"\n"
    );
    let config = PipelineConfig::parse(&fan_out, "fan-out.toml").expect("broadcast to two sinks");
    assert_eq!(config.consumers_of("pass"), ["copy", "out"]);
    let merge = format!("{GOOD}[stages.other]\ninputs = [\"events\"]\nop = \"passthrough\"\n")
        .replace("inputs = [\"pass\"]", "inputs = [\"pass\", \"other\"]");
    let config = PipelineConfig::parse(&merge, "merge.toml").expect("fan-out then merge");
    assert_eq!(
        config.stages_in_order().expect("a graph"),
        ["other", "pass"]
    );
    let balance = merge.replace(
        "topic = \"events\"",
        "topic = \"events\"\nfan_out = \"round_robin\"",
    );
    assert_eq!(
        error_of(&balance),
        "bad.toml: `sources.events.fan_out` (line 15): \"round_robin\": expected \"broadcast\", \"balance\" or \"partition_by_key\""
    );
    let cycle = GOOD.replace("inputs = [\"events\"]", "inputs = [\"pass\"]");
    assert_eq!(
        error_of(&cycle),
        "bad.toml: `stages.pass.inputs` (line 16): the graph has a cycle: pass -> pass"
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

#[test]
fn sink_fields_are_checked_against_the_kind() {
    let postgres = GOOD.replace(
        "kind = \"file\"\npath = \"out/demo.jsonl\"",
        "kind = \"postgres\"\nurl = \"host=127.0.0.1\"\ntable = \"public.events\"\ndedupe = \"key\"\n\
         retry = { min = \"50ms\", max = \"1s\" }",
    );
    let config = PipelineConfig::parse(&postgres, "pg.toml").expect("valid");
    let streamvisor_actors::SinkTarget::Postgres(settings) =
        config.sinks["out"].target().expect("a target")
    else {
        panic!("a PostgreSQL target");
    };
    assert_eq!(settings.table, "public.events");
    assert_eq!(settings.dedupe, streamvisor_actors::Dedupe::Key);
    assert_eq!(settings.retry.min, std::time::Duration::from_millis(50));
    assert_eq!(settings.retry.factor, 2.0);

    let foreign = GOOD.replace("path = \"out/demo.jsonl\"", "path = \"x\"\ntable = \"t\"");
    assert_eq!(
        error_of(&foreign),
        "bad.toml: `sinks.out.table` (line 22): not a setting of a \"file\" sink"
    );
    let missing = postgres.replace("table = \"public.events\"\n", "");
    assert!(
        error_of(&missing).contains("`sinks.out` (line 18): a \"postgres\" sink needs `table`"),
        "{}",
        error_of(&missing)
    );
    let bad_table = postgres.replace("public.events", "events; drop");
    assert!(error_of(&bad_table).contains("`sinks.out.table`"));
    let bad_dedupe = postgres.replace("dedupe = \"key\"", "dedupe = \"offset\"");
    assert!(error_of(&bad_dedupe).contains("`sinks.out.dedupe`"));
    let bad_kind = GOOD.replace("kind = \"file\"", "kind = \"s3\"");
    assert!(error_of(&bad_kind).contains("`sinks.out.kind`"));
}

#[test]
fn file_options_choose_rolling_files_and_kafka_options_exactly_once() {
    use streamvisor_actors::SinkTarget;
    use streamvisor_actors::{FileFormat, FileLayout};
    let config = PipelineConfig::parse(GOOD, "demo.toml").expect("valid");
    assert!(matches!(
        config.sinks["out"].target(),
        Ok(SinkTarget::File(_))
    ));
    let rolling = GOOD.replace(
        "path = \"out/demo.jsonl\"",
        "path = \"out/archive\"\nformat = \"msgpack\"\nlayout = \"date-partition\"\nrotate_interval = \"1h\"",
    );
    let config = PipelineConfig::parse(&rolling, "rolling.toml").expect("valid");
    let Ok(SinkTarget::RollingFiles(settings)) = config.sinks["out"].target() else {
        panic!("rolling files");
    };
    assert_eq!(settings.format, FileFormat::MessagePack);
    assert_eq!(settings.layout, FileLayout::DatePartition);
    assert_eq!(settings.max_age, Some(std::time::Duration::from_secs(3600)));
    assert!(error_of(&rolling.replace("msgpack", "avro")).contains("`sinks.out.format`"));
    assert!(error_of(&rolling.replace("date-partition", "hourly")).contains("`sinks.out.layout`"));

    let kafka = GOOD.replace(
        "kind = \"file\"\npath = \"out/demo.jsonl\"",
        "kind = \"kafka\"\ntopic = \"out\"\nexactly_once = true",
    );
    let config = PipelineConfig::parse(&kafka, "kafka.toml").expect("valid");
    assert!(matches!(
        config.sinks["out"].target(),
        Ok(SinkTarget::KafkaExactlyOnce { .. })
    ));
    assert!(error_of(&kafka.replace("topic = \"out\"\n", "")).contains("needs `topic`"));
}

#[test]
fn operators_are_checked_field_by_field() {
    let with = |stage: &str| GOOD.replace("op = \"passthrough\"", stage);
    let window = "op = \"window\"\nwindow = \"sliding\"\nsize = \"10s\"\nslide = \"1s\"\nkey = \"card\"\nvalue = \"amount\"";
    PipelineConfig::parse(&with(window), "ok.toml").expect("a sliding window");
    PipelineConfig::parse(
        &with("op = \"filter\"\nwhere = { field = \"amount\", gt = 1000 }"),
        "ok.toml",
    )
    .expect("a filter");
    PipelineConfig::parse(
        &with("op = \"project\"\nfields = [\"card.id\", \"amount\"]"),
        "ok.toml",
    )
    .expect("a projection");
    for (stage, expected) in [
        (
            "op = \"explode\"",
            "bad.toml: `stages.pass.op` (line 17): \"explode\": expected \"passthrough\", \"filter\", \"project\", \"flat_map\", \"key_by\", \"window\", \"throttle\", \"grouped_within\" or \"buffer\" (other operators are written in Rust with the builder)",
        ),
        (
            "op = \"filter\"\nfields = [\"a\"]",
            "bad.toml: `stages.pass.fields` (line 18): the filter operator takes no `fields`",
        ),
        (
            "op = \"filter\"\nwhere = { field = \"amount\", above = 3 }",
            "bad.toml: `stages.pass.where` (line 18): predicate: unknown key `above`, expected `field` and one of eq, ne, gt, ge, lt, le",
        ),
        (
            "op = \"window\"\nwindow = \"sliding\"\nsize = \"1s\"\nslide = \"10s\"",
            "bad.toml: `stages.pass.window` (line 18): window: window size 1s is shorter than its slide 10s",
        ),
        (
            "op = \"window\"\nwindow = \"session\"\ngap = \"0s\"",
            "bad.toml: `stages.pass.window` (line 18): window: gap must be greater than zero",
        ),
        (
            "op = \"window\"\nwindow = \"tumbling\"\nsize = \"10s\"\ngap = \"1s\"",
            "bad.toml: `stages.pass.gap` (line 20): a tumbling window takes no `gap`",
        ),
        (
            "op = \"buffer\"\nbatches = 4\noverflow = \"drop_oldest\"",
            "bad.toml: `stages.pass.overflow` (line 19): buffer: unknown overflow strategy \"drop_oldest\", expected one of backpressure, drop_head, drop_tail, drop_new, fail",
        ),
        (
            "op = \"throttle\"\nrate = 0",
            "bad.toml: `stages.pass.rate` (line 18): throttle: rate must be greater than zero",
        ),
        (
            "op = \"grouped_within\"\nmax_records = 10",
            "bad.toml: `stages.pass.within` (line 15): a grouping needs how long it waits",
        ),
        (
            "op = \"throttle\"\nrate = 5\nwithin = \"1s\"",
            "bad.toml: `stages.pass.within` (line 19): the throttle operator takes no `within`",
        ),
        (
            "op = \"window\"\nwindow = \"tumbling\"",
            "bad.toml: `stages.pass.size` (line 15): a tumbling window needs `size`",
        ),
    ] {
        assert_eq!(error_of(&with(stage)), expected, "{stage}");
    }
    // flat_map: the array's field, and nothing per offset after it.
    let flat_map = with("op = \"flat_map\"\nfield = \"lines\"");
    PipelineConfig::parse(&flat_map, "ok.toml").expect("a flat_map");
    assert_eq!(
        error_of(&with("op = \"flat_map\"")),
        "bad.toml: `stages.pass.field` (line 15): flat_map needs the array's field"
    );
    assert_eq!(
        error_of(&with(
            "op = \"flat_map\"\nfield = \"lines\"\nfields = [\"a\"]"
        )),
        "bad.toml: `stages.pass.fields` (line 19): the flat_map operator takes no `fields`"
    );
    let then_window = flat_map.replace(
        "[sinks.out]\ninputs = [\"pass\"]",
        &format!("[stages.agg]\ninputs = [\"pass\"]\n{window}\nidle_timeout = \"1s\"\n[sinks.out]\ninputs = [\"agg\"]"),
    );
    assert!(
        error_of(&then_window).contains(
            "`stages.agg.op` (line 21): a window stage cannot follow the flat_map `pass` yet"
        ),
        "{}",
        error_of(&then_window)
    );
    let after_window = with(window).replace(
        "[sinks.out]\ninputs = [\"pass\"]",
        "[stages.lines]\ninputs = [\"pass\"]\nop = \"flat_map\"\nfield = \"x\"\n[sinks.out]\ninputs = [\"lines\"]",
    );
    assert!(
        error_of(&after_window).contains("`stages.lines.op`")
            && error_of(&after_window).contains("a flat_map cannot follow the window `pass` yet"),
        "{}",
        error_of(&after_window)
    );
    let into_postgres = flat_map.replace(
        "kind = \"file\"\npath = \"out/demo.jsonl\"",
        "kind = \"postgres\"\nurl = \"postgres://u@127.0.0.1/db\"\ntable = \"t\"",
    );
    assert!(
        error_of(&into_postgres).contains("`sinks.out.kind`")
            && error_of(&into_postgres).contains("flat_map `pass`"),
        "{}",
        error_of(&into_postgres)
    );
    let exactly_once = with(window).replace(
        "kind = \"file\"\npath = \"out/demo.jsonl\"",
        "kind = \"kafka\"\ntopic = \"out\"\nexactly_once = true",
    );
    assert!(
        error_of(&exactly_once).contains("`sinks.out.exactly_once`"),
        "{}",
        error_of(&exactly_once)
    );
}

#[test]
fn fan_outs_the_actors_cannot_run_are_named() {
    // A balance over branches that lead to different numbers of sinks.
    let uneven = format!(
        "{GOOD}[stages.other]\ninputs = [\"events\"]\nop = \"passthrough\"\n\
         [sinks.copy]\ninputs = [\"other\"]\nkind = \"file\"\npath = \"out/copy.jsonl\"\n\
         [sinks.again]\ninputs = [\"other\"]\nkind = \"file\"\npath = \"out/again.jsonl\"\n"
    )
    .replace(
        "topic = \"events\"",
        "topic = \"events\"\nfan_out = \"balance\"",
    );
    assert_eq!(
        error_of(&uneven),
        "bad.toml: `sources.events.fan_out` (line 15): `source` balances or partitions over consumers with different paths to a sink ([2, 1]): give each branch the same sinks"
    );
    // A window reading two inputs.
    let merge = format!("{GOOD}[stages.other]\ninputs = [\"events\"]\nop = \"passthrough\"\n")
        .replace(
            "inputs = [\"events\"]\nop = \"passthrough\"\n[sinks",
            "inputs = [\"events\", \"other\"]\nop = \"window\"\nwindow = \"session\"\ngap = \"1s\"\n[sinks",
        );
    assert_eq!(
        error_of(&merge),
        "bad.toml: `stages.pass.inputs` (line 16): a window stage reads one input (a merge would hold each record twice)"
    );
}

#[test]
fn the_toml_flat_map_makes_a_record_of_each_array_element() {
    use std::sync::Arc;
    use streamvisor_actors::{Batch, RecordRef};
    use streamvisor_actors::{Operation, Pieces};
    let config = PipelineConfig::parse(
        &GOOD.replace(
            "op = \"passthrough\"",
            "op = \"flat_map\"\nfield = \"order.lines\"",
        ),
        "ok.toml",
    )
    .expect("a flat_map");
    let Ok(Operation::FlatMap(function)) = config.stages["pass"].operation("stages.pass") else {
        panic!("not a flat_map");
    };
    let run = |value: &[u8]| {
        let record = RecordRef {
            offset: 9,
            timestamp_ms: Some(5),
            key: Some(b"c1"),
            value,
            index: None,
        };
        let mut out = Batch::new(Arc::from("orders"), 0, 1, 4);
        let result = function(&record, &mut Pieces::new(&mut out, &record));
        let pieces: Vec<(i64, Option<u32>, String)> = out
            .iter()
            .map(|piece| {
                assert_eq!((piece.key, piece.timestamp_ms), (Some(&b"c1"[..]), Some(5)));
                let text = String::from_utf8(piece.value.to_vec()).expect("UTF-8");
                (piece.offset, piece.index, text)
            })
            .collect();
        (result, pieces)
    };
    let (result, pieces) = run(br#"{"order": {"lines": [{"sku": "a"}, 2, "x"]}}"#);
    assert_eq!(result, Ok(()));
    assert_eq!(
        pieces,
        [
            (9, Some(0), r#"{"sku":"a"}"#.to_owned()),
            (9, Some(1), "2".to_owned()),
            (9, Some(2), r#""x""#.to_owned())
        ]
    );
    assert_eq!(run(br#"{"order": {"lines": []}}"#), (Ok(()), Vec::new()));
    assert_eq!(
        run(br#"{"order": {"lines": 3}}"#).0,
        Err("flat_map: field `order.lines` is missing or not an array".to_owned())
    );
    assert!(run(b"not json")
        .0
        .is_err_and(|why| why.starts_with("flat_map: the record is not JSON")));
}

#[test]
fn the_group_protocol_defaults_to_classic_and_takes_consumer() {
    use streamvisor_actors::GroupProtocol;
    let config = PipelineConfig::parse(GOOD, "demo.toml").expect("valid");
    assert_eq!(config.kafka.group_protocol, GroupProtocol::Classic);
    let consumer = GOOD.replace(
        "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"",
        "[kafka]\ngroup_protocol = \"consumer\"\n[kafka.properties]\n\"fetch.wait.max.ms\" = \"100\"",
    );
    let config = PipelineConfig::parse(&consumer, "demo.toml").expect("valid");
    assert_eq!(config.kafka.group_protocol, GroupProtocol::Consumer);
    let unknown = GOOD.replace(
        "[kafka.properties]",
        "[kafka]\ngroup_protocol = \"eager\"\n[kafka.properties]",
    );
    let error = error_of(&unknown);
    assert!(error.contains("unknown variant `eager`"), "{error}");
}

#[test]
fn the_consumer_protocol_refuses_what_the_broker_sets_naming_the_property_and_line() {
    for (property, line) in [
        ("session.timeout.ms", 13),
        ("heartbeat.interval.ms", 13),
        ("partition.assignment.strategy", 13),
    ] {
        let text = GOOD.replace(
            "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"",
            &format!(
                "[kafka]\ngroup_protocol = \"consumer\"\n[kafka.properties]\n\"{property}\" = \"1\""
            ),
        );
        let error = error_of(&text);
        assert!(
            error.contains(&format!(
                "`kafka.properties.\"{property}\"` (line {line}): `{property}` is not supported \
                 with `group_protocol = \"consumer\"`"
            )),
            "{error}"
        );
    }
    let set_directly = GOOD.replace(
        "\"session.timeout.ms\" = \"6000\"",
        "\"group.protocol\" = \"consumer\"",
    );
    let error = error_of(&set_directly);
    assert!(
        error.contains("`kafka.properties.\"group.protocol\"` (line 11): set the group protocol"),
        "{error}"
    );
}

#[test]
fn one_check_names_the_field_of_each_shape_the_actors_do_not_run() {
    let window = "op = \"window\"\nwindow = \"tumbling\"\nsize = \"10s\"";
    let two_windows = GOOD.replace("op = \"passthrough\"", window).replace(
        "[sinks.out]\ninputs = [\"pass\"]",
        &format!(
            "[stages.again]\ninputs = [\"pass\"]\n{window}\n[sinks.out]\ninputs = [\"again\"]"
        ),
    );
    assert_eq!(
        error_of(&two_windows),
        "bad.toml: `stages.again.op` (line 22): one window stage per pipeline so far"
    );
    let two_sinks = format!(
        "{GOOD}[sinks.copy]\ninputs = [\"pass\"]\nkind = \"kafka\"\ntopic = \"copy\"\nexactly_once = true\n"
    );
    assert_eq!(
        error_of(&two_sinks),
        "bad.toml: `sinks.copy.exactly_once` (line 26): an exactly-once sink must be the \
         pipeline's only sink (its transactions commit the consumed offsets)"
    );
    let postgres_after_window = GOOD.replace("op = \"passthrough\"", window).replace(
        "kind = \"file\"\npath = \"out/demo.jsonl\"",
        "kind = \"postgres\"\nurl = \"postgres://u@127.0.0.1/db\"\ntable = \"t\"",
    );
    assert_eq!(
        error_of(&postgres_after_window),
        "bad.toml: `sinks.out.kind` (line 22): not after a window stage yet: an aggregate has \
         no single origin to dedupe on (use a file or Kafka sink)"
    );
    let zero_buffer = GOOD.replace("op = \"passthrough\"", "op = \"buffer\"\nbatches = 0");
    assert_eq!(
        error_of(&zero_buffer),
        "bad.toml: `stages.pass.batches` (line 18): buffer: batches must be greater than zero"
    );
    let fan_out_on_one = GOOD.replace(
        "op = \"passthrough\"",
        "op = \"passthrough\"\nfan_out = \"balance\"",
    );
    PipelineConfig::parse(&fan_out_on_one, "ok.toml")
        .expect("a fan-out on one consumer is ignored");
}

#[test]
fn memory_sizes_take_units_and_name_the_field_when_wrong() {
    let config = PipelineConfig::parse(GOOD, "demo.toml").expect("valid");
    assert_eq!(config.runtime.memory_budget, None, "none: from the machine");
    assert_eq!(config.flow.max_unacked_bytes_per_partition, 64 << 20);
    let sized = GOOD.replace(
        "[flow]\n",
        "[runtime]\nmemory_budget = \"64MiB\"\n[flow]\nmax_unacked_bytes_per_partition = 8000000\n",
    );
    let config = PipelineConfig::parse(&sized, "demo.toml").expect("valid");
    assert_eq!(config.runtime.memory_budget, Some(64 << 20));
    assert_eq!(config.flow.max_unacked_bytes_per_partition, 8_000_000);
    let error = error_of(&GOOD.replace(
        "[flow]\n",
        "[runtime]\nmemory_budget = \"64 parsecs\"\n[flow]\n",
    ));
    assert!(error.contains("the unit must be"), "{error}");
    assert!(
        error.contains("memory_budget") || error.contains("line 9"),
        "{error}"
    );
    let error =
        error_of(&GOOD.replace("[flow]\n", "[flow]\nmax_unacked_bytes_per_partition = 0\n"));
    assert!(error.contains("a size of 0 bytes"), "{error}");
}
