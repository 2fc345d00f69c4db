//! `streamvisor run`: the pipeline, its HTTP listener, the progress line, and the signals.
//! SIGINT or SIGTERM stops intake, drains, commits and exits 0 within `[runtime]
//! shutdown_timeout`; past it, exit 1 naming what was still running. A second signal while
//! draining exits 1 at once (what was not committed is replayed at the next start).

use std::path::Path;
use std::process::ExitCode;

use streamvisor::config::PipelineConfig;
use streamvisor::http::{AdminAuth, HttpApi, HttpServerBinding};
use streamvisor::runtime::{Overrides, Runtime, RuntimeError};
use streamvisor::supervision::StopReason;

use super::progress::{self, Figures};
use super::{fail, EXIT_CONFIG, EXIT_FAILURE};

/// What `run` was asked.
pub(crate) struct RunArgs<'a> {
    /// The pipeline file.
    pub pipeline: &'a Path,
    /// `--brokers`.
    pub brokers: Option<String>,
    /// `--http`.
    pub http: Option<String>,
    /// `--log-format json`: no progress line, and the exit summary is a JSON log event.
    pub json_logs: bool,
}

/// Runs the pipeline until a signal (or an escalation); returns the exit code.
pub(crate) fn run(args: RunArgs<'_>) -> ExitCode {
    let config = match PipelineConfig::load(args.pipeline) {
        Ok(config) => config,
        Err(error) => return fail(EXIT_CONFIG, error),
    };
    let auth = match AdminAuth::load(config.admin.token_file.as_deref()) {
        Ok(auth) => auth,
        Err(error) => return fail(EXIT_CONFIG, error),
    };
    let address = args
        .http
        .clone()
        .unwrap_or_else(|| config.runtime.http.clone());
    // Bound first: a taken port fails before anything starts.
    let binding = match HttpServerBinding::bind(&address) {
        Ok(binding) => binding,
        Err(error) => return fail(EXIT_CONFIG, error),
    };
    let metrics = match streamvisor::exporter::install() {
        Ok(metrics) => metrics,
        Err(error) => return fail(EXIT_FAILURE, error),
    };
    let overrides = Overrides {
        brokers: args.brokers,
    };
    actix::System::new().block_on(async move {
        let runtime = match Runtime::start(config, overrides).await {
            Ok(runtime) => runtime,
            Err(
                error @ (RuntimeError::KafkaProperties(_)
                | RuntimeError::Plan(_)
                | RuntimeError::Ingest(_)
                | RuntimeError::Sink {
                    transient: false, ..
                }),
            ) => return fail(EXIT_CONFIG, error),
            Err(error) => return fail(EXIT_FAILURE, error),
        };
        let listening = binding
            .local_addr()
            .map(|address| address.to_string())
            .unwrap_or(address);
        let api = HttpApi::new(
            runtime.runtime_handle(),
            Some(metrics.clone()),
            auth.clone(),
        );
        let server = match binding.serve(api) {
            Ok(server) => server,
            Err(error) => {
                let _ = runtime.shutdown().await;
                return fail(EXIT_CONFIG, error);
            }
        };
        let server_handle = server.handle();
        actix_rt::spawn(server);
        tracing::info!(
            http = %listening,
            admin = if auth.has_token() { "token" } else { "loopback only" },
            "HTTP listening: /metrics, /health/live, /health/ready, /api/actors, /api/actors/kill"
        );
        // A terminal gets the progress line; JSON logs stay JSON.
        let progress_line =
            (!args.json_logs).then(|| actix_rt::spawn(progress::show(metrics.clone())));
        let code = supervise(runtime).await;
        if let Some(progress_line) = progress_line {
            progress_line.abort();
        }
        server_handle.stop(true).await;
        let figures = Figures::from_exposition(&metrics.render());
        if args.json_logs {
            tracing::info!(
                records_in = figures.records_in,
                records_out = figures.records_out,
                committed = figures.committed,
                lag = figures.lag,
                restarts = figures.restarts,
                dead_letters = figures.dead_letters,
                "summary"
            );
        } else {
            eprintln!("\rsummary: {}", figures.line());
        }
        code
    })
}

/// Waits for a signal or for the tree to stop by itself, then shuts down.
async fn supervise(runtime: Runtime) -> ExitCode {
    let outcome = tokio::select! {
        reason = runtime.stopped() => Err(reason),
        () = termination() => Ok(()),
    };
    match outcome {
        Ok(()) => {
            tracing::info!("signal: stopping intake, draining and committing");
            tokio::select! {
                result = runtime.shutdown() => match result {
                    Ok(()) => {
                        tracing::info!("stopped: everything acknowledged was committed");
                        ExitCode::SUCCESS
                    }
                    Err(error) => fail(
                        EXIT_FAILURE,
                        format!("{error}; records not committed are replayed at the next start"),
                    ),
                },
                () = termination() => fail(
                    EXIT_FAILURE,
                    "second signal: stopped without draining; records not committed are \
                     replayed at the next start",
                ),
            }
        }
        Err(StopReason::Shutdown) => ExitCode::SUCCESS,
        Err(reason) => fail(EXIT_FAILURE, format!("the runtime stopped: {reason}")),
    }
}

/// SIGINT or SIGTERM.
async fn termination() {
    use actix_rt::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = actix_rt::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = actix_rt::signal::ctrl_c().await;
        }
    }
}
