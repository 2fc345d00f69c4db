//! Monitoring against the real tools: `promtool check metrics` on a live `/metrics`, and a real
//! Prometheus (Debian's package, on loopback, in a temp folder) scraping `streamvisor run` on
//! Apache Kafka while actors are killed, then evaluating every PromQL expression of every shipped
//! dashboard panel (variables substituted) and every alert rule (without its threshold): each
//! must parse and return data. `promtool test rules` runs the alert rules' unit tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use streamvisor::http::client::request;

use crate::support::kafka;
use crate::support::program::{
    free_port, output_within, test_dir, Passthrough, Program, COMMAND_TIMEOUT,
};
use crate::support::wait::wait_until_or;

/// Where the shipped monitoring files live.
fn grafana() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana")
}

/// A running pipeline with an HTTP ingest source (so that ingest series exist), on Apache Kafka.
fn start_pipeline(name: &str) -> (PathBuf, Program) {
    let broker = kafka::broker();
    let dir = test_dir(name);
    let topic = format!("{name}-{}", fastrand::u32(..));
    actix_rt::System::new().block_on(kafka::create_topic(&broker.brokers, &topic, 4));
    let ingest =
        format!("[ingest.orders]\nkind = \"http\"\ntopic = \"{topic}-orders\"\npartitions = 1\n");
    let file = Passthrough {
        name,
        group: &format!("{name}-{}", fastrand::u32(..)),
        topic: &topic,
        tables: "[flow]\nbatch_size = 100",
        kafka: "",
        kafka_properties: "",
        source: "partitions = 4\ngenerator = { records = 1000000, rate_per_second = 500 }",
        sink: &ingest,
        sink_target: None,
    }
    .write(&dir);
    let mut program = Program::start(&dir, &file, Some(&broker.brokers), name);
    program.wait_ready(Duration::from_secs(60));
    (dir, program)
}

