//! A pipeline as a supervised actor tree: a Kafka source, per-partition stage actors and the
//! sinks of its [`Topology`], wired by demand (credit) and acknowledged end to end. This module
//! only assembles them: the actors live in [`crate::source`], [`crate::stage`] and
//! [`crate::sink`].
//!
//! ```text
//! /pipelines/<p>                       supervisor
//! ├── sinks/<k>                        a sink actor (acks to the source once written durably)
//! ├── stages/<st>                      supervisor; p<N> per assigned partition
//! └── sources/<s>                      supervisor owning the Kafka client (polling thread)
//!     └── p<N>                         partition actor, per assigned partition
//! ```
//!
//! Started downstream first (sinks, stages, sources) and stopped upstream first. A failure of
//! any actor holding records of a partition rewinds it (see [`watcher`]).

pub(crate) mod acks;
pub(crate) mod dead_letters;
pub(crate) mod health;
pub(crate) mod topology;
pub(crate) mod watcher;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use streamvisor_supervision::{
    ChildSpec, Failure, OwnedResource, OwnerContext, SupervisionError, SupervisorSettings,
    SupervisorSpec,
};

use crate::flow::inlet::Inlets;
use crate::metrics::{SinkMetrics, SourceMetrics};
use crate::sink::actor::{SinkActor, SinkShared, SinkWriter};
use crate::sink::discard_sink::DiscardWriter;
use crate::sink::file_sink::{FileOutput, FileSinkSettings, FileWriter};
use crate::sink::kafka_sink::{KafkaSinkSettings, KafkaWriter};
use crate::sink::postgres::PostgresSettings;
use crate::sink::postgres_sink::PostgresWriter;
use crate::sink::rolling::RollingSettings;
use crate::sink::transactional_sink::{TransactionalSettings, TransactionalWriter};
use crate::source::kafka::{source_channel, KafkaSource, KafkaSourceSettings};
use crate::source::outlet::ActorOutlet;
use crate::source::partition::{Incarnations, PartitionRecipe, PartitionWorker};
use crate::stage::{StageRecipe, StageWorker};
use acks::AckRouter;
use dead_letters::{DeadLetterTarget, DeadLetters};
use topology::{NodeOutputs, SinkNode, StageNode, Topology};

/// A pipeline: one Kafka source, then a graph of stages and sinks ([`Topology`]).
#[derive(Clone)]
pub struct PipelineRecipe {
    /// The pipeline's name (`/pipelines/<name>`).
    pub name: String,
    /// The source's name and settings.
    pub source: (String, KafkaSourceSettings),
    /// The stages and sinks after the source.
    pub topology: Topology,
    /// The source's record format.
    pub format: crate::source::decode::Format,
    /// The dead-letter topic (DESIGN.md's default: `<pipeline>.dead-letters`).
    pub dead_letter_topic: String,
    /// Where components say they are not ready.
    pub readiness: health::Readiness,
    /// Injected sink failures (tests only; none by default).
    pub sink_faults: health::SinkFaults,
    /// Restart intensity and backoff of every supervisor of the pipeline (`[supervision]`).
    pub supervision: SupervisorSettings,
    /// Where sinks acknowledge to; also how to reach the running source (status).
    pub acks: AckRouter,
    /// The brokers are the embedded broker (rdkafka's mock cluster), whose `read_committed`
    /// readers see aborted records: an exactly-once sink there never aborts on its own.
    pub embedded_broker: bool,
}

/// Where a pipeline's sink writes.
#[derive(Clone, Debug)]
pub enum SinkTarget {
    /// A JSON Lines file (DESIGN.md's file sink).
    File(PathBuf),
    /// Rolled-over files (JSON Lines or MessagePack, optionally by date and partition).
    RollingFiles(RollingSettings),
    /// A PostgreSQL table.
    Postgres(PostgresSettings),
    /// A Kafka topic (the pipeline's brokers; its properties add to the pipeline's).
    Kafka(KafkaSinkSettings),
    /// Nowhere: every record is acknowledged as it arrives.
    Discard,
    /// A Kafka topic written in transactions with the consumed offsets (exactly once).
    KafkaExactlyOnce {
        /// Where it writes.
        settings: KafkaSinkSettings,
        /// Records per transaction, at most.
        max_records: usize,
        /// How long a transaction gathers records.
        interval: Duration,
    },
}

