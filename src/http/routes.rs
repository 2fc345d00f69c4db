//! The route handlers. Open: `/metrics`, `/health/live`, `/health/ready`. Admin (the
//! token-or-loopback rule): `GET /api/actors`, `POST /api/actors/kill`. Ingest:
//! `POST /api/ingest/{source}` (see [`super::ingest`]).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use streamvisor_supervision::{KillMode, SupervisionError};

use super::body::{read_body, refused_body};
use super::{ingest, HttpApi, ADMIN_BODY_LIMIT};

/// Mounts every route, each a resource of its own with `api` as its state. (Nothing app-wide:
/// a host `App` keeps its own extractor settings, and its routes, before or after these, still
/// answer: no catch-all scope.)
pub(super) fn configure(api: web::Data<HttpApi>, config: &mut web::ServiceConfig) {
    let resource = |path: &str| web::resource(path.to_owned()).app_data(api.clone());
    config
        .service(resource("/metrics").route(web::get().to(metrics)))
        .service(resource("/health/live").route(web::get().to(live)))
        .service(resource("/health/ready").route(web::get().to(ready)))
        .service(resource("/api/actors").route(web::get().to(actors)))
        .service(resource("/api/actors/kill").route(web::post().to(kill)))
        .service(resource("/api/ingest/{source}").route(web::post().to(ingest::ingest)));
}

async fn metrics(api: web::Data<HttpApi>) -> HttpResponse {
    match &api.metrics {
        Some(handle) => {
            handle.run_upkeep();
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4; charset=utf-8")
                .body(handle.render())
        }
        None => HttpResponse::NotFound()
            .json(json!({ "error": "this process has no Prometheus exporter installed" })),
    }
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "live" }))
}

async fn ready(api: web::Data<HttpApi>) -> HttpResponse {
    match api.runtime.readiness().await {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ready" })),
        Err(reasons) => HttpResponse::ServiceUnavailable()
            .json(json!({ "status": "unready", "reasons": reasons })),
    }
}

/// The refusal when `request` may not use admin routes; none when it may.
fn refusal(api: &HttpApi, request: &HttpRequest) -> Option<HttpResponse> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let connection = super::Connection {
        peer: request.peer_addr(),
        local: Some(request.app_config().local_addr()),
        forwarded: request
            .headers()
            .keys()
            .any(|name| super::Connection::is_forwarding_header(name.as_str())),
    };
    api.auth
        .admit(authorization, connection)
        .err()
        .map(|refusal| {
            let body = json!({ "error": refusal.message() });
            match refusal {
                super::Refusal::NotLoopback | super::Refusal::Forwarded => {
                    HttpResponse::Forbidden().json(body)
                }
                super::Refusal::MissingToken | super::Refusal::WrongToken => {
                    HttpResponse::Unauthorized()
                        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
                        .json(body)
                }
            }
        })
}

/// 415 unless `request` says its body is JSON (`Content-Type: application/json`).
fn not_json(request: &HttpRequest) -> Option<HttpResponse> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    (!media_type.eq_ignore_ascii_case("application/json")).then(|| {
        let shown = if content_type.is_empty() {
            "none".to_owned()
        } else {
            format!("`{content_type}`")
        };
        HttpResponse::UnsupportedMediaType().json(json!({
            "error": format!("this route reads `Content-Type: application/json`, not {shown}")
        }))
    })
}

/// One actor in `GET /api/actors`.
#[derive(Serialize)]
struct ActorView<'a> {
    path: &'a str,
    kind: &'a str,
    state: &'a str,
    restarts: u32,
    incarnation: u64,
    mailbox_len: usize,
    mailbox_capacity: usize,
}

async fn actors(api: web::Data<HttpApi>, request: HttpRequest) -> HttpResponse {
    if let Some(refused) = refusal(&api, &request) {
        return refused;
    }
    let actors = api.runtime.actors();
    let view: Vec<ActorView<'_>> = actors
        .iter()
        .map(|actor| ActorView {
            path: actor.path.as_str(),
            kind: actor.kind,
            state: actor.state.as_str(),
            restarts: actor.restarts,
            incarnation: actor.incarnation,
            mailbox_len: actor.mailbox_len,
            mailbox_capacity: actor.mailbox_capacity,
        })
        .collect();
    HttpResponse::Ok().json(view)
}

/// The body of `POST /api/actors/kill`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KillRequest {
    path: String,
    #[serde(default)]
    mode: Option<String>,
}

impl KillRequest {
    /// The actor's path and the kill mode (`stop` when none is given) of a kill request's
    /// body; the error is the message of the 400 answer.
    pub(crate) fn parse(body: &[u8]) -> Result<(String, KillMode), String> {
        let KillRequest { path, mode } =
            serde_json::from_slice(body).map_err(|error| format!("bad request body: {error}"))?;
        let mode = mode
            .as_deref()
            .unwrap_or("stop")
            .parse::<KillMode>()
            .map_err(|error| error.to_string())?;
        Ok((path, mode))
    }
}

async fn kill(
    api: web::Data<HttpApi>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    // After the admin check: a client that may not use the route learns nothing from how its
    // body is parsed.
    if let Some(refused) = refusal(&api, &request) {
        return refused;
    }
    if let Some(refused) = not_json(&request) {
        return refused;
    }
    let body = match read_body(
        &request,
        payload,
        ADMIN_BODY_LIMIT,
        crate::config::DEFAULT_BODY_TIMEOUT,
        &mut 0,
    )
    .await
    {
        Ok(body) => body,
        Err(refused) => return refused_body(&refused),
    };
    let (path, mode) = match KillRequest::parse(&body) {
        Ok(request) => request,
        Err(error) => return HttpResponse::BadRequest().json(json!({ "error": error })),
    };
    let caller = request
        .peer_addr()
        .map(|peer| peer.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    match api.runtime.kill(&path, mode) {
        Ok(()) => {
            tracing::warn!(%caller, %path, mode = mode.as_str(), "actor killed on request");
            HttpResponse::Accepted().json(json!({ "path": path, "mode": mode.as_str() }))
        }
        Err(error) => {
            tracing::info!(%caller, %path, mode = mode.as_str(), %error, "kill refused");
            let body = json!({ "error": error.to_string() });
            match error {
                SupervisionError::UnknownPath(_) => HttpResponse::NotFound().json(body),
                SupervisionError::Restarting(_)
                | SupervisionError::Stopped(_)
                | SupervisionError::Busy(_) => HttpResponse::Conflict().json(body),
                _ => HttpResponse::BadRequest().json(body),
            }
        }
    }
}
