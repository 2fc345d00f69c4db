//! The test broker: tansu (a Kafka-compatible broker), started once per test binary on a free
//! loopback port with a temp folder as its working directory, and stopped when the binary ends
//! (a watchdog shell ends it when this process is gone). Installed by the README's test command;
//! a missing `tansu` fails the tests that need it, with the command to install it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

/// How long the broker gets to answer after its start.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running tansu broker.
pub struct Tansu {
    /// `bootstrap.servers` for it.
    pub brokers: String,
    /// Its working directory.
    pub dir: PathBuf,
    /// The watchdog shell that ends the broker with this process.
    _watchdog: std::sync::Mutex<std::process::Child>,
}

impl Tansu {
    /// Starts the pipeline of TOML `text` (named `file` in errors) on this broker.
    pub async fn run(&self, text: &str, file: &str) -> streamvisor::runtime::Runtime {
        let config =
            streamvisor::config::PipelineConfig::parse(text, file).expect("valid pipeline");
        streamvisor::runtime::Runtime::start(
            config,
            streamvisor::runtime::Overrides {
                brokers: Some(self.brokers.clone()),
            },
        )
        .await
        .expect("runtime starts")
    }
}

/// The broker of this test binary, started on first use.
pub fn broker() -> &'static Tansu {
    static BROKER: OnceLock<Tansu> = OnceLock::new();
    BROKER.get_or_init(start)
}

/// A broker of one test's own, stopped when dropped. (The Kafka sink's test leaves tansu
/// answering groups late for minutes: nobody else uses that broker.)
pub fn private() -> Tansu {
    start()
}

impl Tansu {
    /// Sends `signal` (`STOP`, `CONT`) to the broker process (not its watchdog).
    pub fn signal(&self, signal: &str) {
        let pattern = format!("^tansu broker --listener-url tcp://{} ", self.brokers);
        let status = Command::new("pkill")
            .args([&format!("-{signal}"), "-f", &pattern])
            .status()
            .expect("pkill runs");
        assert!(
            status.success(),
            "no tansu broker matched {pattern:?} for SIG{signal}"
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        // The watchdog stops the broker within a second.
        let _ = std::fs::write(self.dir.join("stop"), b"");
    }
}

/// The sinks' tests' broker: a second one, fresh, started on first use. (Seen here: after the
/// rest of the suite has loaded the shared broker, its group coordinator can stop answering
/// heartbeats for 45 s at a time, and a group that lost its session may stay unassigned.)
pub fn sinks_broker() -> &'static Tansu {
    static BROKER: OnceLock<Tansu> = OnceLock::new();
    BROKER.get_or_init(start)
}

fn start() -> Tansu {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port");
    let dir = std::env::temp_dir().join(format!("streamvisor-tansu-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tansu's folder");
    let listener = format!("tcp://127.0.0.1:{port}");
    // tansu 0.6 doubles an absolute SQLite path: give it one relative to its working directory.
    let script = format!(
        "tansu broker --listener-url {listener} --advertised-listener-url {listener} \
         --storage-engine sqlite://tansu.db > tansu.log 2>&1 & broker=$!; \
         while kill -0 {parent} 2>/dev/null && kill -0 $broker 2>/dev/null && [ ! -e stop ]; do sleep 1; done; \
         kill $broker 2>/dev/null",
        parent = std::process::id()
    );
    let which = Command::new("sh")
        .args(["-c", "command -v tansu"])
        .output()
        .expect("sh runs");
    assert!(
        which.status.success(),
        "tansu is not installed: run scripts/test.sh (it installs it), or \
         `cargo install --locked tansu --features libsql`"
    );
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts");
    let brokers = format!("127.0.0.1:{port}");
    wait_ready(&brokers, &dir);
    Tansu {
        brokers,
        dir,
        _watchdog: std::sync::Mutex::new(watchdog),
    }
}

fn wait_ready(brokers: &str, dir: &std::path::Path) {
    let began = Instant::now();
    let client: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    loop {
        if client
            .inner()
            .fetch_metadata(None, Duration::from_secs(2))
            .is_ok()
        {
            return;
        }
        let log = std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default();
        assert!(
            began.elapsed() < READY_WITHIN,
            "tansu did not answer on {brokers} within {READY_WITHIN:?}; its log:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One consumer-group test at a time on the shared broker: tests that kill group members or
/// make groups rebalance hold this while they run. (Seen in CI: with two such tests rebalancing
/// at once, tansu 0.6 once left a surviving member without an assignment for 300 s.)
pub fn group_tests_one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Creates `topic` with `partitions`, and waits until its metadata shows them.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    let client: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = client
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics");
    for result in results {
        result.unwrap_or_else(|(topic, error)| panic!("topic {topic}: {error}"));
    }
    let began = Instant::now();
    loop {
        let metadata = client
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5));
        let ready = metadata.is_ok_and(|metadata| {
            metadata
                .topics()
                .first()
                .is_some_and(|t| t.partitions().len() == partitions as usize)
        });
        if ready {
            return;
        }
        assert!(
            began.elapsed() < READY_WITHIN,
            "topic {topic} never showed {partitions} partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Writes `count` records `{"key": "k<i % 1000>", "seq": i}` round-robin over `partitions`,
/// waiting for every delivery report.
pub fn produce(brokers: &str, topic: &str, partitions: i32, count: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in 0..count {
        let key = format!("k{}", i % 1000);
        let value = format!("{{\"key\":\"{key}\",\"seq\":{i}}}");
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition((i % partitions as usize) as i32);
        let queued_since = std::time::Instant::now();
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((error, returned)) => {
                    assert!(
                        queued_since.elapsed() < Duration::from_secs(60),
                        "the producer queue stayed full for a minute: {error}"
                    );
                    record = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every record delivered");
}
