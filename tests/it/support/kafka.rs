//! The test broker: Apache Kafka itself (the version pinned in `tests/kafka/pom.xml`), one node in
//! KRaft mode (broker and controller in one JVM), on free loopback ports with a temp folder, a
//! small heap and group settings for fast tests; started once per test binary (or once for a test
//! that takes its broker down), waited on until it answers metadata, and stopped after. A watchdog
//! shell ends the JVM and removes its folder when this process is gone, however it ends.
//!
//! The jars come from Maven Central through the pom (`scripts/test.sh` fetches them; this module
//! fetches them too when `tests/kafka/target/classpath.txt` is missing or older than the pom).
//!
//! Group settings (the broker's; a client's own `session.timeout.ms` must lie between the
//! minimum and maximum): classic groups accept sessions from 1 s and start rebalancing at once
//! (`group.initial.rebalance.delay.ms=0`); consumer groups (KIP-848) time a member out after
//! [`CONSUMER_SESSION_TIMEOUT`] and ask for a heartbeat every second.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

/// How long the broker gets to answer after its start (a cold JVM on a loaded 2-core machine).
const READY_WITHIN: Duration = Duration::from_secs(120);

/// How long fetching the jars may take.
const FETCH_WITHIN: Duration = Duration::from_secs(600);

/// The session of a member of a consumer group (KIP-848) on this broker: it leaves the group
/// this long after its last heartbeat.
pub(crate) const CONSUMER_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

/// A running Apache Kafka broker.
pub(crate) struct Kafka {
    /// `bootstrap.servers` for it.
    pub brokers: String,
    /// Its folder: `server.properties`, `data/`, `broker.log`.
    pub dir: PathBuf,
    /// The JVM and its watchdog, while it runs.
    process: Mutex<Option<BrokerProcess>>,
}

struct BrokerProcess {
    java: Child,
    /// Ends the JVM when this process is gone (none until it is started).
    watchdog: Option<Child>,
}

/// The broker of this test binary, started on first use.
pub(crate) fn broker() -> &'static Kafka {
    static BROKER: OnceLock<Kafka> = OnceLock::new();
    BROKER.get_or_init(Kafka::start)
}

/// A broker of one test's own (a test that stops or kills it), stopped when dropped.
pub(crate) fn private() -> Kafka {
    Kafka::start()
}