impl SinkTarget {
    /// The output topic of a Kafka sink.
    pub fn kafka_topic(&self) -> Option<&str> {
        match self {
            SinkTarget::Kafka(settings) | SinkTarget::KafkaExactlyOnce { settings, .. } => {
                Some(&settings.topic)
            }
            SinkTarget::File(_)
            | SinkTarget::RollingFiles(_)
            | SinkTarget::Postgres(_)
            | SinkTarget::Discard => None,
        }
    }
}

impl From<PathBuf> for SinkTarget {
    fn from(path: PathBuf) -> Self {
        SinkTarget::File(path)
    }
}

/// What the source supervisor owns: the Kafka client and the rewind watcher.
struct SourceResource {
    source: Option<KafkaSource>,
    stop_watcher: Arc<AtomicBool>,
}

impl Drop for SourceResource {
    fn drop(&mut self) {
        self.stop_watcher.store(true, Ordering::Release);
        if let Some(source) = self.source.take() {
            if let Err(error) = source.shutdown() {
                tracing::error!(%error, "Kafka source did not shut down cleanly");
            }
        }
    }
}

/// The spec of a sink actor named `name` whose writer `writer` makes afresh at each start.
fn sink_child<W: SinkWriter>(
    name: String,
    shared: SinkShared,
    writer: impl Fn() -> W + Send + Sync + 'static,
) -> ChildSpec {
    ChildSpec::worker(name, move || SinkActor::new(shared.clone(), writer()))
}

impl PipelineRecipe {
    /// What every sink of the pipeline is given.
    fn sink_shared(&self, node: &SinkNode, capacity: u64, inlets: &Inlets) -> SinkShared {
        SinkShared {
            capacity,
            inlets: inlets.clone(),
            acks: self.acks.clone(),
            metrics: SinkMetrics::new(&self.name, &node.name),
            readiness: self.readiness.clone(),
        }
    }

    /// A file sink's settings.
    fn file_settings(&self, node: &SinkNode, output: FileOutput) -> FileSinkSettings {
        FileSinkSettings {
            output,
            delay_per_batch: node.delay_per_batch,
            slow_until: node
                .delay_for
                .map(|slow_for| std::time::Instant::now() + slow_for),
            faults: self.sink_faults.clone(),
        }
    }

    /// The path pattern of the actor of `node` (a stage's per partition: `{p}`).
    fn path_of(&self, pipeline: &str, node: &str) -> String {
        if self.topology.stages.iter().any(|stage| stage.name == node) {
            format!("{pipeline}/stages/{node}/{{p}}")
        } else {
            format!("{pipeline}/sinks/{node}")
        }
    }

