//! The runtime: loads a pipeline, picks its broker (the configured one, or the embedded broker),
//! starts the load generator if asked, and runs the pipeline's actor tree. A library API that
//! returns a [`Runtime`] to drive (actors, kill, shutdown) — what the CLI and the tests use.

mod coalesce;
mod embedded;
mod generator;
mod handle;
mod memory;
mod samplers;
mod topics;

pub use crate::graph::PlanError;
pub use embedded::EmbeddedBroker;
pub use generator::Generator;
pub use handle::RuntimeHandle;
pub use topics::ensure as ensure_topic;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streamvisor_actors::AckRouter;
use streamvisor_actors::Format;
use streamvisor_actors::KafkaSourceSettings;
use streamvisor_actors::Operation;
use streamvisor_actors::PartitionStatus;
use streamvisor_actors::{PipelineRecipe, SinkTarget};
use streamvisor_actors::{Readiness, SinkFaults};
use streamvisor_actors::{SinkNode, Topology};
use streamvisor_supervision::{
    ActorInfo, ChildSpec, KillMode, RuntimeSettings, StopReason, SupervisionError,
    SupervisionRuntime, SupervisorSpec, TreeHandle,
};
use thiserror::Error;

use crate::config::{IngestKind, PipelineConfig, SinkConfig};
use crate::graph::Graph;
use crate::ingest::Ingests;

/// Binds the socket of every socket ingest and serves it on a task of its own (ended at
/// shutdown); a taken address fails the start.
async fn socket_listeners(
    ingests: &Ingests,
    stopping: &Arc<AtomicBool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, RuntimeError> {
    let mut tasks = Vec::new();
    for (name, point) in ingests.iter() {
        if point.config.kind != IngestKind::Socket {
            continue;
        }
        let address = point.config.listen.clone().unwrap_or_default();
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|error| {
                RuntimeError::Ingest(format!(
                    "`ingest.{name}.listen`: cannot listen on {address}: {error}"
                ))
            })?;
        tracing::info!(ingest = %name, %address, topic = point.source.topic(), "socket ingest listening");
        tasks.push(tokio::spawn(crate::ingest::socket::serve(
            name.clone(),
            listener,
            point.clone(),
            Arc::clone(stopping),
        )));
    }
    Ok(tasks)
}

/// The runtime could not start or stop.
#[derive(Debug, Error)]
pub enum RuntimeError {
    /// The supervision tree refused (a bad setting, no actix System, ...).
    #[error(transparent)]
    Supervision(#[from] SupervisionError),
    /// The embedded broker, the generator or the topics could not be made ready.
    #[error("{0}")]
    Broker(String),
    /// The pipeline cannot be planned: a setting, the graph or the topology is wrong (the error
    /// names the field or the node).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// librdkafka refused the Kafka settings (`[kafka.properties]`).
    #[error("`kafka.properties`: librdkafka refused them: {0}")]
    KafkaProperties(String),
    /// An ingest source could not start (its producer, or its socket's address).
    #[error("{0}")]
    Ingest(String),
    /// A sink cannot use its target (wrong credentials, an unknown table, ...).
    #[error("`sinks.{sink}`: {why}")]
    Sink {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        why: String,
        /// The target is away (a retry later may succeed), rather than misconfigured.
        transient: bool,
    },
}

/// Checks that the sink can write where it is told to (connects to a database, creates the
/// table when asked, prepares the insert): wrong credentials or an unknown table are errors at
/// start, never a retry loop.
pub async fn check_sink(name: &str, sink: &SinkConfig) -> Result<SinkTarget, RuntimeError> {
    let failed = |why: String, transient: bool| RuntimeError::Sink {
        sink: name.to_owned(),
        why,
        transient,
    };
    let target = sink.target().map_err(|why| failed(why, false))?;
    check_target(name, &target).await?;
    Ok(target)
}

/// Checks that a sink can write to `target` (a PostgreSQL table: connects, creates it when
/// asked, prepares the insert).
pub async fn check_target(name: &str, target: &SinkTarget) -> Result<(), RuntimeError> {
    if let SinkTarget::Postgres(settings) = target {
        streamvisor_actors::check_postgres(settings)
            .await
            .map_err(|error| RuntimeError::Sink {
                sink: name.to_owned(),
                why: error.to_string(),
                transient: error.is_transient(),
            })?;
    }
    Ok(())
}

/// What the command line overrides in a pipeline file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--brokers`: use these brokers whatever the file says.
    pub brokers: Option<String>,
}

