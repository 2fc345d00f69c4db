//! Each sink actor against the plain client library writing the same rows in a simple batched
//! loop, in one run: PostgreSQL (upsert on the origin, tokio-postgres, the same statement, one
//! transaction per 5,000 rows), Kafka (idempotent producer, the same records and headers, on the
//! embedded broker; the time until every delivery report is in) and files (the same JSON Lines,
//! one fsync per 16,384 records). The sink is fed batches of 1,024 through its inlet within its
//! credit, and timed until all of its credit came back (every record durable).
//!
//! Run: `cargo bench -p streamvisor-actors --bench sinks` (goal: every ratio >= 0.8). It starts
//! a private PostgreSQL (initdb in a temp folder, as the `postgres` user when run as root) unless
//! `STREAMVISOR_BENCH_PG_URL` names one (its password in `PGPASSWORD`).
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use streamvisor_actors::encode_line;
use streamvisor_actors::metrics::SinkMetrics;
use streamvisor_actors::origin_headers;
use streamvisor_actors::AckRouter;
use streamvisor_actors::Batch;
use streamvisor_actors::DeadLetterTarget;
use streamvisor_actors::PostgresWriter;
use streamvisor_actors::{Connection, PostgresSettings, RowBuffers};
use streamvisor_actors::{FileOutput, FileSinkSettings, FileWriter};
use streamvisor_actors::{Inlet, Inlets, SendRefused, Waker};
use streamvisor_actors::{KafkaSinkSettings, KafkaWriter};
use streamvisor_actors::{SinkActor, SinkShared};
use streamvisor_supervision::{ActorPath, ChildSpec, RuntimeSettings, SupervisionRuntime};

const BATCH: usize = 1024;
const CAPACITY: u64 = 16 * BATCH as u64;

/// `records` records in batches of 1,024 over 8 partitions, as a source would hand them on.
fn batches(records: usize) -> Vec<Batch> {
    let topic: Arc<str> = Arc::from("bench");
    let mut out = Vec::new();
    let mut offsets = [0i64; 8];
    let mut seq = 0;
    while seq < records {
        let partition = (out.len() % 8) as i32;
        let mut batch = Batch::new(Arc::clone(&topic), partition, 1, BATCH);
        for _ in 0..BATCH.min(records - seq) {
            let key = format!("k{}", seq % 1000);
            let value = format!(
                "{{\"key\":\"{key}\",\"seq\":{seq},\"amount\":{}.5}}",
                seq % 977
            );
            batch.push(
                offsets[partition as usize],
                Some(1_764_230_400_000),
                Some(key.as_bytes()),
                value.as_bytes(),
            );
            offsets[partition as usize] += 1;
            seq += 1;
        }
        out.push(batch);
    }
    out
}

