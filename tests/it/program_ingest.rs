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
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Sends `body` to `POST path` with `content_type`; `chunked` sends it without a length.
/// Writes stop at the first error (the server may close the connection after answering).
fn post(address: &str, path: &str, content_type: &str, body: &[u8], chunked: bool) -> Answer {
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

fn pipeline(dir: &std::path::Path, name: &str, topic: &str, ingest: &str) -> std::path::PathBuf {
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

/// A record the producer refuses (over its `message.max.bytes` of 5,000 here) or over
/// `max_record` is refused alone: a REST answer lists it by index, a socket counts and logs it,
/// and every other record of the request or the connection is written.
#[test]
fn a_refused_record_is_answered_alone_and_the_rest_goes_on() {
    crate::show_warnings();
    let broker = kafka::broker();
    let dir = program::test_dir("ingest-refused");
    let topic = format!("refused-{}", fastrand::u32(..));
    let socket = format!("127.0.0.1:{}", program::free_port());
    let ingest = format!(
        r#"[ingest.rest]
kind = "http"
topic = "{topic}"
partitions = 1
max_record = 10000
[ingest.rest.properties]
"message.max.bytes" = "5000"
[ingest.lines]
kind = "socket"
listen = "{socket}"
topic = "{topic}-lines"
partitions = 1
max_record = 10000
[ingest.lines.properties]
"message.max.bytes" = "5000"
"#
    );
    let file = pipeline(&dir, "ingest-refused", &topic, &ingest);
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "ingest-refused");
    program.wait_ready(Duration::from_secs(60));

    let record = |id: u64, pad: usize| serde_json::json!({ "id": id, "pad": "p".repeat(pad) });
    let body = serde_json::to_vec(&vec![
        record(0, 10),
        record(1, 7_000),
        record(2, 10),
        record(3, 20_000),
        record(4, 10),
    ])
    .expect("JSON");
    let answer = post(
        &program.http,
        "/api/ingest/rest",
        "application/json",
        &body,
        false,
    );
    assert_eq!(answer.status, 202, "{}", answer.body);
    let answer: serde_json::Value = serde_json::from_str(&answer.body).expect("a JSON answer");
    assert_eq!(answer["accepted"], 3, "{answer}");
    let refused: Vec<u64> = answer["refused"]
        .as_array()
        .expect("a list of refused records")
        .iter()
        .map(|refused| refused["index"].as_u64().expect("an index"))
        .collect();
    assert_eq!(refused, [1, 3], "{answer}");
    assert!(
        answer["refused"][1]["error"]
            .as_str()
            .is_some_and(|error| error.contains("over max_record (10000)")),
        "{answer}"
    );
    let written: Vec<u64> = program::read_topic(&broker.brokers, &topic, 1)
        .iter()
        .map(|(_, _, payload)| {
            serde_json::from_slice::<serde_json::Value>(payload).expect("JSON")["id"]
                .as_u64()
                .expect("an id")
        })
        .collect();
    assert_eq!(written, [0, 2, 4]);

    // A socket: 1,000 lines, two the producer refuses and one over max_record.
    let mut stream = TcpStream::connect(&socket).expect("connects to the socket ingest");
    let mut lines = String::new();
    for id in 0..1_000u64 {
        let pad = match id {
            300 | 700 => 7_000,
            500 => 20_000,
            _ => 10,
        };
        lines.push_str(&record(id, pad).to_string());
        lines.push('\n');
    }
    stream
        .write_all(lines.as_bytes())
        .expect("the socket takes the lines");
    drop(stream);
    let lines_topic = format!("{topic}-lines");
    wait::wait_until_or(
        "997 lines in the topic",
        Duration::from_secs(60),
        || program::read_topic(&broker.brokers, &lines_topic, 1).len() >= 997,
        || program.log_tail(),
    );
    let ids: BTreeSet<u64> = program::read_topic(&broker.brokers, &lines_topic, 1)
        .iter()
        .map(|(_, _, payload)| {
            serde_json::from_slice::<serde_json::Value>(payload).expect("JSON")["id"]
                .as_u64()
                .expect("an id")
        })
        .collect();
    let expected: BTreeSet<u64> = (0..1_000)
        .filter(|id| ![300, 500, 700].contains(id))
        .collect();
    assert_eq!(ids, expected, "every line but the three refused, once");
    // Counted once the socket's deliveries are in (a task of their own).
    wait::wait_until(
        "two REST records and three socket lines counted refused",
        Duration::from_secs(30),
        || program.metric_sum("streamvisor_ingest_records_refused_total") == 5.0,
    );
    let log = program.log();
    assert!(
        log.contains("a record was refused for what it is"),
        "the socket's refusals are logged: {}",
        program.log_tail()
    );
    program.signal("TERM");
    assert!(program.wait_exit(Duration::from_secs(60)).success());
}

/// Slow and many clients: 1,000 connections holding half-sent REST bodies and 1,000 idle
/// socket connections. `/health/live` answers in under 100 ms throughout; a body slower than
/// `body_timeout` is answered 408, requests past `max_requests` 503, sockets past
/// `max_connections` are closed at once and the others once idle for `idle_timeout`.
#[test]
fn slow_and_many_clients_never_keep_health_waiting_and_are_closed() {
    crate::show_warnings();
    let broker = kafka::broker();
    let dir = program::test_dir("ingest-slow");
    let topic = format!("slow-{}", fastrand::u32(..));
    let socket = format!("127.0.0.1:{}", program::free_port());
    let ingest = format!(
        r#"[ingest.rest]
kind = "http"
topic = "{topic}"
partitions = 1
body_timeout = "8s"
max_requests = 64
[ingest.lines]
kind = "socket"
listen = "{socket}"
topic = "{topic}-lines"
partitions = 1
max_connections = 100
idle_timeout = "10s"
"#
    );
    let file = pipeline(&dir, "ingest-slow", &topic, &ingest);
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), "ingest-slow");
    program.wait_ready(Duration::from_secs(60));
    let opened = Instant::now();
    let mut bodies = Vec::new();
    for _ in 0..1_000 {
        let mut stream = TcpStream::connect(&program.http).expect("connects to the HTTP listener");
        stream
            .write_all(
                b"POST /api/ingest/rest HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                  Content-Length: 1000\r\n\r\n[{\"id\": 1",
            )
            .expect("half a request");
        bodies.push(stream);
    }
    let bodies_sent = opened.elapsed();
    let sockets: Vec<TcpStream> = (0..1_000)
        .map(|_| TcpStream::connect(&socket).expect("connects to the socket ingest"))
        .collect();
    println!(
        "ingest slow clients: 1,000 half-sent bodies in {bodies_sent:?}, 2,000 connections in {:?}",
        opened.elapsed()
    );
    let opened = Instant::now();
    // Health answers at once throughout, the slow clients notwithstanding.
    let mut slowest = Duration::ZERO;
    while opened.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let answer = program.get("/health/live").expect("health answers");
        assert_eq!(answer.status, 200);
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("ingest slow clients: slowest /health/live {slowest:?} with 2,000 connections held");
    assert!(
        slowest < Duration::from_millis(100),
        "health took {slowest:?}"
    );
    // Every held connection is answered or closed within its deadline and a margin.
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for mut stream in bodies {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        let mut head = [0u8; 12];
        let status = match stream.read(&mut head) {
            Ok(0) => "closed".to_owned(),
            Ok(read) => String::from_utf8_lossy(&head[..read]).into_owned(),
            Err(error) => panic!("a slow body's connection still open after its deadline: {error}"),
        };
        *statuses.entry(status).or_default() += 1;
    }
    println!("ingest slow clients: REST answers {statuses:?}");
    assert_eq!(
        statuses.get("HTTP/1.1 408").copied(),
        Some(64),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.get("HTTP/1.1 503").copied(),
        Some(936),
        "{statuses:?}"
    );
    let mut closed = 0;
    for mut stream in sockets {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("a read timeout");
        match stream.read(&mut [0u8; 1]) {
            Ok(0) => closed += 1,
            Ok(_) => panic!("the socket ingest wrote to its client"),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(error) => panic!("an idle socket still open after its idle timeout: {error}"),
        }
    }
    assert_eq!(closed, 1_000);
    let busy = program.metric_where(
        "streamvisor_ingest_requests_total",
        &[("source", "lines"), ("reason", "busy")],
    );
    assert_eq!(busy, 900.0, "the connections past the cap of 100");
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
