//! Drives the `streamvisor` binary from outside, as an operator would: a `run` child with its
//! own working directory, HTTP port and log file; signals; `produce`. And, for every test of
//! this binary, readers of what a pipeline left behind (the sink's file, the group's committed
//! offsets, the topic's ends) and a bounded wait.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamvisor::http::client::{request, Response};

/// The binary under test.
pub(crate) fn streamvisor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamvisor"))
}

/// The origin (partition, offset) a sink wrote into a Kafka record's headers (-1 for a header
/// that is missing or not a number).
pub(crate) fn origin_of(message: &impl rdkafka::message::Message) -> (i32, i64) {
    use rdkafka::message::Headers;
    let header = |name: &str| -> i64 {
        message
            .headers()
            .and_then(|headers| {
                headers
                    .iter()
                    .find(|header| header.key == name)
                    .and_then(|header| header.value)
            })
            .and_then(|value| std::str::from_utf8(value).ok()?.parse().ok())
            .unwrap_or(-1)
    };
    (
        header("streamvisor.origin.partition") as i32,
        header("streamvisor.origin.offset"),
    )
}

/// The seed of a test's random kills: `CHAOS_SEED` when set (to replay a run), else a fresh one.
/// Tests print it.
pub(crate) fn chaos_seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// A fresh folder for one test.
pub(crate) fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamvisor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("test folder");
    dir
}

/// How long a short command (`produce`, `actors`, `kill`, `check`) may take.
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `command` to its end with `stdin` as its input, killing it past `within`.
pub(crate) fn output_within(
    command: &mut Command,
    stdin: Option<Vec<u8>>,
    within: Duration,
) -> std::process::Output {
    use std::io::{Read, Write};
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let writer = child.stdin.take().zip(stdin).map(|(mut pipe, input)| {
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        })
    });
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let began = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if began.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A command run to its end within [`COMMAND_TIMEOUT`].
pub(crate) trait RunWithin {
    /// Its output (panics past the timeout).
    fn output_within_timeout(&mut self) -> std::process::Output;
}

impl RunWithin for Command {
    fn output_within_timeout(&mut self) -> std::process::Output {
        output_within(self, None, COMMAND_TIMEOUT)
    }
}

/// `streamvisor produce --count N` into `topic` (made with `partitions`); waits for it.
pub(crate) fn produce_count(brokers: &str, topic: &str, count: usize, partitions: i32) {
    let mut command = streamvisor();
    command
        .args(["produce", "--brokers", brokers, "--topic", topic])
        .args(["--count", &count.to_string()])
        .args(["--partitions", &partitions.to_string()]);
    let output = output_within(&mut command, None, COMMAND_TIMEOUT);
    assert!(
        output.status.success(),
        "produce failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `[kafka.properties]` of the tests that kill group members: a killed member leaves the group
/// after 6 s instead of 45 s, and a rebalance waits at most 10 s for members that do not rejoin
/// (the default, max.poll.interval.ms, is 300 s).
pub(crate) const QUICK_GROUP_FAILOVER: &str = r#""session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"max.poll.interval.ms" = "10000""#;

/// A passthrough pipeline file (source `events` -> stage `pass` -> file sink `out`, writing
/// `out/<name>.jsonl` under the process's working directory), with what a test varies.
#[derive(Default)]
pub(crate) struct Passthrough<'a> {
    /// The pipeline's name (and its file's).
    pub name: &'a str,
    /// The consumer group.
    pub group: &'a str,
    /// The topic read.
    pub topic: &'a str,
    /// Tables such as `[flow]` and `[commit]`.
    pub tables: &'a str,
    /// More keys of the `[kafka]` table (`group_protocol = "consumer"`).
    pub kafka: &'a str,
    /// Lines of `[kafka.properties]`.
    pub kafka_properties: &'a str,
    /// More keys of the source's table.
    pub source: &'a str,
    /// More keys of the sink's table.
    pub sink: &'a str,
    /// The sink's kind and target (default: `kind = "file"`, `path = "out/<name>.jsonl"`).
    pub sink_target: Option<String>,
}

impl Passthrough<'_> {
    /// Writes it to `dir/<name>.toml` and returns that path.
    pub(crate) fn write(&self, dir: &Path) -> PathBuf {
        let Passthrough {
            name,
            group,
            topic,
            tables,
            kafka,
            kafka_properties,
            source,
            sink,
            sink_target,
        } = self;
        let target = sink_target
            .clone()
            .unwrap_or_else(|| format!("kind = \"file\"\npath = \"out/{name}.jsonl\""));
        let text = format!(
            r#"name = "{name}"
{tables}
[kafka]
group = "{group}"
{kafka}
[kafka.properties]
{kafka_properties}
[sources.events]
kind = "kafka"
topic = "{topic}"
{source}
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
{target}
{sink}
"#
        );
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("pipeline file");
        path
    }
}

