//! The HTTP routes in process (actix-web's test service) over a runtime on the embedded broker:
//! the admin rule (401 without or with a wrong token, 403 for a non-loopback peer without a
//! configured token), the actors listing, kills (202, 404, 400, 413, 415), health and readiness
//! (503 with reasons while the sink retries).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{test, App};
use serde_json::Value;
use streamvisor::config::PipelineConfig;
use streamvisor::http::{AdminAuth, HttpApi};
use streamvisor::runtime::{Overrides, Runtime};

use crate::support::wait::wait_for;

const WAIT: Duration = Duration::from_secs(60);
const LOOPBACK: &str = "127.0.0.1:40000";
const REMOTE: &str = "10.1.2.3:40000";

fn out_file() -> std::path::PathBuf {
    std::env::temp_dir()
        .join(format!("streamvisor-http-{}", std::process::id()))
        .join("out.jsonl")
}

async fn start_runtime() -> Runtime {
    let _ = std::fs::remove_file(out_file());
    let text = format!(
        r#"
name = "web"
[flow]
batch_size = 100
[sources.events]
kind = "kafka"
topic = "events"
partitions = 2
generator = {{ records = 100000, rate_per_second = 1000 }}
[stages.pass]
inputs = ["events"]
op = "passthrough"
[sinks.out]
inputs = ["pass"]
kind = "file"
path = "{}"
"#,
        out_file().display()
    );
    let config = PipelineConfig::parse(&text, "web.toml").expect("valid pipeline");
    let runtime = Runtime::start(config, Overrides::default())
        .await
        .expect("runtime starts");
    wait_for("the runtime to be ready", WAIT, async || {
        runtime
            .readiness()
            .await
            .map_err(|reasons| format!("{reasons:?}"))
    })
    .await;
    runtime
}

fn peer(address: &str) -> std::net::SocketAddr {
    address.parse().expect("socket address")
}

