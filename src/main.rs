//! The `streamvisor` command (DESIGN.md's CLI): `run` a pipeline, `check` a pipeline file,
//! `produce` records, and the admin commands `actors` and `kill`.
//!
//! Exit codes: 0 done, 1 runtime failure (escalation, shutdown deadline passed, a service that
//! did not answer), 2 usage or configuration error.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use streamvisor::config::{PipelineConfig, DEFAULT_HTTP};

use cli::{EXIT_CONFIG, EXIT_FAILURE};

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
        /// The HTTP listener (overrides `[runtime] http`; default 127.0.0.1:9898).
        #[arg(long)]
        http: Option<String>,
    },
    /// Checks a pipeline file and exits (0 when it is valid, 2 when not).
    Check {
        /// The pipeline file.
        pipeline: PathBuf,
    },
    /// Writes records into a topic and waits for every delivery report.
    Produce {
        /// Kafka brokers.
        #[arg(long)]
        brokers: String,
        /// The topic (created when missing).
        #[arg(long)]
        topic: String,
        /// Writes N records `{"key": "k<i % 1000>", "seq": i}`, round-robin over the partitions
        /// (without it: one JSON object per stdin line, keyed by its `key` field).
        #[arg(long)]
        count: Option<u64>,
        /// Partitions of the topic when it is created, and of the round-robin.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..))]
        partitions: i32,
    },
    /// Prints the actor tree of a running `streamvisor run`.
    Actors {
        /// Its HTTP address.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: String,
    },
    /// Kills an actor of a running `streamvisor run` (a failure its supervisor handles).
    Kill {
        /// The actor's path (see `streamvisor actors`).
        path: String,
        /// `stop` (fails as if it returned an error) or `panic` (panics inside a handler).
        #[arg(long, default_value = "stop", value_parser = ["stop", "panic"])]
        mode: String,
        /// Its HTTP address.
        #[arg(long, default_value = DEFAULT_HTTP)]
        http: String,
    },
}

fn main() -> ExitCode {
    cli::allocator::map_large_blocks();
    let cli = Cli::parse();
    init_logs(&cli.log_format);
    streamvisor::supervision::log_panics_to_tracing();
    match cli.command {
        Command::Check { pipeline } => check(&pipeline),
        Command::Run {
            pipeline,
            brokers,
            http,
        } => cli::run::run(cli::run::RunArgs {
            pipeline: &pipeline,
            brokers,
            http,
            json_logs: cli.log_format == "json",
        }),
        Command::Produce {
            brokers,
            topic,
            count,
            partitions,
        } => {
            let input = match count {
                Some(count) => cli::produce::Input::Count { count },
                None => cli::produce::Input::Stdin,
            };
            let produced = actix::System::new()
                .block_on(cli::produce::produce(&brokers, &topic, partitions, input));
            match produced {
                Ok(records) => {
                    eprintln!("produced {records} records to {topic} (every delivery reported)");
                    ExitCode::SUCCESS
                }
                Err(error @ cli::produce::ProduceError::BadLine { .. }) => {
                    eprintln!("error: {error}");
                    ExitCode::from(EXIT_CONFIG)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Actors { http } => cli::admin::actors(&http),
        Command::Kill { path, mode, http } => cli::admin::kill(&http, &path, &mode),
    }
}

/// Checks the file, then what its sinks write to (a database is connected to).
fn check(pipeline: &std::path::Path) -> ExitCode {
    let checked = PipelineConfig::load(pipeline)
        .map_err(|error| error.to_string())
        .and_then(|config| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| format!("cannot start a runtime: {error}"))?;
            for (name, sink) in &config.sinks {
                runtime
                    .block_on(streamvisor::runtime::check_sink(name, sink))
                    .map_err(|error| format!("{}: {error}", pipeline.display()))?;
            }
            Ok(config)
        });
    match checked {
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
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Logs to stderr, as text (coloured only when stderr is a terminal, never into a file or a
/// pipe) or as JSON lines.
fn init_logs(format: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