/// Sends `signal` (`TERM`, `KILL`, `STOP`, ...) to process `pid`.
pub(crate) fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -s {signal} {pid}");
}

/// The last 40 lines of the file at `path` (for failure messages; empty when unreadable).
pub(crate) fn tail_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A running `streamvisor run`, killed (SIGKILL) when dropped if still running.
pub(crate) struct Program {
    child: Child,
    /// Its HTTP address.
    pub http: String,
    log: PathBuf,
}

impl Program {
    /// Starts `streamvisor run pipeline [--brokers brokers] --http <free port>` in `dir`, its
    /// stderr in `dir/<name>.log`.
    pub(crate) fn start(dir: &Path, pipeline: &Path, brokers: Option<&str>, name: &str) -> Self {
        Self::start_with(dir, pipeline, brokers, name, &[], &[])
    }

    /// As [`Program::start`], with extra environment variables and arguments.
    pub(crate) fn start_with(
        dir: &Path,
        pipeline: &Path,
        brokers: Option<&str>,
        name: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Self {
        let mut command = streamvisor();
        command.arg("run");
        if let Some(brokers) = brokers {
            command.args(["--brokers", brokers]);
        }
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        Self::spawn(command, dir, pipeline, name)
    }

    /// Starts `command PIPELINE --http <free port>` (`streamvisor run`, or a program taking the
    /// same arguments) in `dir`, its stderr in `dir/<name>.log`.
    pub(crate) fn spawn(mut command: Command, dir: &Path, pipeline: &Path, name: &str) -> Self {
        let http = format!("127.0.0.1:{}", free_port());
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).expect("log file");
        // The test's own token never leaks in; one set on `command` stays.
        if !command
            .get_envs()
            .any(|(key, _)| key == streamvisor::http::TOKEN_ENV)
        {
            command.env_remove(streamvisor::http::TOKEN_ENV);
        }
        command
            .arg(pipeline)
            .args(["--http", &http])
            .current_dir(dir)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = command.spawn().expect("the program starts");
        Program { child, http, log }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of its log (for failure messages).
    pub(crate) fn log_tail(&self) -> String {
        tail_of(&self.log)
    }

    /// Its log file.
    pub(crate) fn log_file(&self) -> PathBuf {
        self.log.clone()
    }

    /// Its whole log.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics (with its log) when it has exited.
    pub(crate) fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "streamvisor run exited early ({status}); its log:\n{}",
                self.log_tail()
            );
        }
    }

    /// Waits until `/health/ready` answers 200.
    pub(crate) fn wait_ready(&mut self, within: Duration) {
        let began = Instant::now();
        loop {
            self.assert_alive();
            if self
                .get("/health/ready")
                .is_some_and(|answer| answer.status == 200)
            {
                return;
            }
            assert!(
                began.elapsed() < within,
                "{} never ready within {within:?}; its log:\n{}",
                self.http,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` (none when nothing answers).
    pub(crate) fn get(&self, path: &str) -> Option<Response> {
        request(&self.http, "GET", path, None).ok()
    }

    /// `POST path` with a JSON body (none when nothing answers).
    pub(crate) fn post(&self, path: &str, body: &str) -> Option<Response> {
        request(&self.http, "POST", path, Some(body)).ok()
    }

    /// The sum of every series of `metric` on `/metrics`.
    pub(crate) fn metric_sum(&self, metric: &str) -> f64 {
        self.metric_where(metric, &[])
    }

    /// The sum of the series of `metric` on `/metrics` whose labels include every one of
    /// `labels` (`("reason", "busy")`).
    pub(crate) fn metric_where(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let body = self
            .get("/metrics")
            .filter(|answer| answer.status == 200)
            .map(|answer| answer.body)
            .unwrap_or_default();
        body.lines()
            .filter(|line| line.split(['{', ' ']).next() == Some(metric))
            .filter(|line| {
                labels
                    .iter()
                    .all(|(label, value)| line.contains(&format!("{label}=\"{value}\"")))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends `signal` (`TERM`, `KILL`, ...).
    pub(crate) fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits for it to exit.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                began.elapsed() < within,
                "streamvisor run did not exit within {within:?}; its log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a sink's JSON Lines file holds.
#[derive(Default)]
pub(crate) struct SinkFile {
    /// (partition, offset) -> the value's `seq`.
    pub records: BTreeMap<(i32, i64), i64>,
    /// Lines, duplicates included.
    pub lines: usize,
    /// Lines per partition, duplicates included.
    lines_per_partition: BTreeMap<i32, usize>,
}

impl SinkFile {
    /// Reads `path` (empty when missing). A torn last line (a process killed mid-write) is
    /// not counted: the sink truncates it when it opens the file again.
    pub(crate) fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut file = SinkFile::default();
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break;
            }
            file.lines += 1;
            let record: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{line:?}: {error}"));
            let key = (
                record["partition"].as_i64().expect("partition") as i32,
                record["offset"].as_i64().expect("offset"),
            );
            file.records
                .insert(key, record["value"]["seq"].as_i64().expect("seq"));
            *file.lines_per_partition.entry(key.0).or_default() += 1;
        }
        file
    }

    /// Lines of `partition` beyond one per record: what replays wrote again.
    pub(crate) fn duplicates(&self, partition: i32) -> usize {
        let distinct = self.records.keys().filter(|(p, _)| *p == partition).count();
        self.lines_per_partition
            .get(&partition)
            .copied()
            .unwrap_or(0)
            - distinct
    }

    /// Lines in `path` (cheap: counts newlines).
    pub(crate) fn count_lines(path: &Path) -> usize {
        std::fs::read(path)
            .map(|bytes| bytes.iter().filter(|byte| **byte == b'\n').count())
            .unwrap_or(0)
    }
}

fn reader(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .expect("offset reader")
}

/// The committed offset of each partition of `topic` for `group` (-1: none; empty when the
/// broker did not answer).
pub(crate) fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer = reader(brokers, group);
    let mut list = TopicPartitionList::new();
    for partition in 0..partitions {
        list.add_partition(topic, partition);
    }
    let Ok(offsets) = consumer.committed_offsets(list, Duration::from_secs(10)) else {
        return Vec::new();
    };
    (0..partitions)
        .map(
            |partition| match offsets.find_partition(topic, partition).map(|e| e.offset()) {
                Some(Offset::Offset(offset)) => offset,
                _ => -1,
            },
        )
        .collect()
}

/// The high watermark of each partition of `topic`.
pub(crate) fn ends(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer = reader(brokers, "streamvisor-tests-watermarks");
    (0..partitions)
        .map(|partition| {
            consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .map(|(_, high)| high)
                .unwrap_or(-1)
        })
        .collect()
}

/// Records written and not committed by `group`: the sum over partitions of end - committed.
pub(crate) fn lag(brokers: &str, group: &str, topic: &str, partitions: i32) -> i64 {
    let committed = committed(brokers, group, topic, partitions);
    ends(brokers, topic, partitions)
        .iter()
        .enumerate()
        .map(|(partition, end)| end - committed.get(partition).copied().unwrap_or(-1).max(0))
        .sum()
}

/// Every record of `topic` (each partition read from its start to its current end): (partition,
/// key, payload), in partition and offset order.
pub(crate) fn read_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> Vec<(i32, Option<Vec<u8>>, Vec<u8>)> {
    use rdkafka::message::Message;
    read_to_end(brokers, topic, partitions, Isolation::ReadUncommitted)
        .into_iter()
        .map(|message| {
            (
                message.partition(),
                message.key().map(<[u8]>::to_vec),
                message.payload().unwrap_or_default().to_vec(),
            )
        })
        .collect()
}

/// Which records of a transactional topic a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// Only those of committed transactions (and those written outside transactions).
    ReadCommitted,
    /// Every record written, aborted transactions' included.
    ReadUncommitted,
}

/// Every record of `topic` that a reader with `isolation` sees, each partition read from its
/// start until the broker says it reached the end (the last stable offset under
/// read_committed; transaction markers take offsets that no reader sees), in partition and
/// offset order.
pub(crate) fn read_to_end(
    brokers: &str,
    topic: &str,
    partitions: i32,
    isolation: Isolation,
) -> Vec<rdkafka::message::OwnedMessage> {
    use rdkafka::error::KafkaError;
    use rdkafka::message::Message;
    let level = match isolation {
        Isolation::ReadCommitted => "read_committed",
        Isolation::ReadUncommitted => "read_uncommitted",
    };
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", level)
        .create()
        .expect("a reader");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("a partition");
    }
    reader.assign(&assignment).expect("assign");
    let mut at_end = std::collections::BTreeSet::new();
    let mut records: Vec<rdkafka::message::OwnedMessage> = Vec::new();
    let began = Instant::now();
    while at_end.len() < partitions as usize {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "{topic} ({level}): {} records read, partitions {at_end:?} at their end, in 120 s",
            records.len()
        );
        match reader.poll(Duration::from_millis(500)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                at_end.insert(partition);
            }
            Some(Err(error)) => panic!("reading {topic} ({level}): {error}"),
            Some(Ok(message)) => {
                at_end.remove(&message.partition());
                records.push(message.detach());
            }
        }
    }
    records.sort_by_key(|message| (message.partition(), message.offset()));
    records
}

/// The peak resident set of `pid` in KiB (`VmHWM`).
pub(crate) fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// A figure in KiB of `/proc/<pid>/status`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The resident set of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}
