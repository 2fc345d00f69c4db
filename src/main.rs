//! The `streamvisor` command: `run` a pipeline file, `check` one. (The admin commands `produce`,
//! `actors` and `kill`, the HTTP listener and the progress line come with the program issue.)
//!
//! Exit codes: 0 done, 1 runtime failure (escalation, shutdown deadline passed), 2 usage or
//! configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use streamvisor::config::PipelineConfig;
use streamvisor::runtime::{Overrides, Runtime};
use streamvisor::supervision::StopReason;

#[derive(Parser)]
#[command(
    name = "streamvisor",
    version,
    about = "An actor-based streaming runtime: nothing lost."
)]
struct Cli {
    /// Log format: `text` for people, `json` for machines (filter with RUST_LOG).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a pipeline until SIGINT or SIGTERM (then drains, commits and exits 0).
    Run {
        /// The pipeline file.
        pipeline: PathBuf,
        /// Kafka brokers (overrides `[kafka] brokers`; none anywhere: the embedded broker).
        #[arg(long)]
        brokers: Option<String>,
    },
    /// Checks a pipeline file and exits (0 when it is valid, 2 when not).
    Check {
        /// The pipeline file.
        pipeline: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    streamvisor::supervision::log_panics_to_tracing();
    match cli.command {
        Command::Check { pipeline } => match PipelineConfig::load(&pipeline) {
            Ok(config) => {
                eprintln!(
                    "{}: pipeline {:?} is valid",
                    pipeline.display(),
                    config.name
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(2)
            }
        },
        Command::Run { pipeline, brokers } => {
            let config = match PipelineConfig::load(&pipeline) {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("error: {error}");
                    return ExitCode::from(2);
                }
            };
            actix::System::new().block_on(run(config, Overrides { brokers }))
        }
    }
}

async fn run(config: PipelineConfig, overrides: Overrides) -> ExitCode {
    let runtime = match Runtime::start(config, overrides).await {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(1);
        }
    };
    let outcome = tokio::select! {
        reason = runtime.stopped() => Err(reason),
        () = termination() => Ok(()),
    };
    match outcome {
        Ok(()) => {
            tracing::info!("stopping: draining and committing");
            match runtime.shutdown().await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(1)
                }
            }
        }
        Err(StopReason::Shutdown) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("error: the runtime stopped: {reason}");
            ExitCode::from(1)
        }
    }
}

/// SIGINT or SIGTERM.
async fn termination() {
    use actix_rt::signal::unix::{signal, SignalKind};
    let terminate = signal(SignalKind::terminate());
    match terminate {
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

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
