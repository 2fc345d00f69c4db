//! The `streamvisor` binary from outside: `check` on good and broken files; `actors` and `kill`
//! against a running `run` (with and without a token); bad input to `run` and `produce`; a
//! shutdown past its deadline.

use std::process::Command;

use crate::support::program::RunWithin;
use crate::support::wait;

fn streamvisor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamvisor"))
}

#[test]
fn check_accepts_the_examples() {
    for example in ["examples/quickstart.toml", "examples/passthrough.toml"] {
        let output = streamvisor()
            .args(["check", example])
            .output_within_timeout();
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn check_names_the_field_and_line_of_a_broken_file_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("streamvisor-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let broken = dir.join("broken.toml");
    std::fs::write(
        &broken,
        "name = \"broken\"\n[sources.events]\nkind = \"kafka\"\ntopic = \"events\"\ncolour = \"blue\"\n",
    )
    .expect("write");
    let output = streamvisor()
        .args(["check"])
        .arg(&broken)
        .output_within_timeout();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
    assert!(stderr.contains("line 5"), "{stderr}");

    let missing = streamvisor()
        .args(["check", "no/such/file.toml"])
        .output_within_timeout();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no/such/file.toml"));
}

#[test]
fn check_refuses_what_the_consumer_group_protocol_leaves_to_the_broker() {
    let dir = crate::support::program::test_dir("cli-protocol");
    let pipeline = dir.join("protocol.toml");
    std::fs::write(
        &pipeline,
        "name = \"protocol\"\n[kafka]\ngroup_protocol = \"consumer\"\n[kafka.properties]\n\
         \"heartbeat.interval.ms\" = \"1000\"\n[sources.events]\nkind = \"kafka\"\n\
         topic = \"events\"\n[stages.pass]\ninputs = [\"events\"]\nop = \"passthrough\"\n\
         [sinks.out]\ninputs = [\"pass\"]\nkind = \"file\"\npath = \"out.jsonl\"\n",
    )
    .expect("write");
    let output = streamvisor()
        .arg("check")
        .arg(&pipeline)
        .output_within_timeout();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "`kafka.properties.\"heartbeat.interval.ms\"` (line 5): `heartbeat.interval.ms` is \
             not supported with `group_protocol = \"consumer\"`"
        ),
        "{stderr}"
    );
}

/// A small pipeline on the embedded broker, in a fresh folder.
fn embedded_pipeline(name: &str, extra: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = crate::support::program::test_dir(&format!("cli-{name}"));
    let pipeline = dir.join(format!("{name}.toml"));
    std::fs::write(
        &pipeline,
        format!(
            r#"
name = "{name}"
{extra}
[sources.events]
kind = "kafka"
topic = "events"
partitions = 2
generator = {{ records = 1000000, rate_per_second = 500 }}
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "out/{name}.jsonl"
"#
        ),
    )
    .expect("pipeline file");
    (dir, pipeline)
}

fn admin(args: &[&str], token: Option<&str>) -> std::process::Output {
    let mut command = streamvisor();
    command.args(args).env_remove("STREAMVISOR_ADMIN_TOKEN");
    if let Some(token) = token {
        command.env("STREAMVISOR_ADMIN_TOKEN", token);
    }
    crate::support::program::output_within(
        &mut command,
        None,
        crate::support::program::COMMAND_TIMEOUT,
    )
}

#[test]
fn actors_prints_the_tree_and_kill_names_an_unknown_path() {
    use crate::support::program::Program;
    let (dir, pipeline) = embedded_pipeline("tree", "");
    let mut program = Program::start(&dir, &pipeline, None, "tree");
    program.wait_ready(std::time::Duration::from_secs(60));
    // Partition actors appear once the group has assigned the partitions.
    let out = dir.join("out/tree.jsonl");
    wait::wait_until(
        "records in the file",
        std::time::Duration::from_secs(60),
        || crate::support::program::SinkFile::count_lines(&out) > 0,
    );

    let actors = admin(&["actors", "--http", &program.http], None);
    assert_eq!(actors.status.code(), Some(0));
    let tree = String::from_utf8_lossy(&actors.stdout);
    for line in [
        "/pipelines/tree/sinks/out",
        "/pipelines/tree/sources/events/p0",
        "/pipelines/tree/stages/pass/p1",
    ] {
        assert!(tree.contains(line), "{line} in:\n{tree}");
    }
    let sink_line = tree
        .lines()
        .find(|line| line.ends_with("/pipelines/tree/sinks/out"))
        .expect("the sink's line");
    assert!(
        sink_line.starts_with("        out ")
            && sink_line.contains(" sink ")
            && sink_line.contains("running"),
        "indented by depth, with kind and state: {sink_line:?}"
    );

    let unknown = admin(
        &["kill", "/pipelines/tree/nope", "--http", &program.http],
        None,
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&unknown.stderr).trim(),
        "error: no actor at path /pipelines/tree/nope (HTTP 404)"
    );
    let killed = admin(
        &[
            "kill",
            "/pipelines/tree/sinks/out",
            "--mode",
            "panic",
            "--http",
            &program.http,
        ],
        None,
    );
    assert_eq!(killed.status.code(), Some(0), "{killed:?}");
    assert_eq!(
        String::from_utf8_lossy(&killed.stdout).trim(),
        "killed /pipelines/tree/sinks/out (mode panic)"
    );
    let bad_mode = admin(
        &["kill", "/pipelines/tree/sinks/out", "--mode", "gently"],
        None,
    );
    assert_eq!(bad_mode.status.code(), Some(2), "clap refuses the mode");

    program.signal("TERM");
    let status = program.wait_exit(std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", program.log_tail());
    assert!(
        program.log().contains("summary: in="),
        "{}",
        program.log_tail()
    );
    assert!(
        !program.log().contains('\u{1b}'),
        "no colour codes in a log written to a file: {}",
        program.log_tail()
    );

    let nobody = admin(&["actors", "--http", &program.http], None);
    assert_eq!(nobody.status.code(), Some(1), "nothing listens any more");
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("cannot reach streamvisor"));
}