/// A running pipeline.
pub struct Runtime {
    tree: SupervisionRuntime,
    /// The mailbox sampler runs while this holds.
    sampling: samplers::Sampling,
    view: RuntimeHandle,
    #[cfg(feature = "test-util")]
    sink_faults: SinkFaults,
    config: PipelineConfig,
    brokers: String,
    generator: Option<Generator>,
    broker: Option<EmbeddedBroker>,
    /// The socket ingest listeners.
    listeners: Vec<tokio::task::JoinHandle<()>>,
    /// Tells the socket connections to stop reading.
    ingest_stopping: Arc<AtomicBool>,
}

impl Runtime {
    /// Starts `config` (inside an actix System).
    pub async fn start(config: PipelineConfig, overrides: Overrides) -> Result<Self, RuntimeError> {
        let mut targets = BTreeMap::new();
        for (name, sink) in &config.sinks {
            targets.insert(name.clone(), check_sink(name, sink).await?);
        }
        let (source_name, topology) = config.plan(|name, sink| SinkNode {
            name: name.to_owned(),
            target: targets.remove(name).unwrap_or(SinkTarget::Discard),
            delay_per_batch: sink.delay_per_batch.unwrap_or(Duration::ZERO),
            delay_for: sink.delay_for,
        })?;
        Self::launch(config, source_name, topology, overrides).await
    }

    /// Starts a pipeline built in Rust (inside an actix System): `graph`'s stages run its
    /// [`Operation`]s (closures included) and its sinks write to its [`SinkTarget`]s; `config`
    /// gives the rest (the name, `[kafka]`, `[flow]`, `[commit]`, `[supervision]`, `[runtime]`,
    /// `[ingest]`, and in `[sources]` the graph's source). Its `[stages]` and `[sinks]` are not
    /// used.
    pub async fn start_graph(
        config: PipelineConfig,
        graph: Graph<Operation, SinkTarget>,
        overrides: Overrides,
    ) -> Result<Self, RuntimeError> {
        let (source_name, topology) = graph.into_topology(|name, target| SinkNode {
            name,
            target,
            delay_per_batch: Duration::ZERO,
            delay_for: None,
        })?;
        if !config.sources.contains_key(&source_name) {
            return Err(PlanError::SourceUnset(source_name).into());
        }
        for sink in &topology.sinks {
            check_target(&sink.name, &sink.target).await?;
        }
        Self::launch(config, source_name, topology, overrides).await
    }