/// Starts `spec` (a sink named `out`) and feeds it `batches` within its credit; the time from
/// the first send until all credit came back (every record durable).
async fn drive(spec: ChildSpec, inlets: Inlets, batches: Vec<Batch>) -> Duration {
    let runtime = SupervisionRuntime::start(RuntimeSettings::default(), vec![spec])
        .await
        .unwrap();
    let path = ActorPath::parse("/out").unwrap();
    let notify = Arc::new(tokio::sync::Notify::new());
    let waker: Waker = {
        let notify = Arc::clone(&notify);
        Arc::new(move || notify.notify_one())
    };
    let mut cached: Option<Arc<Inlet>> = None;
    // Wait for the sink's inlet (it opens when the actor starts).
    while cached.is_none() {
        let probe = Batch::new(Arc::from("bench"), 0, 1, 0);
        match inlets.send(&path, &mut cached, probe, &waker) {
            Ok(()) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
        if cached
            .as_ref()
            .is_some_and(|inlet| inlet.credit() < CAPACITY)
        {
            cached = None;
        }
    }
    let began = Instant::now();
    for batch in batches {
        let mut batch = batch;
        loop {
            match inlets.send(&path, &mut cached, batch, &waker) {
                Ok(()) => break,
                Err(SendRefused::NoCredit(back)) => {
                    batch = back;
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
                }
                Err(SendRefused::Gone(back)) => {
                    batch = back;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    while cached
        .as_ref()
        .is_some_and(|inlet| inlet.credit() < CAPACITY)
    {
        let _ = tokio::time::timeout(Duration::from_millis(5), notify.notified()).await;
    }
    let took = began.elapsed();
    runtime.shutdown(Duration::from_secs(30)).await.unwrap();
    took
}

// ---------------------------------------------------------------- PostgreSQL

struct PrivatePostgres {
    url: String,
    stop: Option<(PathBuf, PathBuf, bool)>,
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some((bin, data, as_postgres)) = &self.stop {
            let _ = pg_command(bin, "pg_ctl", *as_postgres)
                .args(["-D", &data.display().to_string(), "-m", "immediate", "stop"])
                .output();
        }
    }
}

fn pg_command(bin: &Path, program: &str, as_postgres: bool) -> Command {
    if as_postgres {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn postgres() -> PrivatePostgres {
    if let Ok(url) = std::env::var("STREAMVISOR_BENCH_PG_URL") {
        return PrivatePostgres { url, stop: None };
    }
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL under /usr/lib/postgresql (or set STREAMVISOR_BENCH_PG_URL)")
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .max()
        .expect("an initdb");
    let dir = std::env::temp_dir().join(format!("streamvisor-bench-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let as_postgres = Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false);
    if as_postgres {
        assert!(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success());
    }
    let data = dir.join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ok = pg_command(&bin, "initdb", as_postgres)
        .args([
            "-D",
            &data.display().to_string(),
            "-U",
            "bench",
            "--auth=trust",
            "--no-sync",
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "initdb: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1",
        dir.display()
    );
    let ok = pg_command(&bin, "pg_ctl", as_postgres)
        .args(["-D", &data.display().to_string(), "-o", &options])
        .args(["-l", &dir.join("log").display().to_string(), "-w", "start"])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "pg_ctl start: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    PrivatePostgres {
        url: format!("host=127.0.0.1 port={port} user=bench dbname=postgres"),
        stop: Some((bin, data, as_postgres)),
    }
}

fn pg_settings(url: &str, table: &str) -> PostgresSettings {
    let mut settings = PostgresSettings::new(url, table);
    settings.create_table = true;
    settings.password = std::env::var("PGPASSWORD").ok();
    settings
}

/// The plain loop: tokio-postgres, the same statement, 5,000 rows per transaction.
async fn postgres_plain(url: &str, batches: &[Batch]) -> Duration {
    let settings = pg_settings(url, "plain");
    let local = tokio::task::LocalSet::new();
    local
        .run_until(async {
            let mut connection = Connection::open(&settings).await.unwrap();
            let mut buffers = RowBuffers::default();
            let began = Instant::now();
            for chunk in batches.chunks(5) {
                buffers.fill(chunk, settings.dedupe, connection.key_column());
                connection.write(&buffers.rows(chunk)).await.unwrap();
            }
            began.elapsed()
        })
        .await
}

/// What the sink actor under test is given.
fn shared(inlets: &Inlets) -> SinkShared {
    SinkShared {
        capacity: CAPACITY,
        inlets: inlets.clone(),
        acks: AckRouter::default(),
        metrics: SinkMetrics::new("bench", "out"),
        readiness: Default::default(),
    }
}

fn postgres_sink(url: &str, inlets: &Inlets) -> ChildSpec {
    let (shared, settings) = (shared(inlets), pg_settings(url, "sink"));
    let dead_letters =
        DeadLetterTarget::new("127.0.0.1:1", &Default::default(), "bench.dead-letters");
    ChildSpec::worker("out", move || {
        SinkActor::new(
            shared.clone(),
            PostgresWriter::new(settings.clone(), dead_letters.clone()),
        )
    })
    .mailbox_capacity(CAPACITY as usize)
}

// ---------------------------------------------------------------- Kafka

/// The plain loop: the idempotent producer, the same records and headers; until every
/// delivery report is in.
fn kafka_plain(brokers: &str, batches: &[Batch]) -> Duration {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .unwrap();
    let began = Instant::now();
    for batch in batches {
        let partition = batch.partition().to_string();
        for record in batch.iter() {
            let offset = record.offset.to_string();
            let headers = origin_headers("bench", &partition, &offset, 0);
            let mut message = BaseRecord::<[u8], [u8]>::to("plain-out")
                .payload(record.value)
                .headers(headers);
            if let Some(key) = record.key {
                message = message.key(key);
            }
            let mut message = message;
            loop {
                match producer.send(message) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        message = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    began.elapsed()
}

fn kafka_sink(brokers: &str, inlets: &Inlets) -> ChildSpec {
    let shared = shared(inlets);
    let settings = KafkaSinkSettings {
        brokers: brokers.to_owned(),
        topic: "sink-out".to_owned(),
        properties: Default::default(),
    };
    let dead_letters = DeadLetterTarget::new(brokers, &Default::default(), "sink-out.dead-letters");
    ChildSpec::worker("out", move || {
        SinkActor::new(
            shared.clone(),
            KafkaWriter::new(settings.clone(), dead_letters.clone()),
        )
    })
    .mailbox_capacity(CAPACITY as usize)
}

// ---------------------------------------------------------------- files

/// The plain loop: the same JSON Lines, one write and fsync per 16,384 records.
fn file_plain(path: &Path, batches: &[Batch]) -> Duration {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buffer = Vec::new();
    let began = Instant::now();
    for chunk in batches.chunks(16) {
        buffer.clear();
        for batch in chunk {
            for record in batch.iter() {
                encode_line(&mut buffer, batch.topic(), batch.partition(), &record, None);
            }
        }
        file.write_all(&buffer).unwrap();
        file.sync_data().unwrap();
    }
    began.elapsed()
}

fn file_sink(path: &Path, inlets: &Inlets) -> ChildSpec {
    let shared = shared(inlets);
    let settings = FileSinkSettings {
        output: FileOutput::Single(path.to_path_buf()),
        delay_per_batch: Duration::ZERO,
        slow_until: None,
        faults: Default::default(),
    };
    ChildSpec::worker("out", move || {
        SinkActor::new(shared.clone(), FileWriter::new(settings.clone()))
    })
    .mailbox_capacity(CAPACITY as usize)
}

fn report(name: &str, records: usize, plain: Duration, sink: Duration) {
    let rate = |time: Duration| records as f64 / time.as_secs_f64();
    println!(
        "sink {name}: records={records} plain={:.0} rec/s streamvisor={:.0} rec/s ratio={:.2} (goal >= 0.8)",
        rate(plain),
        rate(sink),
        rate(sink) / rate(plain)
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("streamvisor-bench-sinks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    // PostgreSQL: 200,000 rows.
    let pg = postgres();
    let rows = batches(200_000);
    let plain = actix::System::new().block_on(postgres_plain(&pg.url, &rows));
    let inlets = Inlets::default();
    let spec = postgres_sink(&pg.url, &inlets);
    let sink = actix::System::new().block_on(drive(spec, inlets, rows));
    report("postgres", 200_000, plain, sink);
    drop(pg);

    // Kafka: 500,000 records on the embedded broker.
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("plain-out", 8, 1).unwrap();
    cluster.create_topic("sink-out", 8, 1).unwrap();
    let brokers = cluster.bootstrap_servers();
    let records = batches(500_000);
    let plain = kafka_plain(&brokers, &records);
    let inlets = Inlets::default();
    let spec = kafka_sink(&brokers, &inlets);
    let sink = actix::System::new().block_on(drive(spec, inlets, records));
    report("kafka", 500_000, plain, sink);

    // Files: 1,000,000 records.
    let records = batches(1_000_000);
    let plain = file_plain(&dir.join("plain.jsonl"), &records);
    let inlets = Inlets::default();
    let spec = file_sink(&dir.join("sink.jsonl"), &inlets);
    let sink = actix::System::new().block_on(drive(spec, inlets, records));
    report("file", 1_000_000, plain, sink);
    assert_eq!(
        std::fs::metadata(dir.join("plain.jsonl")).unwrap().len(),
        std::fs::metadata(dir.join("sink.jsonl")).unwrap().len(),
        "the sink wrote the same bytes"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
