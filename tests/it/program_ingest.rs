//! Ingest through the real program against Apache Kafka (the socket test stops a broker of its
//! own with SIGSTOP; the REST test shares the binary's).
//!
//! - REST: concurrent clients faster than the broker acknowledges (`linger.ms` holds every
//!   batch 300 ms) get 429s; every record answered 202 is in the topic exactly once, keyed by
//!   its card, and the pipeline reading the topic writes them all; a 10 MB body gets 413 after
//!   the server read at most the limit plus 64 KiB; malformed bodies get 400 naming the record;
//!   another content type 415; an unknown source 404.
//! - Socket: with the broker stopped, the sender blocks once the kernel buffers fill, the
//!   server's RSS stays flat, and REST ingest answers 503; once the broker runs again every
//!   line sent is in the topic.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::kafka;
use crate::support::program::{self, rss_kib, Program};
use crate::support::wait;

/// An HTTP answer with its headers.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

/// Sends `body` to `POST path` with `content_type`; `chunked` sends it without a length.
/// Writes stop at the first error (the server may close the connection after answering).
pub(crate) fn post(
    address: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    chunked: bool,
) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connects to the program");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("write timeout");
    let length = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {}", body.len())
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: {content_type}\r\n{length}\r\n\r\n"
    );
    let mut written = stream.write_all(head.as_bytes());
    if chunked {
        for chunk in body.chunks(16 * 1024) {
            if written.is_err() {
                break;
            }
            written = stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .and_then(|()| stream.write_all(chunk))
                .and_then(|()| stream.write_all(b"\r\n"));
        }
        if written.is_ok() {
            let _ = stream.write_all(b"0\r\n\r\n");
        }
    } else if written.is_ok() {
        let _ = stream.write_all(body);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer from {address}{path}: {text:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// A record of the REST test: card `c<id % 10>`.
fn payment(id: u64) -> serde_json::Value {
    serde_json::json!({ "card": format!("c{}", id % 10), "id": id, "amount": id % 1000 })
}

pub(crate) fn pipeline(
    dir: &std::path::Path,
    name: &str,
    topic: &str,
    ingest: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"name = "{name}"
[kafka]
group = "{name}"
[sources.events]
kind = "kafka"
topic = "{topic}"
partitions = 4
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "out/{name}.jsonl"
{ingest}
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("pipeline file");
    path
}

const LIMIT: usize = 65_536;

#[test]
fn rest_ingest_answers_202_only_for_what_the_broker_holds() {
    crate::show_warnings();
    let broker = kafka::broker();
    let dir = program::test_dir("ingest-rest");
    let topic = format!("payments-{}", fastrand::u32(..));
    let ingest = format!(
        r#"[ingest.payments]
kind = "http"
topic = "{topic}"
partitions = 4
key = "card"
max_in_flight = 200
max_body = {LIMIT}
[ingest.payments.properties]
"linger.ms" = "300"
"#
    );
    let file = pipeline(&dir, "ingest-rest", &topic, &ingest);
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "ingest-rest");
    program.wait_ready(Duration::from_secs(60));
    let address = program.http.clone();

    // Bad requests first: none of them writes anything.
    let answer = post(
        &address,
        "/api/ingest/payments",
        "application/json",
        b"[{\"card\": \"c1\"",
        false,
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("expected a JSON array"),
        "{}",
        answer.body
    );
    let answer = post(
        &address,
        "/api/ingest/payments",
        "application/x-ndjson",
        b"{\"card\": \"c1\"}\n{\"id\": 2}\n",
        false,
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("record 2") && answer.body.contains("key field `card` is missing"),
        "{}",
        answer.body
    );
    let answer = post(
        &address,
        "/api/ingest/payments",
        "text/csv",
        b"card\nc1\n",
        false,
    );
    assert_eq!(answer.status, 415, "{}", answer.body);
    let answer = post(
        &address,
        "/api/ingest/nowhere",
        "application/json",
        b"[]",
        false,
    );
    assert_eq!(answer.status, 404, "{}", answer.body);

    // A 10 MB body: refused from its length without a byte read, and, sent chunked (no
    // length), cut off once past the limit.
    let big = vec![b' '; 10 * 1024 * 1024];
    let read_before = program.metric_sum("streamvisor_ingest_bytes_total");
    let answer = post(
        &address,
        "/api/ingest/payments",
        "application/json",
        &big,
        false,
    );
    assert_eq!(answer.status, 413, "{}", answer.body);
    let read_after_declared = program.metric_sum("streamvisor_ingest_bytes_total");
    assert_eq!(
        read_after_declared, read_before,
        "a declared length over the limit reads nothing"
    );
    let answer = post(
        &address,
        "/api/ingest/payments",
        "application/json",
        &big,
        true,
    );
    assert_eq!(answer.status, 413, "{}", answer.body);
    let read = program.metric_sum("streamvisor_ingest_bytes_total") - read_after_declared;
    println!("ingest: a chunked 10 MB body was cut off after the server read {read} bytes (limit {LIMIT})");
    assert!(
        read > LIMIT as f64 && read <= (LIMIT + 64 * 1024) as f64,
        "the server read {read} bytes of a 10 MB body with a limit of {LIMIT}"
    );

    // Concurrent clients: 8 of them, 25 requests of 50 records each, faster than the broker
    // acknowledges (a budget of 200 records, batches held 300 ms).
    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let statuses = Arc::new(Mutex::new(std::collections::BTreeMap::<u16, usize>::new()));
    let clients: Vec<_> = (0..8u64)
        .map(|client| {
            let (address, accepted, statuses) = (
                address.clone(),
                Arc::clone(&accepted),
                Arc::clone(&statuses),
            );
            std::thread::spawn(move || {
                for request in 0..25u64 {
                    let first = (client * 25 + request) * 50;
                    let ids: Vec<u64> = (first..first + 50).collect();
                    let body: Vec<serde_json::Value> = ids.iter().map(|id| payment(*id)).collect();
                    let body = serde_json::to_vec(&body).expect("JSON");
                    let answer = post(
                        &address,
                        "/api/ingest/payments",
                        "application/json",
                        &body,
                        false,
                    );
                    *statuses
                        .lock()
                        .expect("statuses")
                        .entry(answer.status)
                        .or_default() += 1;
                    match answer.status {
                        202 => {
                            assert_eq!(answer.body, r#"{"accepted":50}"#);
                            accepted.lock().expect("accepted").extend(ids);
                        }
                        429 => assert!(
                            answer.head.to_ascii_lowercase().contains("retry-after: 1"),
                            "a 429 says when to retry: {}",
                            answer.head
                        ),
                        other => panic!("unexpected {other}: {}", answer.body),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client thread");
    }
    // A MessagePack body too.
    let packed =
        rmp_serde::to_vec_named(&vec![payment(1_000_000), payment(1_000_001)]).expect("msgpack");
    let answer = post(
        &address,
        "/api/ingest/payments",
        "application/msgpack",
        &packed,
        false,
    );
    assert_eq!(answer.status, 202, "{}", answer.body);
    accepted
        .lock()
        .expect("accepted")
        .extend([1_000_000, 1_000_001]);

    let statuses = statuses.lock().expect("statuses").clone();
    let accepted = accepted.lock().expect("accepted").clone();
    println!(
        "ingest: statuses={statuses:?} accepted_records={}",
        accepted.len()
    );
    assert!(
        statuses.get(&429).copied().unwrap_or(0) > 0,
        "no 429 with clients faster than the broker: {statuses:?}"
    );
    assert!(
        statuses.get(&202).copied().unwrap_or(0) > 0,
        "nothing accepted: {statuses:?}"
    );

    let records = program::read_topic(&broker.brokers, &topic, 4);
    let mut in_topic = BTreeSet::new();
    for (_, key, payload) in &records {
        let record: serde_json::Value = serde_json::from_slice(payload).expect("JSON in the topic");
        let id = record["id"].as_u64().expect("an id");
        assert_eq!(
            key.as_deref(),
            Some(format!("c{}", id % 10).as_bytes()),
            "keyed by the card"
        );
        assert!(in_topic.insert(id), "record {id} written twice");
    }
    assert_eq!(
        in_topic, accepted,
        "the topic holds exactly the records answered 202"
    );
    assert_eq!(
        program.metric_sum("streamvisor_ingest_records_total"),
        accepted.len() as f64
    );

    // The pipeline reads them from the topic.
    let out = dir.join("out/ingest-rest.jsonl");
    wait::wait_until_or(
        "the pipeline to write every ingested record",
        Duration::from_secs(60),
        || program::SinkFile::count_lines(&out) >= accepted.len(),
        || program.log_tail(),
    );
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}

#[test]
fn socket_ingest_stops_reading_while_the_broker_is_stalled() {
    crate::show_warnings();
    let broker = kafka::private();
    let dir = program::test_dir("ingest-socket");
    let topic = format!("sensors-{}", fastrand::u32(..));
    let socket = format!("127.0.0.1:{}", program::free_port());
    let ingest = format!(
        r#"[ingest.sensors]
kind = "socket"
listen = "{socket}"
topic = "{topic}"
partitions = 4
key = "sensor"
max_in_flight = 2000
[ingest.rest]
kind = "http"
topic = "{topic}-rest"
partitions = 1
"#
    );
    let file = pipeline(&dir, "ingest-socket", &topic, &ingest);
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "ingest-socket");
    program.wait_ready(Duration::from_secs(60));

    // A sender writing lines of ~100 bytes as fast as the socket takes them.
    let mut stream = TcpStream::connect(&socket).expect("connects to the socket ingest");
    let lines_sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (lines_sent, stop) = (Arc::clone(&lines_sent), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut next = 0u64;
            while !stop.load(Ordering::Acquire) {
                let mut chunk = String::new();
                for _ in 0..100 {
                    chunk.push_str(&format!(
                        "{{\"sensor\":\"s{}\",\"seq\":{next},\"reading\":{},\"pad\":\"{}\"}}\n",
                        next % 50,
                        next % 97,
                        "x".repeat(40)
                    ));
                    next += 1;
                }
                stream
                    .write_all(chunk.as_bytes())
                    .expect("the socket takes the lines");
                lines_sent.store(next, Ordering::Release);
            }
            drop(stream); // the server reads to the end, then pushes what is left
        })
    };
    wait::wait_until("20,000 lines sent", Duration::from_secs(60), || {
        lines_sent.load(Ordering::Acquire) >= 20_000
    });

    let rss_before = rss_kib(program.pid()).expect("the program's RSS");
    broker.signal("STOP");
    // Blocked: no progress for 3 s.
    let began = Instant::now();
    let mut last = (lines_sent.load(Ordering::Acquire), Instant::now());
    while last.1.elapsed() < Duration::from_secs(3) {
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the sender never blocked with the broker stopped: {} lines sent",
            last.0
        );
        std::thread::sleep(Duration::from_millis(100));
        let now = lines_sent.load(Ordering::Acquire);
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let blocked_at = last.0;
    let rss_blocked = rss_kib(program.pid()).expect("the program's RSS");
    // REST ingest on the same broker answers 503 once its probe notices.
    wait::wait_until(
        "REST ingest to answer 503 with the broker stopped",
        Duration::from_secs(30),
        || {
            post(
                &program.http,
                "/api/ingest/rest",
                "application/json",
                b"[{\"a\": 1}]",
                false,
            )
            .status
                == 503
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    let rss_later = rss_kib(program.pid()).expect("the program's RSS");
    assert_eq!(
        lines_sent.load(Ordering::Acquire),
        blocked_at,
        "the sender stays blocked"
    );
    println!(
        "ingest socket: blocked after {blocked_at} lines; rss before stall={rss_before}KiB blocked={rss_blocked}KiB 5s later={rss_later}KiB"
    );
    assert!(
        rss_blocked.saturating_sub(rss_before) < 32 * 1024,
        "the server's memory grew {} KiB while the broker was stopped",
        rss_blocked.saturating_sub(rss_before)
    );
    assert!(
        rss_later.abs_diff(rss_blocked) < 2 * 1024,
        "the server's memory moved {} KiB while the sender was blocked",
        rss_later.abs_diff(rss_blocked)
    );

    broker.signal("CONT");
    stop.store(true, Ordering::Release);
    sender.join().expect("the sender ends");
    let sent = lines_sent.load(Ordering::Acquire);
    let mut seen = BTreeSet::new();
    wait::wait_until_or(
        &format!("all {sent} lines in the topic"),
        Duration::from_secs(120),
        || {
            let total: i64 = program::ends(&broker.brokers, &topic, 4).iter().sum();
            total >= sent as i64
        },
        || {
            format!(
                "in the topic: {:?}; acknowledged: {}; its log:\n{}",
                program::ends(&broker.brokers, &topic, 4),
                program.metric_sum("streamvisor_ingest_records_total"),
                program.log_tail()
            )
        },
    );
    for (_, key, payload) in program::read_topic(&broker.brokers, &topic, 4) {
        let record: serde_json::Value =
            serde_json::from_slice(&payload).expect("JSON in the topic");
        let seq = record["seq"].as_u64().expect("a seq");
        assert_eq!(key.as_deref(), Some(format!("s{}", seq % 50).as_bytes()));
        seen.insert(seq);
    }
    println!("ingest socket: sent={sent} in_topic={}", seen.len());
    assert_eq!(
        seen,
        (0..sent).collect::<BTreeSet<u64>>(),
        "every line sent is in the topic"
    );
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}