impl Kafka {
    /// Formats a fresh folder with a new cluster id and starts the broker on free ports.
    fn start() -> Kafka {
        let classpath = classpath();
        let (port, controller_port) = two_free_ports();
        let dir =
            std::env::temp_dir().join(format!("streamvisor-kafka-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the broker's folder");
        std::fs::write(
            dir.join("server.properties"),
            server_properties(&dir, port, controller_port),
        )
        .expect("server.properties");
        let format = java(&classpath, &dir)
            .args(["kafka.tools.StorageTool", "format"])
            .arg(format!("--cluster-id={}", cluster_id()))
            .args(["--config", "server.properties"])
            .output()
            .expect("java runs");
        assert!(
            format.status.success(),
            "formatting the broker's storage failed: {}{}",
            String::from_utf8_lossy(&format.stdout),
            String::from_utf8_lossy(&format.stderr)
        );
        let kafka = Kafka {
            brokers: format!("127.0.0.1:{port}"),
            dir,
            process: Mutex::new(None),
        };
        kafka.launch();
        kafka
    }

    /// Starts the JVM on the folder (formatted) and waits until it answers metadata.
    fn launch(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))
            .expect("broker.log");
        let java = java(&classpath(), &self.dir)
            .args(["kafka.Kafka", "server.properties"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("broker.log"))
            .stderr(log)
            .spawn()
            .expect("the broker's JVM starts");
        let pid = java.id();
        *self.lock() = Some(BrokerProcess {
            java,
            watchdog: None,
        });
        // Ends the JVM when this process is gone (statics are never dropped), then removes the
        // folder; exits when the JVM ended first (a test killed it).
        let script = format!(
            "while kill -0 {parent} 2>/dev/null && kill -0 {java} 2>/dev/null; do sleep 1; done; \
             if ! kill -0 {parent} 2>/dev/null; then kill -9 {java} 2>/dev/null; rm -rf '{dir}'; fi",
            parent = std::process::id(),
            java = pid,
            dir = self.dir.display()
        );
        let watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker's watchdog starts");
        self.lock()
            .as_mut()
            .expect("the JVM was just stored")
            .watchdog = Some(watchdog);
        self.wait_ready();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BrokerProcess>> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until the broker answers a metadata request listing itself.
    fn wait_ready(&self) {
        let began = Instant::now();
        let client: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("log_level", "3")
            .create()
            .expect("admin client");
        loop {
            let answered = client
                .inner()
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok_and(|metadata| !metadata.brokers().is_empty());
            if answered {
                return;
            }
            if let Some(process) = self.lock().as_mut() {
                if let Ok(Some(status)) = process.java.try_wait() {
                    panic!(
                        "the broker exited ({status}) before answering; its log:\n{}",
                        self.log_tail()
                    );
                }
            }
            assert!(
                began.elapsed() < READY_WITHIN,
                "the broker did not answer metadata on {} within {READY_WITHIN:?}; its log:\n{}",
                self.brokers,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The end of the broker's log (for failure messages).
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The JVM's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.lock()
            .as_ref()
            .map(|process| process.java.id())
            .expect("the broker runs")
    }

    /// Sends `signal` (`STOP`, `CONT`) to the broker's JVM.
    pub(crate) fn signal(&self, signal: &str) {
        crate::support::program::send_signal(self.pid(), signal);
    }

    /// SIGKILLs the broker and waits until it is gone (its folder stays).
    pub(crate) fn kill(&self) {
        let mut guard = self.lock();
        let mut process = guard.take().expect("the broker runs");
        let _ = process.java.kill();
        let _ = process.java.wait();
        if let Some(watchdog) = process.watchdog.as_mut() {
            let _ = watchdog.wait();
        }
    }

    /// Starts the broker again on its folder and port (after [`Kafka::kill`]).
    pub(crate) fn restart(&self) {
        assert!(self.lock().is_none(), "the broker still runs");
        self.launch();
    }

    /// Starts the pipeline of TOML `text` (named `file` in errors) on this broker.
    pub(crate) async fn run(&self, text: &str, file: &str) -> streamvisor::runtime::Runtime {
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

    /// The type of consumer group `group` as the broker reports it (`Classic`, `Consumer`),
    /// from Kafka's own group tool.
    pub(crate) fn group_type(&self, group: &str) -> String {
        let output = java(&classpath(), &self.dir)
            .arg("-Dstreamvisor.kafka.log.level=warn")
            .args([
                "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                "--bootstrap-server",
                &self.brokers,
                "--list",
                "--type",
            ])
            .output()
            .expect("java runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "kafka-consumer-groups --list --type failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .find_map(|line| {
                let mut columns = line.split_whitespace();
                (columns.next() == Some(group)).then(|| columns.next().unwrap_or("").to_owned())
            })
            .unwrap_or_else(|| panic!("group {group} is not listed:\n{stdout}"))
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(mut process) = self.lock().take() {
            let _ = process.java.kill();
            let _ = process.java.wait();
            if let Some(watchdog) = process.watchdog.as_mut() {
                let _ = watchdog.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The broker's configuration: one node, broker and controller, PLAINTEXT on loopback.
fn server_properties(dir: &Path, port: u16, controller_port: u16) -> String {
    let session_ms = CONSUMER_SESSION_TIMEOUT.as_millis();
    format!(
        "process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
num.network.threads=2
num.io.threads=4
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
group.consumer.min.session.timeout.ms=1000
group.consumer.session.timeout.ms={session_ms}
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1000
",
        data = dir.join("data").display()
    )
}

/// `java` with the broker's classpath, heap and log settings, in `dir`.
fn java(classpath: &str, dir: &Path) -> Command {
    let mut command = Command::new("java");
    command
        .args([
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
        ])
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            kafka_dir().join("log4j2.properties").display()
        ))
        .args(["-cp", classpath])
        .current_dir(dir);
    command
}

/// `tests/kafka`.
fn kafka_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka")
}

/// The broker's classpath: fetched with Maven once (cached in ~/.m2), then read from
/// `tests/kafka/target/classpath.txt`.
fn classpath() -> String {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH
        .get_or_init(|| {
            let dir = kafka_dir();
            let file = dir.join("target/classpath.txt");
            let modified = |path: &Path| std::fs::metadata(path).and_then(|meta| meta.modified());
            let fresh = match (modified(&file), modified(&dir.join("pom.xml"))) {
                (Ok(list), Ok(pom)) => list >= pom,
                _ => false,
            };
            if !fresh {
                fetch_jars(&dir);
            }
            let classpath = std::fs::read_to_string(&file).expect("classpath.txt");
            assert!(
                !classpath.trim().is_empty(),
                "{} is empty: run `mvn -f tests/kafka/pom.xml dependency:build-classpath \
                 -Dmdep.outputFile=target/classpath.txt`",
                file.display()
            );
            classpath.trim().to_owned()
        })
        .clone()
}

/// `mvn dependency:build-classpath` on the pom (once per test binary; `scripts/test.sh` runs it
/// before any test binary starts).
fn fetch_jars(dir: &Path) {
    let mut command = Command::new("mvn");
    command
        .args(["-q", "-B", "-f"])
        .arg(dir.join("pom.xml"))
        .args([
            "dependency:build-classpath",
            "-Dmdep.outputFile=target/classpath.txt",
        ])
        .current_dir(dir);
    let output = crate::support::program::output_within(&mut command, None, FETCH_WITHIN);
    assert!(
        output.status.success(),
        "fetching Apache Kafka's jars with Maven failed (scripts/test.sh fetches them): {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh cluster id: 16 random bytes in URL-safe base64, as Kafka's own `Uuid` writes them,
/// and like Kafka never one that starts with '-' (a command line would take it for an option).
fn cluster_id() -> String {
    loop {
        let id = base64_url(&std::array::from_fn::<u8, 16, _>(|_| fastrand::u8(..)));
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// `bytes` in URL-safe base64 without padding.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut held = 0;
    let mut id = String::new();
    for byte in bytes {
        bits = (bits << 8) | u32::from(*byte);
        held += 8;
        while held >= 6 {
            held -= 6;
            id.push(ALPHABET[((bits >> held) & 63) as usize] as char);
        }
    }
    if held > 0 {
        id.push(ALPHABET[((bits << (6 - held)) & 63) as usize] as char);
    }
    id
}

/// Two distinct free loopback ports (both bound until both are chosen, then released).
fn two_free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let (first, second) = (bind(), bind());
    let port = |listener: &TcpListener| listener.local_addr().expect("an address").port();
    (port(&first), port(&second))
}

/// Creates `topic` with `partitions`, and waits until its metadata shows them.
pub(crate) async fn create_topic(brokers: &str, topic: &str, partitions: i32) {
    create_topic_with(brokers, topic, partitions, &[]).await;
}

/// Creates `topic` with `partitions` and the topic `configs` (`max.message.bytes`, ...), and
/// waits until its metadata shows them.
pub(crate) async fn create_topic_with(
    brokers: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let client: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let results = client
        .create_topics(
            &[configs.iter().fold(
                NewTopic::new(topic, partitions, TopicReplication::Fixed(1)),
                |topic, (name, value)| topic.set(name, value),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .expect("create topics");
    for result in results {
        result.unwrap_or_else(|(topic, error)| panic!("topic {topic}: {error}"));
    }
    let what = format!("topic {topic} with {partitions} partitions, each with a leader");
    crate::support::wait::wait_for(&what, READY_WITHIN, async || {
        let metadata = client
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(|error| error.to_string())?;
        let leaders: Vec<i32> = metadata
            .topics()
            .first()
            .map(|t| t.partitions().iter().map(|p| p.leader()).collect())
            .unwrap_or_default();
        match leaders.len() == partitions as usize && leaders.iter().all(|leader| *leader >= 0) {
            true => Ok(()),
            false => Err(format!("leaders {leaders:?}")),
        }
    })
    .await;
}

/// Writes `count` records `{"key": "k<i % 1000>", "seq": i}` round-robin over `partitions`,
/// waiting for every delivery report.
pub(crate) fn produce(brokers: &str, topic: &str, partitions: i32, count: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        // In order and once: a retried first batch (a partition just created) must not land after
        // the next ones.
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let mut value = Vec::with_capacity(64);
    for i in 0..count {
        let key = format!("k{}", i % 1000);
        value.clear();
        write!(value, "{{\"key\":\"{key}\",\"seq\":{i}}}").expect("a value");
        let mut record = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .partition((i % partitions as usize) as i32);
        let queued_since = Instant::now();
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

/// The storage tool reads `--cluster-id -x…` as a missing value: about one cluster id in 64
/// started with '-' and failed a broker's start.
#[test]
fn cluster_ids_are_22_characters_and_never_start_with_a_dash() {
    for _ in 0..10_000 {
        let id = cluster_id();
        assert_eq!(id.len(), 22, "{id}");
        assert!(!id.starts_with('-'), "{id}");
    }
    assert_eq!(base64_url(&[0xfb, 0xef, 0xbe]), "----");
    assert_eq!(base64_url(&[0xff, 0xff, 0xff, 0x00]), "____AA");
}