    /// The spec of the sink `node`.
    fn sink_spec(
        &self,
        node: &SinkNode,
        settings: &KafkaSourceSettings,
        sink_capacity: u64,
        inlets: &Inlets,
    ) -> ChildSpec {
        let shared = self.sink_shared(node, sink_capacity, inlets);
        let name = node.name.clone();
        let producer_properties = |own: &std::collections::BTreeMap<String, String>| {
            let mut properties = settings.properties.clone();
            properties.extend(own.clone());
            properties
        };
        match &node.target {
            SinkTarget::File(file) => {
                let file = self.file_settings(node, FileOutput::Single(file.clone()));
                sink_child(name, shared, move || FileWriter::new(file.clone()))
            }
            SinkTarget::RollingFiles(rolling) => {
                let files = self.file_settings(node, FileOutput::Rolling(rolling.clone()));
                sink_child(name, shared, move || FileWriter::new(files.clone()))
            }
            SinkTarget::Discard => sink_child(name, shared, || DiscardWriter),
            SinkTarget::Postgres(postgres) => {
                let dead_letters = DeadLetterTarget::new(
                    &settings.brokers,
                    &settings.properties,
                    &self.dead_letter_topic,
                );
                let postgres = postgres.clone();
                sink_child(name, shared, move || {
                    PostgresWriter::new(postgres.clone(), dead_letters.clone())
                })
            }
            SinkTarget::Kafka(kafka) => {
                let kafka = KafkaSinkSettings {
                    brokers: settings.brokers.clone(),
                    topic: kafka.topic.clone(),
                    properties: producer_properties(&kafka.properties),
                };
                let dead_letters = DeadLetterTarget::new(
                    &settings.brokers,
                    &settings.properties,
                    &self.dead_letter_topic,
                );
                sink_child(name, shared, move || {
                    KafkaWriter::new(kafka.clone(), dead_letters.clone())
                })
            }
            SinkTarget::KafkaExactlyOnce {
                settings: kafka,
                max_records,
                interval,
            } => {
                let transactional = TransactionalSettings {
                    settings: KafkaSinkSettings {
                        brokers: settings.brokers.clone(),
                        topic: kafka.topic.clone(),
                        properties: producer_properties(&kafka.properties),
                    },
                    transactional_id: format!(
                        "streamvisor-{}-{}-{}-{}",
                        settings.group,
                        self.name,
                        node.name,
                        std::process::id()
                    ),
                    max_records: *max_records,
                    interval: *interval,
                    send_early: !self.embedded_broker,
                    fence: settings.fence.clone(),
                    dead_letters: DeadLetterTarget::new(
                        &settings.brokers,
                        &settings.properties,
                        &self.dead_letter_topic,
                    ),
                };
                sink_child(name, shared, move || {
                    TransactionalWriter::new(transactional.clone())
                })
            }
        }
    }