    /// Starts `topology` after the source `source_name` of `config`.
    async fn launch(
        config: PipelineConfig,
        source_name: String,
        topology: Topology,
        overrides: Overrides,
    ) -> Result<Self, RuntimeError> {
        let source = config.sources[&source_name].clone();
        let dead_letter_topic = format!("{}.dead-letters", config.name);
        // The Kafka settings are checked before anything starts (the brokers come later).
        let mut settings = KafkaSourceSettings::new(
            overrides.brokers.clone().unwrap_or_default(),
            config.group(),
            source.topic.clone(),
        );
        settings.properties = config.kafka.properties.clone();
        settings.group_protocol = config.kafka.group_protocol;
        settings.batch_size = config.flow.batch_size;
        settings.max_unacked = config.flow.max_unacked_per_partition;
        settings.max_unacked_bytes = config.flow.max_unacked_bytes_per_partition;
        let budget = match config.runtime.memory_budget {
            Some(budget) => budget,
            None => {
                let (budget, from) = memory::default_budget();
                tracing::info!(budget, from, "memory budget for records in flight");
                budget
            }
        };
        settings.memory_budget = streamvisor_actors::MemoryBudget::new(budget);
        settings.commit_interval = config.commit.interval;
        settings.commit_max_records = config.commit.max_records;
        // A shutdown drains for as long as the runtime's deadline allows: a drain cut short
        // shows as a shutdown past its deadline (exit 1), never as a clean stop.
        settings.drain_timeout = config.runtime.shutdown_timeout;
        settings
            .check_client_config()
            .map_err(RuntimeError::KafkaProperties)?;
        let outputs: Vec<String> = topology
            .sinks
            .iter()
            .filter_map(|sink| sink.target.kafka_topic().map(str::to_owned))
            .collect();
        let readiness = Readiness::default();
        let acks = AckRouter::default();
        let sink_faults = SinkFaults::default();
        let (broker, brokers) = match overrides
            .brokers
            .clone()
            .or_else(|| config.kafka.brokers.clone())
        {
            Some(brokers) => {
                topics::ensure(&brokers, &config.kafka.properties, &dead_letter_topic, 1).await?;
                for ingest in config.ingest.values() {
                    topics::ensure(
                        &brokers,
                        &config.kafka.properties,
                        &ingest.topic,
                        ingest.partitions,
                    )
                    .await?;
                }
                for output in &outputs {
                    topics::ensure(
                        &brokers,
                        &config.kafka.properties,
                        output,
                        source.partitions,
                    )
                    .await?;
                }
                (None, brokers)
            }
            None => {
                let mut topics = vec![
                    (source.topic.clone(), source.partitions),
                    (dead_letter_topic.clone(), 1),
                ];
                for output in &outputs {
                    topics.push((output.clone(), source.partitions));
                }
                for ingest in config.ingest.values() {
                    if !topics.iter().any(|(topic, _)| *topic == ingest.topic) {
                        topics.push((ingest.topic.clone(), ingest.partitions));
                    }
                }
                let broker = EmbeddedBroker::start(&topics).map_err(RuntimeError::Broker)?;
                tracing::warn!(
                    brokers = %broker.bootstrap_servers(),
                    "no brokers configured: running on the embedded in-process broker (in memory only; \
                     everything is lost when the process ends)"
                );
                let brokers = broker.bootstrap_servers().to_owned();
                (Some(broker), brokers)
            }
        };
        // On the embedded broker, whose partitions keep 5 MiB at most, producers of this process
        // into the source's topic hold back while the pipeline is behind.
        let backlog = broker
            .is_some()
            .then(|| Arc::new(streamvisor_actors::Backlog::default()));
        settings.backlog.clone_from(&backlog);
        let generator = match &source.generator {
            Some(load) => Some(
                Generator::start(&brokers, &source.topic, load, backlog.clone())
                    .map_err(RuntimeError::Broker)?,
            ),
            None => None,
        };

        let ingests = {
            let (configs, brokers, properties) = (
                config.ingest.clone(),
                brokers.clone(),
                config.kafka.properties.clone(),
            );
            let held_back = backlog.map(|backlog| (source.topic.clone(), backlog));
            tokio::task::spawn_blocking(move || {
                Ingests::start(&configs, &brokers, &properties, held_back)
            })
            .await
            .map_err(|error| RuntimeError::Ingest(error.to_string()))?
            .map_err(RuntimeError::Ingest)?
        };
        let ingest_stopping = Arc::new(AtomicBool::new(false));
        let listeners = socket_listeners(&ingests, &ingest_stopping).await?;
        settings.brokers = brokers.clone();
        let broker_contact = settings.broker_contact.clone();
        let broker_silence_limit = streamvisor_actors::silence_limit(&config.kafka.properties);
        let stage_names: Vec<String> = topology
            .stages
            .iter()
            .map(|stage| stage.name.clone())
            .collect();
        let recipe = PipelineRecipe {
            name: config.name.clone(),
            source: (source_name, settings),
            topology,
            format: Format::parse(&source.format).unwrap_or(Format::Json),
            dead_letter_topic: dead_letter_topic.clone(),
            readiness: readiness.clone(),
            sink_faults: sink_faults.clone(),
            supervision: config.supervision.settings(),
            acks: acks.clone(),
            embedded_broker: broker.is_some(),
        };
        let pipelines = SupervisorSpec::builder()
            .settings(config.supervision.settings())
            .child(recipe.child_spec()?)
            .build()?;
        let runtime_settings = RuntimeSettings {
            on_escalation: config.runtime.on_escalation,
            root: config.supervision.settings(),
            ..RuntimeSettings::default()
        };
        streamvisor_actors::metrics::describe();
        let tree = SupervisionRuntime::start(
            runtime_settings,
            vec![ChildSpec::supervisor("pipelines", pipelines)],
        )
        .await?;
        streamvisor_actors::metrics::supervision_at_zero();
        samplers::count_lifecycle(&tree.handle());
        let sampling = samplers::Sampling::start();
        samplers::sample_mailboxes(tree.handle(), sampling.flag());
        tracing::info!(pipeline = %config.name, %brokers, "pipeline running");
        let view = RuntimeHandle {
            tree: tree.handle(),
            acks,
            readiness,
            topic: source.topic.clone(),
            pipeline_path: format!("/pipelines/{}", config.name),
            source: config.sources.keys().next().cloned().unwrap_or_default(),
            stages: stage_names,
            ingests,
            brokers: brokers.clone(),
            broker_contact,
            broker_silence_limit,
            status: Arc::new(handle::Coalesced::new(handle::STATUS_TIMEOUT)),
        };
        streamvisor_actors::metrics::set_ready(&config.name, false);
        samplers::sample_readiness(config.name.clone(), view.clone(), sampling.flag());
        Ok(Runtime {
            sampling,
            view,
            #[cfg(feature = "test-util")]
            sink_faults,
            tree,
            config,
            brokers,
            generator,
            broker,
            listeners,
            ingest_stopping,
        })
    }

