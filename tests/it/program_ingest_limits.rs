//! Ingest past its limits, through the real program against Apache Kafka: records refused one
//! by one (over `max_record`, or refused by the producer) while the others go on, and slow or
//! many clients held to their deadlines and caps while health keeps answering.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::program_ingest::{pipeline, post};
use crate::support::kafka;
use crate::support::program::{self, Program};
use crate::support::wait;

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
