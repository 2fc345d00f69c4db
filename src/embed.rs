//! Embedding: streamvisor inside a host's own actix System and actix-web `App`.
//!
//! [`Embedded::start`] runs a pipeline on the current actix System (the host's), and
//! [`Embedded::configure`] mounts streamvisor's routes (`/metrics`, `/health/*`, the admin
//! routes, ingest) next to the host's own; [`Embedded::handle`] is a [`RuntimeHandle`] to put in
//! `web::Data`. Unlike `streamvisor run`:
//! - the runtime never exits the host process: an escalation past the root supervisor stops the
//!   pipeline (`on_escalation` is forced to `stay`) and [`Embedded::stopped`] says why;
//! - it uses the host's `metrics` recorder when one is installed (then `/metrics` is the host's
//!   business, unless the host hands its Prometheus handle over; build that recorder from
//!   [`exporter::builder`](crate::exporter::builder) so that histograms keep their buckets),
//!   else it installs the Prometheus exporter and serves it.
//!
//! ```no_run
//! # async fn host(config: streamvisor::config::PipelineConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use actix_web::{web, App, HttpServer};
//! use streamvisor::embed::{EmbedOptions, Embedded};
//!
//! let streamvisor = Embedded::start(config, EmbedOptions::default()).await?;
//! let (api, handle) = (streamvisor.api(), streamvisor.handle());
//! HttpServer::new(move || {
//!     App::new()
//!         .app_data(web::Data::new(handle.clone()))
//!         .route("/hello", web::get().to(|| async { "hello" }))
//!         .configure(|config| api.configure(config))
//! })
//! .bind("127.0.0.1:8080")?
//! .run()
//! .await?;
//! streamvisor.shutdown().await?;
//! # Ok(()) }
//! ```

use metrics_exporter_prometheus::PrometheusHandle;
use streamvisor_actors::Operation;
use streamvisor_actors::SinkTarget;
use streamvisor_supervision::{OnEscalation, StopReason};
use thiserror::Error;

use crate::config::PipelineConfig;
use crate::exporter::{self, ExporterError};
use crate::graph::Graph;
use crate::http::{AdminAuth, AuthError, HttpApi};
use crate::runtime::{Overrides, Runtime, RuntimeError, RuntimeHandle};

/// Why an embedded runtime could not start.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The admin token could not be loaded.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The Prometheus exporter could not be built.
    #[error(transparent)]
    Exporter(#[from] ExporterError),
    /// The pipeline could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// How to embed.
#[derive(Clone, Default)]
pub struct EmbedOptions {
    /// Brokers overriding the pipeline's `[kafka] brokers`.
    pub brokers: Option<String>,
    /// The host's Prometheus exporter, when it installed one: `/metrics` renders it. None:
    /// streamvisor installs its own unless the host installed another recorder.
    pub prometheus: Option<PrometheusHandle>,
    /// The admin rule; none: the pipeline's (`STREAMVISOR_ADMIN_TOKEN`, `[admin] token_file`,
    /// else loopback only).
    pub auth: Option<AdminAuth>,
}

/// A pipeline running inside a host's actix System.
pub struct Embedded {
    runtime: Runtime,
    api: HttpApi,
}

impl Embedded {
    /// Starts the TOML pipeline `config` on the current actix System.
    pub async fn start(config: PipelineConfig, options: EmbedOptions) -> Result<Self, EmbedError> {
        let (config, overrides, prepared) = prepare(config, options)?;
        let runtime = Runtime::start(config, overrides).await?;
        Ok(prepared.around(runtime))
    }

    /// Starts a pipeline built in Rust (see [`Runtime::start_graph`]) on the current actix
    /// System.
    pub async fn start_graph(
        config: PipelineConfig,
        graph: Graph<Operation, SinkTarget>,
        options: EmbedOptions,
    ) -> Result<Self, EmbedError> {
        let (config, overrides, prepared) = prepare(config, options)?;
        let runtime = Runtime::start_graph(config, graph, overrides).await?;
        Ok(prepared.around(runtime))
    }

    /// Mounts streamvisor's routes into the host's `App` (or a scope of it).
    pub fn configure(&self, config: &mut actix_web::web::ServiceConfig) {
        self.api.configure(config);
    }

    /// The routes with their state, to move into an `HttpServer` factory.
    pub fn api(&self) -> HttpApi {
        self.api.clone()
    }

    /// A cloneable view of the pipeline (actors, kill, readiness) for `web::Data`.
    pub fn handle(&self) -> RuntimeHandle {
        self.runtime.runtime_handle()
    }

    /// The runtime itself (brokers, partitions, ...).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Waits until the pipeline stops by itself (an escalation past the root supervisor).
    pub async fn stopped(&self) -> StopReason {
        self.runtime.stopped().await
    }

    /// Stops intake, drains, commits and stops the pipeline; the host goes on.
    pub async fn shutdown(self) -> Result<(), RuntimeError> {
        self.runtime.shutdown().await
    }
}

/// What [`Embedded`] needs besides the runtime.
struct Prepared {
    prometheus: Option<PrometheusHandle>,
    auth: AdminAuth,
}

impl Prepared {
    fn around(self, runtime: Runtime) -> Embedded {
        let api = HttpApi::new(runtime.runtime_handle(), self.prometheus, self.auth);
        Embedded { runtime, api }
    }
}

/// The embedded settings: `stay` on escalation, the admin rule, the metrics recorder.
fn prepare(
    mut config: PipelineConfig,
    options: EmbedOptions,
) -> Result<(PipelineConfig, Overrides, Prepared), EmbedError> {
    if config.runtime.on_escalation == OnEscalation::Exit {
        tracing::info!(
            pipeline = %config.name,
            "embedded: an escalation stops the pipeline, never the host process (on_escalation = \"stay\")"
        );
        config.runtime.on_escalation = OnEscalation::Stay;
    }
    let auth = match options.auth {
        Some(auth) => auth,
        None => AdminAuth::load(config.admin.token_file.as_deref())?,
    };
    let prometheus = match options.prometheus {
        Some(handle) => Some(handle),
        None => exporter::install_unless_present()?,
    };
    let overrides = Overrides {
        brokers: options.brokers,
    };
    Ok((config, overrides, Prepared { prometheus, auth }))
}
