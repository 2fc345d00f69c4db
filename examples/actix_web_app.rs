//! A web app of its own with streamvisor inside: one actix System, one `App` serving the app's
//! routes (`GET /` and `GET /status`, which reads the pipeline through a `RuntimeHandle` in
//! `web::Data`) next to streamvisor's (`/metrics`, `/health/live`, `/health/ready`,
//! `/api/actors`, `/api/actors/kill`, `/api/ingest/{source}`).
//!
//!     cargo run --example actix_web_app -- examples/quickstart.toml --http 127.0.0.1:8080
//!
//! Ctrl-C (or SIGTERM) stops the web server, then drains and stops the pipeline; an escalation
//! inside the pipeline stops the pipeline only (the app keeps serving, `/health/ready` says
//! 503, until a signal).

use std::process::ExitCode;

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::json;
use streamvisor::config::PipelineConfig;
use streamvisor::embed::{EmbedOptions, Embedded};
use streamvisor::runtime::RuntimeHandle;

/// The app's own front page.
async fn hello() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "app": "actix_web_app",
        "message": "hello from the host app; streamvisor runs inside",
    }))
}

/// The app's own view of the pipeline, through the handle in `web::Data`.
async fn status(pipeline: web::Data<RuntimeHandle>) -> HttpResponse {
    let readiness = pipeline.readiness().await;
    HttpResponse::Ok().json(json!({
        "ready": readiness.is_ok(),
        "unready_reasons": readiness.err().unwrap_or_default(),
        "actors": pipeline.actors().len(),
        "partitions": pipeline.partitions().await.len(),
    }))
}

/// `PIPELINE [--http ADDR]`, with defaults.
fn arguments() -> Result<(String, String), String> {
    let mut pipeline = "examples/quickstart.toml".to_owned();
    let mut http = "127.0.0.1:8080".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--http" => http = args.next().ok_or("--http needs an address")?,
            other if other.starts_with("--") => return Err(format!("unknown option {other}")),
            other => pipeline = other.to_owned(),
        }
    }
    Ok((pipeline, http))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let (pipeline, http) = match arguments() {
        Ok(arguments) => arguments,
        Err(error) => {
            eprintln!("usage: actix_web_app [PIPELINE.toml] [--http ADDR]: {error}");
            return ExitCode::from(2);
        }
    };
    let config = match PipelineConfig::load(std::path::Path::new(&pipeline)) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    actix_web::rt::System::new().block_on(async move {
        let streamvisor = match Embedded::start(config, EmbedOptions::default()).await {
            Ok(streamvisor) => streamvisor,
            Err(error) => {
                eprintln!("error: streamvisor did not start: {error}");
                return ExitCode::FAILURE;
            }
        };
        let (api, handle) = (streamvisor.api(), streamvisor.handle());
        let server = HttpServer::new(move || {
            // streamvisor's routes first: the app's own, added after, still answer.
            App::new()
                .configure(|config| api.configure(config))
                .app_data(web::Data::new(handle.clone()))
                .route("/", web::get().to(hello))
                .route("/status", web::get().to(status))
        })
        .workers(1)
        .bind(&http);
        let server = match server {
            Ok(server) => server.run(),
            Err(error) => {
                eprintln!("error: cannot listen on {http}: {error}");
                let _ = streamvisor.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(%http, "serving the app's routes and streamvisor's");
        // The server stops on SIGINT or SIGTERM (actix-web's signal handling); the pipeline
        // stopping by itself leaves the app serving until then.
        let mut serving = actix_web::rt::spawn(server);
        tokio::select! {
            _ = &mut serving => {}
            reason = streamvisor.stopped() => {
                tracing::error!(%reason, "the pipeline stopped; the app goes on serving until a signal");
                let _ = serving.await;
            }
        }
        match streamvisor.shutdown().await {
            Ok(()) => {
                tracing::info!("stopped: the pipeline drained and committed");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}
