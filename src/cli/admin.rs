//! `streamvisor actors` (the tree, indented by path) and `streamvisor kill` through the admin
//! routes of a running `streamvisor run`.

use std::process::ExitCode;

use serde::Deserialize;

use super::{fail, EXIT_CONFIG, EXIT_FAILURE};
use streamvisor::http::client::{request, Response};

/// One entry of `GET /api/actors`.
#[derive(Deserialize)]
struct Actor {
    path: String,
    kind: String,
    state: String,
    restarts: u32,
    incarnation: u64,
    mailbox_len: usize,
    mailbox_capacity: usize,
}

/// Prints the actor tree of the runtime at `address`.
pub(crate) fn actors(address: &str) -> ExitCode {
    let response = match request(address, "GET", "/api/actors", None) {
        Ok(response) => response,
        Err(error) => return fail(EXIT_FAILURE, error),
    };
    if response.status != 200 {
        return refused(&response);
    }
    let actors: Vec<Actor> = match serde_json::from_str(&response.body) {
        Ok(actors) => actors,
        Err(error) => return fail(EXIT_FAILURE, format!("unexpected answer: {error}")),
    };
    let mut out = String::new();
    for actor in &actors {
        let depth = if actor.path == "/" {
            0
        } else {
            actor.path.matches('/').count()
        };
        let name = if actor.path == "/" {
            "/"
        } else {
            actor.path.rsplit('/').next().unwrap_or_default()
        };
        let label = format!("{}{name}", "  ".repeat(depth));
        out.push_str(&format!(
            "{label:<32} {:<11} {:<10} restarts={:<3} incarnation={:<3} mailbox={}/{}  {}\n",
            actor.kind,
            actor.state,
            actor.restarts,
            actor.incarnation,
            actor.mailbox_len,
            actor.mailbox_capacity,
            actor.path,
        ));
    }
    print(&out);
    ExitCode::SUCCESS
}

/// Kills the actor at `path` in the runtime at `address`.
pub(crate) fn kill(address: &str, path: &str, mode: &str) -> ExitCode {
    let body = serde_json::json!({ "path": path, "mode": mode }).to_string();
    match request(address, "POST", "/api/actors/kill", Some(&body)) {
        Ok(response) if response.status == 202 => {
            print(&format!("killed {path} (mode {mode})\n"));
            ExitCode::SUCCESS
        }
        Ok(response) => refused(&response),
        Err(error) => fail(EXIT_FAILURE, error),
    }
}

/// A non-success answer: its error message; exit 2 for what the user asked wrong (unknown path,
/// bad mode, no or wrong token), 1 otherwise.
fn refused(response: &Response) -> ExitCode {
    let message = serde_json::from_str::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|body| body["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| response.body.clone());
    let code = match response.status {
        400 | 401 | 403 | 404 => EXIT_CONFIG,
        _ => EXIT_FAILURE,
    };
    fail(code, format!("{} (HTTP {})", message, response.status))
}

#[allow(clippy::print_stdout)]
fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
