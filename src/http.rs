//! The HTTP interface (actix-web) of DESIGN.md: `GET /metrics`, `GET /health/live`,
//! `GET /health/ready`, the admin routes `GET /api/actors` and `POST /api/actors/kill`
//! behind the token-or-loopback rule, and `POST /api/ingest/{source}`. [`HttpApi::configure`] mounts the routes into any actix-web
//! `App`; [`HttpServerBinding`] runs them on a listener of their own (what the CLI does).

mod auth;
mod body;
pub mod client;
mod ingest;
mod routes;
#[cfg(feature = "fuzzing")]
pub(crate) use routes::KillRequest;

pub use auth::{AdminAuth, AuthError, Connection, Refusal, TOKEN_ENV};

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use socket2::{Domain, Socket, Type};

use actix_web::{web, App, HttpServer};
use metrics_exporter_prometheus::PrometheusHandle;
use thiserror::Error;

use crate::runtime::RuntimeHandle;

/// The largest request body an admin route reads (a kill request is a few dozen bytes).
pub const ADMIN_BODY_LIMIT: usize = 4 * 1024;

/// The HTTP interface could not start.
#[derive(Debug, Error)]
pub enum HttpError {
    /// The address is malformed or taken.
    #[error("cannot listen on {address}: {source} (is another streamvisor running there? choose another address with --http or [runtime] http)")]
    Bind {
        /// The address asked for.
        address: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What the routes serve: the runtime, its metrics (when this process installed the exporter)
/// and the admin rule.
#[derive(Clone)]
pub struct HttpApi {
    runtime: RuntimeHandle,
    metrics: Option<PrometheusHandle>,
    auth: AdminAuth,
}

impl HttpApi {
    /// The routes of `runtime`; `metrics` renders `/metrics` (none: `/metrics` answers 404).
    pub fn new(runtime: RuntimeHandle, metrics: Option<PrometheusHandle>, auth: AdminAuth) -> Self {
        HttpApi {
            runtime,
            metrics,
            auth,
        }
    }

    /// Mounts the routes (with their state and body limits) into an `App` or a scope.
    pub fn configure(&self, config: &mut web::ServiceConfig) {
        routes::configure(web::Data::new(self.clone()), config);
    }
}

/// Connections waiting to be accepted, at most, on the HTTP listener.
pub const BACKLOG: i32 = 1024;

/// A listener bound before the runtime starts (so a taken port fails early and nothing runs),
/// served once the runtime is up.
pub struct HttpServerBinding {
    listener: TcpListener,
}

impl HttpServerBinding {
    /// Binds `address` (`host:port`), with a backlog of [`BACKLOG`] connections waiting to be
    /// accepted (the system's default of 128 makes a burst of clients wait a second for a
    /// SYN retransmit).
    pub fn bind(address: &str) -> Result<Self, HttpError> {
        let failed = |source: std::io::Error| HttpError::Bind {
            address: address.to_owned(),
            source,
        };
        let resolved = address
            .to_socket_addrs()
            .map_err(failed)?
            .next()
            .ok_or_else(|| {
                failed(std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    "the address resolves to nothing",
                ))
            })?;
        let socket =
            Socket::new(Domain::for_address(resolved), Type::STREAM, None).map_err(failed)?;
        socket.set_reuse_address(true).map_err(failed)?;
        socket.bind(&resolved.into()).map_err(failed)?;
        socket.listen(BACKLOG).map_err(failed)?;
        Ok(HttpServerBinding {
            listener: socket.into(),
        })
    }

    /// The address bound (the real port when 0 was asked for).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves `api` on one worker thread; the server runs until its handle stops it.
    pub fn serve(self, api: HttpApi) -> Result<actix_web::dev::Server, HttpError> {
        let address = self
            .local_addr()
            .map(|address| address.to_string())
            .unwrap_or_default();
        let server = HttpServer::new(move || {
            let api = api.clone();
            App::new().configure(move |config| api.configure(config))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(2)
        .listen(self.listener)
        .map_err(|source| HttpError::Bind { address, source })?
        .run();
        Ok(server)
    }
}