    /// The pipeline's supervisor, to start under `/pipelines`.
    pub fn child_spec(&self) -> Result<ChildSpec, SupervisionError> {
        let pipeline = format!("/pipelines/{}", self.name);
        let (source_name, settings) = &self.source;
        let invalid = |error: topology::TopologyError| SupervisionError::InvalidSetting {
            setting: "pipeline graph",
            why: error.to_string(),
        };
        self.topology.validate().map_err(invalid)?;
        let (source_paths, paths) = self.topology.paths().map_err(invalid)?;
        let batch = settings.batch_size.max(1) as u64;
        // Room for a few batches per actor: pausing a partition drops what librdkafka prefetched,
        // so a buffer that runs dry at every batch costs refetches.
        let capacity = batch * 4;
        let sink_capacity = batch * 16;
        let inlets = Inlets::default();
        let acks = self.acks.clone();
        let targets = |outputs: &NodeOutputs| -> Vec<String> {
            outputs
                .consumers
                .iter()
                .map(|consumer| self.path_of(&pipeline, consumer))
                .collect()
        };

        let mut sinks = SupervisorSpec::builder().settings(self.supervision.clone());
        for node in &self.topology.sinks {
            sinks = sinks.child(
                self.sink_spec(node, settings, sink_capacity, &inlets)
                    .kind("sink")
                    .mailbox_capacity(sink_capacity as usize),
            );
        }
        let sinks = sinks.build()?;

        // Each stage sends to its consumers' actors of the same partition (a sink: the sink).
        let stage_dead_letters = DeadLetterTarget::new(
            &settings.brokers,
            &settings.properties,
            &self.dead_letter_topic,
        );
        let mut stage_recipes = Vec::new();
        for node in &self.topology.stages {
            let stage_name = &node.name;
            let recipe = StageRecipe {
                operation: node.operation.clone(),
                next: targets(&node.outputs),
                fan_out: node.outputs.fan_out,
                paths_to_sinks: paths.get(stage_name).copied().unwrap_or(1),
                capacity,
                unacked_cap: (settings.max_unacked, settings.batch_size),
                inlets: inlets.clone(),
                acks: acks.clone(),
                dead_letters: stage_dead_letters.clone(),
                user_code: crate::stage::user_code::UserCode::default(),
            };
            let spec = ChildSpec::worker("p", move || StageWorker::new(recipe.clone()))
                .kind("stage")
                .mailbox_capacity(capacity as usize);
            stage_recipes.push((format!("{pipeline}/stages/{stage_name}"), spec));
        }
        let mut stages = SupervisorSpec::builder().settings(self.supervision.clone());
        for StageNode { name, .. } in &self.topology.stages {
            let group = SupervisorSpec::builder()
                .settings(self.supervision.clone())
                .build()?;
            stages = stages.child(ChildSpec::supervisor(name.clone(), group).kind("stage-group"));
        }
        let stages = stages.build()?;

        let first_hops = targets(&self.topology.source_outputs);
        let source_fan_out = self.topology.source_outputs.fan_out;
        let mut source_settings = settings.clone();
        source_settings.pipeline = self.name.clone();
        source_settings.source = source_name.clone();
        source_settings.paths_to_sinks = source_paths;
        // An exactly-once sink commits the offsets in its transactions.
        if self
            .topology
            .sinks
            .iter()
            .any(|sink| matches!(sink.target, SinkTarget::KafkaExactlyOnce { .. }))
        {
            source_settings.commit_offsets = false;
        }
        let source_metrics = SourceMetrics::new(&self.name, source_name, &settings.topic);
        let owner_pipeline = pipeline.clone();
        let format = self.format;
        let dead_letter_topic = self.dead_letter_topic.clone();
        let source_supervisor = SupervisorSpec::builder()
            .settings(self.supervision.clone())
            .owning(move |owner: &OwnerContext| {
                let dead_letters = DeadLetters::new(
                    &source_settings.brokers,
                    &source_settings.properties,
                    &dead_letter_topic,
                )
                .map_err(|error| Failure::new(format!("dead-letter producer: {error}")))?;
                let (handle, inputs) = source_channel();
                acks.register(Arc::from(source_settings.topic.as_str()), handle.clone());
                let incarnations = Incarnations::default();
                let partition = PartitionRecipe {
                    source: handle.clone(),
                    incarnations: Arc::clone(&incarnations),
                    next: first_hops.clone(),
                    fan_out: source_fan_out,
                    paths_to_sinks: source_paths,
                    capacity,
                    inlets: inlets.clone(),
                    format,
                    dead_letters,
                    metrics: source_metrics.clone(),
                };
                let partition_spec =
                    ChildSpec::worker("p", move || PartitionWorker::new(partition.clone()))
                        .kind("partition")
                        .mailbox_capacity(capacity as usize);
                let outlet = ActorOutlet::new(
                    owner.tree.clone(),
                    owner.path.to_string(),
                    partition_spec,
                    stage_recipes.clone(),
                    incarnations,
                );
                let source = KafkaSource::start_with(
                    source_settings.clone(),
                    Box::new(outlet),
                    handle.clone(),
                    inputs,
                )
                .map_err(|error| Failure::new(error.to_string()))?;
                let stop_watcher = Arc::new(AtomicBool::new(false));
                watcher::watch_failures(
                    &owner.tree,
                    owner_pipeline.clone(),
                    owner.path.to_string(),
                    handle,
                    Arc::clone(&stop_watcher),
                );
                Ok(Box::new(SourceResource {
                    source: Some(source),
                    stop_watcher,
                }) as OwnedResource)
            })
            .build()?;
        let sources = SupervisorSpec::builder()
            .settings(self.supervision.clone())
            .child(ChildSpec::supervisor(source_name.clone(), source_supervisor).kind("source"))
            .build()?;

        let spec = SupervisorSpec::builder()
            .settings(self.supervision.clone())
            .child(ChildSpec::supervisor("sinks", sinks))
            .child(ChildSpec::supervisor("stages", stages))
            .child(ChildSpec::supervisor("sources", sources))
            .build()?;
        Ok(ChildSpec::supervisor(self.name.clone(), spec).kind("pipeline"))
    }
}