    /// The brokers in use (the embedded broker's address when there is one).
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// A handle on the actor tree.
    pub fn handle(&self) -> TreeHandle {
        self.tree.handle()
    }

    /// Every live actor, sorted by path.
    pub fn actors(&self) -> Vec<ActorInfo> {
        self.view.actors()
    }

    /// A cloneable view for HTTP handlers and the progress line.
    pub fn runtime_handle(&self) -> RuntimeHandle {
        self.view.clone()
    }

    /// `Ok` when the pipeline is ready (see [`RuntimeHandle::readiness`]); else why not.
    pub async fn readiness(&self) -> Result<(), Vec<String>> {
        self.view.readiness().await
    }

    /// The state of every partition the source has assigned (empty while it restarts).
    pub async fn partitions(&self) -> Vec<PartitionStatus> {
        self.view.partitions().await
    }

    /// Injected file sink failures, for tests of the retry-in-place path.
    #[cfg(feature = "test-util")]
    pub fn sink_faults(&self) -> &SinkFaults {
        &self.sink_faults
    }

    /// Kills the actor at `path`.
    pub fn kill(&self, path: &str, mode: KillMode) -> Result<(), SupervisionError> {
        self.tree.kill(path, mode)
    }

    /// Waits until the tree stops by itself (an escalation under `on_escalation = "stay"`).
    pub async fn stopped(&self) -> StopReason {
        self.tree.stopped().await
    }

    /// Stops intake, drains, commits, and stops the tree (children first), within the pipeline's
    /// `shutdown_timeout`.
    pub async fn shutdown(mut self) -> Result<(), RuntimeError> {
        self.sampling.stop();
        for listener in self.listeners.drain(..) {
            listener.abort();
        }
        // Ingest first: what it took is handed to the broker before anything else stops.
        self.ingest_stopping.store(true, Ordering::Release);
        let ingests = self.view.ingests.clone();
        let _ = tokio::task::spawn_blocking(move || ingests.flush(Duration::from_secs(10))).await;
        if let Some(generator) = self.generator.take() {
            // Its flush may block for seconds: never on the arbiter thread.
            let _ = tokio::task::spawn_blocking(move || generator.stop()).await;
        }
        let deadline = self.config.runtime.shutdown_timeout;
        let outcome = self.tree.shutdown(deadline).await;
        if let Some(broker) = self.broker.take() {
            broker.stop();
        }
        Ok(outcome?)
    }
}