/// Runs `promtool args` in `dir` with `stdin` as its input; returns (success, what it said).
fn promtool(args: &[&str], stdin: Option<&str>, dir: &Path) -> (bool, String) {
    let output = output_within(
        Command::new("promtool").args(args).current_dir(dir),
        stdin.map(|text| text.as_bytes().to_vec()),
        COMMAND_TIMEOUT,
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[test]
fn promtool_finds_nothing_to_say_about_the_live_metrics() {
    let (dir, program) = start_pipeline("promtool_metrics");
    let undescribed = || -> Vec<&str> {
        let body = program
            .get("/metrics")
            .map(|answer| answer.body)
            .unwrap_or_default();
        streamvisor::actors::metrics::ALL
            .iter()
            .copied()
            .filter(|name| !body.contains(&format!("# HELP {name} ")))
            .collect()
    };
    // Partition series appear once the group assigned the partitions.
    wait_until_or(
        "every metric of metrics::ALL described on /metrics",
        Duration::from_secs(60),
        || undescribed().is_empty(),
        || format!("not described yet: {:?}", undescribed()),
    );
    let metrics = program.get("/metrics").expect("GET /metrics");
    assert_eq!(metrics.status, 200);
    let (ok, said) = promtool(&["check", "metrics"], Some(&metrics.body), &dir);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}

#[test]
fn the_alert_rules_pass_their_promtool_unit_tests() {
    let (ok, said) = promtool(&["check", "rules", "alerts.yml"], None, &grafana());
    assert!(ok, "promtool check rules:\n{said}");
    let (ok, said) = promtool(&["test", "rules", "alerts_test.yml"], None, &grafana());
    assert!(ok, "promtool test rules:\n{said}");
}

/// A Prometheus server on loopback, killed when dropped.
struct Prometheus {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Prometheus {
    /// Starts one in `dir` scraping `target` every second and evaluating the shipped alert
    /// rules every second.
    fn start(dir: &Path, target: &str) -> Self {
        let rules = grafana().join("alerts.yml");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: streamvisor\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .expect("prometheus.yml");
        let address = format!("127.0.0.1:{}", free_port());
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("prometheus runs (Debian's package, installed by scripts/test.sh)");
        let prometheus = Prometheus {
            child,
            address,
            log,
        };
        wait_until_or(
            "Prometheus to answer /-/ready",
            Duration::from_secs(60),
            || {
                request(&prometheus.address, "GET", "/-/ready", None)
                    .is_ok_and(|answer| answer.status == 200)
            },
            || prometheus.log_tail(),
        );
        prometheus
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// `GET path` as JSON (`{"status": ...}`), or why not.
    fn api(&self, path: &str) -> Result<Value, String> {
        let answer = request(&self.address, "GET", path, None).map_err(|e| e.to_string())?;
        serde_json::from_str(&answer.body)
            .map_err(|error| format!("{}: {error}: {}", answer.status, answer.body))
    }

    /// Evaluates `query` now: the number of series it returns, or why it failed.
    fn series(&self, query: &str) -> Result<usize, String> {
        let answer = self.api(&format!("/api/v1/query?query={}", percent_encoded(query)))?;
        if answer["status"] != "success" {
            return Err(format!("{}", answer["error"]));
        }
        // A vector, never a scalar: a scalar "returns data" whatever the series hold.
        answer["data"]["result"]
            .as_array()
            .map(Vec::len)
            .ok_or_else(|| format!("not an instant vector: {}", answer["data"]))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` percent-encoded for a URL's query string.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Every `expr` of every panel of every shipped dashboard, with its variables substituted:
/// (dashboard file, panel title, expression).
fn dashboard_expressions() -> Vec<(String, String, String)> {
    let mut expressions = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(grafana().join("dashboards"))
        .expect("grafana/dashboards")
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("dashboard file"))
                .unwrap_or_else(|error| panic!("{name}: not JSON: {error}"));
        let mut panels: Vec<&Value> = Vec::new();
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            panels.push(panel);
            panels.extend(panel["panels"].as_array().into_iter().flatten());
        }
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let expr = expr
                        .replace("${pipeline}", ".*")
                        .replace("$pipeline", ".*")
                        .replace("$__rate_interval", "30s");
                    let title = panel["title"].as_str().unwrap_or("?").to_owned();
                    expressions.push((name.clone(), title, expr));
                }
            }
        }
    }
    expressions
}

/// An alert's query: its expression without the final `<op> <number>` threshold.
fn without_threshold(expr: &str) -> String {
    let tokens: Vec<&str> = expr.split_whitespace().collect();
    let comparison = ["==", "!=", ">", "<", ">=", "<="];
    match tokens.as_slice() {
        [query @ .., op, number] if comparison.contains(op) && number.parse::<f64>().is_ok() => {
            query.join(" ")
        }
        _ => panic!("alert expression {expr:?} does not end in `<op> <number>`"),
    }
}

#[test]
fn prometheus_evaluates_every_dashboard_and_alert_expression_under_kills() {
    crate::show_warnings();
    let (dir, mut program) = start_pipeline("prometheus_scrape");
    let prometheus = Prometheus::start(&dir, &program.http);

    // Traffic on every path the dashboards chart: ingest (accepted and refused), kills.
    let accepted = program
        .post("/api/ingest/orders", r#"[{"id": 1}, {"id": 2}]"#)
        .expect("POST ingest");
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let refused = program
        .post("/api/ingest/orders", "[{\"id\": ")
        .expect("POST ingest");
    assert_eq!(refused.status, 400, "{}", refused.body);
    let began = Instant::now();
    let victims = [
        "/pipelines/prometheus_scrape/stages/pass/p1",
        "/pipelines/prometheus_scrape/sinks/out",
        "/pipelines/prometheus_scrape/sources/events/p2",
    ];
    for victim in victims {
        std::thread::sleep(Duration::from_secs(4));
        let kill = program
            .post(
                "/api/actors/kill",
                &format!(r#"{{"path": "{victim}", "mode": "panic"}}"#),
            )
            .expect("POST kill");
        assert_eq!(kill.status, 202, "kill {victim}: {}", kill.body);
        program.wait_ready(Duration::from_secs(60));
    }
    // Enough samples for every range in the dashboards (30s) and the alerts' subqueries.
    wait_until_or(
        "Prometheus to hold 40 s of scrapes of streamvisor",
        Duration::from_secs(120),
        || {
            began.elapsed() > Duration::from_secs(40)
                && prometheus
                    .series("count_over_time(up{job=\"streamvisor\"}[1m]) >= 30")
                    .is_ok_and(|series| series == 1)
        },
        || prometheus.log_tail(),
    );
    program.assert_alive();
    assert_eq!(
        prometheus.series("sum(streamvisor_actor_restarts_total) >= 3"),
        Ok(1),
        "the kills show as restarts"
    );

    let mut failures = Vec::new();
    let expressions = dashboard_expressions();
    assert!(
        expressions.len() >= 20,
        "{} panel expressions",
        expressions.len()
    );
    for (dashboard, panel, expr) in &expressions {
        match prometheus.series(expr) {
            Ok(0) => failures.push(format!("{dashboard} / {panel}: no data: {expr}")),
            Ok(_) => {}
            Err(error) => failures.push(format!("{dashboard} / {panel}: {error}: {expr}")),
        }
    }
    let rules = prometheus.api("/api/v1/rules").expect("GET /api/v1/rules");
    let mut alerts = 0;
    for group in rules["data"]["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            if rule["type"] != "alerting" {
                continue;
            }
            alerts += 1;
            let name = rule["name"].as_str().unwrap_or("?");
            assert_ne!(rule["health"], "err", "{name}: {}", rule["lastError"]);
            let query = without_threshold(rule["query"].as_str().unwrap_or_default());
            match prometheus.series(&query) {
                Ok(0) => failures.push(format!("alert {name}: no data: {query}")),
                Ok(_) => {}
                Err(error) => failures.push(format!("alert {name}: {error}: {query}")),
            }
        }
    }
    assert!(alerts >= 5, "{alerts} alert rules loaded");
    println!(
        "prometheus: {} panel expressions and {alerts} alert queries evaluated, {} failed",
        expressions.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