#[actix_rt::test]
async fn admin_routes_follow_the_token_or_loopback_rule_and_kills_answer_as_designed() {
    crate::quiet_intended_panics();
    let runtime = start_runtime().await;

    // No token configured: loopback only.
    let open = HttpApi::new(runtime.runtime_handle(), None, AdminAuth::loopback_only());
    let app = test::init_service(App::new().configure(|config| open.configure(config))).await;
    let remote = test::TestRequest::get()
        .uri("/api/actors")
        .peer_addr(peer(REMOTE))
        .send_request(&app)
        .await;
    assert_eq!(remote.status(), StatusCode::FORBIDDEN);
    let body: Value = test::read_body_json(remote).await;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("loopback")),
        "{body}"
    );

    let local = test::TestRequest::get()
        .uri("/api/actors")
        .peer_addr(peer(LOOPBACK))
        .send_request(&app)
        .await;
    assert_eq!(local.status(), StatusCode::OK);
    let actors: Vec<Value> = test::read_body_json(local).await;
    let sink = actors
        .iter()
        .find(|actor| actor["path"] == "/pipelines/web/sinks/out")
        .expect("the sink is listed");
    assert_eq!(sink["kind"], "sink");
    assert_eq!(sink["state"], "running");
    assert_eq!(sink["restarts"], 0);
    assert_eq!(sink["incarnation"], 1);
    assert!(sink["mailbox_len"].is_u64() && sink["mailbox_capacity"].as_u64() > Some(0));
    assert!(actors
        .iter()
        .any(|actor| actor["path"] == "/" && actor["kind"] == "supervisor"));
    // Forwarded headers never make a remote client local.
    let forwarded = test::TestRequest::get()
        .uri("/api/actors")
        .peer_addr(peer(REMOTE))
        .insert_header(("X-Forwarded-For", "127.0.0.1"))
        .send_request(&app)
        .await;
    assert_eq!(forwarded.status(), StatusCode::FORBIDDEN);
    // Nor is a loopback peer local when a proxy on this host forwarded the request.
    for (name, value) in [
        ("X-Forwarded-For", "203.0.113.9"),
        ("Forwarded", "for=203.0.113.9"),
        ("Via", "1.1 sidecar"),
    ] {
        let proxied = test::TestRequest::get()
            .uri("/api/actors")
            .peer_addr(peer(LOOPBACK))
            .insert_header((name, value))
            .send_request(&app)
            .await;
        assert_eq!(proxied.status(), StatusCode::FORBIDDEN, "{name}");
        let body: Value = test::read_body_json(proxied).await;
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("proxy")),
            "{body}"
        );
    }
    // Open routes answer anyone.
    for uri in ["/health/live", "/health/ready"] {
        let answer = test::TestRequest::get()
            .uri(uri)
            .peer_addr(peer(REMOTE))
            .send_request(&app)
            .await;
        assert_eq!(answer.status(), StatusCode::OK, "{uri}");
    }
    let no_exporter = test::TestRequest::get()
        .uri("/metrics")
        .send_request(&app)
        .await;
    assert_eq!(no_exporter.status(), StatusCode::NOT_FOUND);

    // Kills: unknown path, bad mode, bad JSON, a body over the limit, then a real one.
    let kill = |body: String| {
        test::TestRequest::post()
            .uri("/api/actors/kill")
            .peer_addr(peer(LOOPBACK))
            .insert_header(("Content-Type", "application/json"))
            .set_payload(body)
    };
    let unknown = kill(r#"{"path": "/pipelines/web/nope"}"#.to_owned())
        .send_request(&app)
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let body: Value = test::read_body_json(unknown).await;
    assert_eq!(body["error"], "no actor at path /pipelines/web/nope");
    // Bad requests change nothing: every actor keeps its incarnation.
    let incarnations = |runtime: &Runtime| -> Vec<(String, u64)> {
        runtime
            .actors()
            .into_iter()
            .map(|actor| (actor.path.as_str().to_owned(), actor.incarnation))
            .collect()
    };
    let before = incarnations(&runtime);
    let bad_mode = kill(r#"{"path": "/pipelines/web/sinks/out", "mode": "gently"}"#.to_owned())
        .send_request(&app)
        .await;
    assert_eq!(bad_mode.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(bad_mode).await;
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("gently")),
        "{body}"
    );
    let bad_json = kill("{path".to_owned()).send_request(&app).await;
    assert_eq!(bad_json.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(bad_json).await;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("bad request body")),
        "{body}"
    );
    let malformed = kill(r#"{"path": "pipelines/web//out"}"#.to_owned())
        .send_request(&app)
        .await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = test::read_body_json(malformed).await;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("invalid actor path \"pipelines/web//out\"")),
        "{body}"
    );
    let form = test::TestRequest::post()
        .uri("/api/actors/kill")
        .peer_addr(peer(LOOPBACK))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload("path=/pipelines/web/sinks/out")
        .send_request(&app)
        .await;
    assert_eq!(form.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = test::read_body_json(form).await;
    assert_eq!(
        body["error"],
        "this route reads `Content-Type: application/json`, not `application/x-www-form-urlencoded`"
    );
    let untyped = test::TestRequest::post()
        .uri("/api/actors/kill")
        .peer_addr(peer(LOOPBACK))
        .set_payload(r#"{"path": "/pipelines/web/sinks/out"}"#)
        .send_request(&app)
        .await;
    assert_eq!(untyped.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = test::read_body_json(untyped).await;
    assert_eq!(
        body["error"],
        "this route reads `Content-Type: application/json`, not none"
    );
    let huge = kill(format!(r#"{{"path": "/{}"}}"#, "x".repeat(10_000)))
        .send_request(&app)
        .await;
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = test::read_body_json(huge).await;
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("4096")),
        "{body}"
    );
    assert_eq!(
        incarnations(&runtime),
        before,
        "a bad request changed the tree"
    );
    let killed = kill(r#"{"path": "/pipelines/web/sinks/out", "mode": "panic"}"#.to_owned())
        .send_request(&app)
        .await;
    assert_eq!(killed.status(), StatusCode::ACCEPTED);
    let body: Value = test::read_body_json(killed).await;
    assert_eq!(
        body,
        serde_json::json!({"path": "/pipelines/web/sinks/out", "mode": "panic"})
    );
    wait_for("the killed sink's second incarnation", WAIT, async || {
        let sink = runtime
            .actors()
            .into_iter()
            .find(|actor| actor.path.as_str() == "/pipelines/web/sinks/out");
        match sink {
            Some(sink) if sink.incarnation == 2 && sink.restarts == 1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A configured token: needed by every admin request, from anywhere.
    let guarded = HttpApi::new(
        runtime.runtime_handle(),
        None,
        AdminAuth::with_token("t0ken"),
    );
    let app = test::init_service(App::new().configure(|config| guarded.configure(config))).await;
    for (header, peer_address, status) in [
        (None, LOOPBACK, StatusCode::UNAUTHORIZED),
        (Some("Bearer wrong"), LOOPBACK, StatusCode::UNAUTHORIZED),
        (Some("t0ken"), LOOPBACK, StatusCode::UNAUTHORIZED),
        (Some("Bearer t0ken"), REMOTE, StatusCode::OK),
    ] {
        let mut request = test::TestRequest::get()
            .uri("/api/actors")
            .peer_addr(peer(peer_address));
        if let Some(header) = header {
            request = request.insert_header(("Authorization", header));
        }
        let answer = request.send_request(&app).await;
        assert_eq!(answer.status(), status, "{header:?} from {peer_address}");
        if status == StatusCode::UNAUTHORIZED {
            let body: Value = test::read_body_json(answer).await;
            let expected = if header == Some("Bearer wrong") {
                "the bearer token is not the admin token"
            } else {
                "this route needs `Authorization: Bearer <token>`"
            };
            assert_eq!(body["error"], expected, "{header:?}");
        }
    }
    let unauthorised_kill = test::TestRequest::post()
        .uri("/api/actors/kill")
        .peer_addr(peer(LOOPBACK))
        .set_json(serde_json::json!({"path": "/pipelines/web/sinks/out"}))
        .send_request(&app)
        .await;
    assert_eq!(unauthorised_kill.status(), StatusCode::UNAUTHORIZED);
    let after_kill = incarnations(&runtime);
    assert!(
        after_kill
            .iter()
            .any(|(path, incarnation)| path == "/pipelines/web/sinks/out" && *incarnation == 2),
        "the sink ran again after the one real kill, and only then"
    );

    // A sink retrying failed writes makes the runtime unready (503 with the reason), then ready.
    wait_for("a record in the sink's file", WAIT, async || {
        match crate::support::program::SinkFile::count_lines(&out_file()) {
            0 => Err("no line".to_owned()),
            _ => Ok(()),
        }
    })
    .await;
    runtime
        .sink_faults()
        .fail_writes_for(Duration::from_secs(2));
    let reasons: Value = wait_for("unready while the sink fails", WAIT, async || {
        let answer = test::TestRequest::get()
            .uri("/health/ready")
            .send_request(&app)
            .await;
        match answer.status() {
            StatusCode::SERVICE_UNAVAILABLE => Ok(test::read_body_json(answer).await),
            status => Err(status.to_string()),
        }
    })
    .await;
    assert_eq!(reasons["status"], "unready");
    assert!(
        reasons["reasons"]
            .to_string()
            .contains("/pipelines/web/sinks/out"),
        "{reasons}"
    );
    wait_for("ready again after the sink recovered", WAIT, async || {
        let answer = test::TestRequest::get()
            .uri("/health/ready")
            .send_request(&app)
            .await;
        match answer.status() {
            StatusCode::OK => Ok(()),
            status => Err(status.to_string()),
        }
    })
    .await;
    runtime.shutdown().await.expect("clean shutdown");
}