#[test]
fn a_configured_token_is_required_by_the_admin_commands() {
    use crate::support::program::Program;
    let (dir, pipeline) = embedded_pipeline("token", "");
    let mut program = Program::start_with(
        &dir,
        &pipeline,
        None,
        "token",
        &[("STREAMVISOR_ADMIN_TOKEN", "s3cret")],
        &["--log-format", "json"],
    );
    program.wait_ready(std::time::Duration::from_secs(60));
    let without = admin(&["actors", "--http", &program.http], None);
    assert_eq!(without.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&without.stderr).contains("(HTTP 401)"));
    let wrong = admin(
        &[
            "kill",
            "/pipelines/token/sinks/out",
            "--http",
            &program.http,
        ],
        Some("nope"),
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not the admin token"));
    let right = admin(&["actors", "--http", &program.http], Some("s3cret"));
    assert_eq!(right.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&right.stdout).contains("/pipelines/token/sinks/out"));
    // Open routes need no token.
    let ready = program.get("/health/ready").expect("answers");
    assert_eq!(ready.status, 200);
    // SIGINT (Ctrl-C) stops it as SIGTERM does; with JSON logs every line is JSON, the summary
    // too, and the token appears nowhere.
    program.signal("INT");
    assert_eq!(
        program.wait_exit(std::time::Duration::from_secs(60)).code(),
        Some(0)
    );
    let log = program.log();
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|error| panic!("not a JSON log line ({error}): {line}"));
        assert!(event["level"].is_string(), "{line}");
    }
    assert!(
        log.lines()
            .any(|line| line.contains("\"message\":\"summary\"")),
        "a JSON summary event:\n{log}"
    );
    assert!(!log.contains("s3cret"), "the token is never logged");
}

#[test]
fn bad_input_to_run_gets_a_clear_message_and_the_right_exit_code() {
    // A port in use: exit 2 before anything starts.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("address").to_string();
    let (dir, pipeline) = embedded_pipeline("port", "");
    let output = streamvisor()
        .arg("run")
        .arg(&pipeline)
        .args(["--http", &address])
        .current_dir(&dir)
        .output_within_timeout();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );

    // Properties librdkafka refuses: exit 2 naming them.
    let (dir, pipeline) = embedded_pipeline(
        "properties",
        "[kafka.properties]\n\"fetch.max.bytes\" = \"1000\"",
    );
    let output = streamvisor()
        .arg("run")
        .arg(&pipeline)
        .args(["--http", "127.0.0.1:0"])
        .current_dir(&dir)
        .output_within_timeout();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`kafka.properties`: librdkafka refused them")
            && stderr.contains("fetch.max.bytes"),
        "{stderr}"
    );

    // An unreadable file, an unknown flag, a missing argument: exit 2.
    let missing = streamvisor()
        .args(["run", "no/such.toml"])
        .output_within_timeout();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read no/such.toml"));
    let flag = streamvisor()
        .args(["run", "--colour", "x.toml"])
        .output_within_timeout();
    assert_eq!(flag.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&flag.stderr).contains("--colour"));
    let produce = streamvisor()
        .args(["produce", "--topic", "t"])
        .output_within_timeout();
    assert_eq!(produce.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&produce.stderr).contains("--brokers"));
}

#[test]
fn a_shutdown_past_its_deadline_exits_1_naming_what_was_left() {
    use crate::support::program::Program;
    let (dir, pipeline) = embedded_pipeline("deadline", "[runtime]\nshutdown_timeout = \"1ms\"");
    let mut program = Program::start(&dir, &pipeline, None, "deadline");
    program.wait_ready(std::time::Duration::from_secs(60));
    program.signal("TERM");
    let status = program.wait_exit(std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{}", program.log_tail());
    let log = program.log();
    assert!(
        log.contains("error: shutdown passed its deadline of 1ms; still running: [\"/")
            && log.contains("replayed at the next start"),
        "{}",
        program.log_tail()
    );
}

#[test]
fn produce_names_a_bad_stdin_line_and_exits_2() {
    let broker = crate::support::kafka::broker();
    let mut command = streamvisor();
    command.args([
        "produce",
        "--brokers",
        &broker.brokers,
        "--topic",
        "cli-bad-lines",
    ]);
    let output = crate::support::program::output_within(
        &mut command,
        Some(b"{\"key\": \"a\", \"n\": 1}\n\n[1, 2]\n".to_vec()),
        crate::support::program::COMMAND_TIMEOUT,
    );
    assert_eq!(output.status.code(), Some(2));
    // The error is the one line that starts with `error:`, and the last (a client library's
    // log lines may come before it: a broker that just started warns while its coordinators
    // load).
    let stderr = String::from_utf8_lossy(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(
        errors,
        ["error: stdin line 3: not a JSON object (the 1 records before it were delivered)"],
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().last(), Some(errors[0]), "{stderr}");
}
