//! [`RuntimeHandle`]: a cheap, cloneable view of a running pipeline for the HTTP handlers, the
//! CLI's progress line and the tests: its actors, kills, readiness and partitions.

use std::sync::Arc;
use std::time::Duration;

pub(super) use super::coalesce::Coalesced;
use crate::ingest::Ingests;
use streamvisor_actors::AckRouter;
use streamvisor_actors::Readiness;
use streamvisor_actors::{BrokerContact, PartitionStatus, SourceInput};
use streamvisor_supervision::{ActorInfo, ActorState, KillMode, SupervisionError, TreeHandle};

/// How long a partition status query may take before it counts as no answer (a readiness probe
/// must answer within a probe's timeout).
pub(super) const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// A view of a running pipeline; clones share it. It never keeps the runtime alive.
#[derive(Clone)]
pub struct RuntimeHandle {
    pub(super) tree: TreeHandle,
    pub(super) acks: AckRouter,
    pub(super) readiness: Readiness,
    /// The source's topic.
    pub(super) topic: String,
    /// `/pipelines/<p>`.
    pub(super) pipeline_path: String,
    /// The source's name.
    pub(super) source: String,
    /// The stages, in order.
    pub(super) stages: Vec<String>,
    /// The ingest sources.
    pub(super) ingests: Ingests,
    /// The source's brokers (`bootstrap.servers`).
    pub(super) brokers: String,
    /// When the source's consumer last heard from them.
    pub(super) broker_contact: BrokerContact,
    /// A longer silence makes the pipeline unready.
    pub(super) broker_silence_limit: Duration,
    /// The source's last answer about its partitions, and the question still unanswered: one
    /// status request in flight at most, whatever the number of callers.
    pub(super) status: Arc<Coalesced<Vec<PartitionStatus>>>,
}

impl RuntimeHandle {
    /// The ingest sources (REST and sockets).
    pub fn ingests(&self) -> &Ingests {
        &self.ingests
    }

    /// Every live actor, supervisors included, sorted by path.
    pub fn actors(&self) -> Vec<ActorInfo> {
        let mut actors = self.tree.registry().list();
        actors.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
        actors
    }

    /// Kills the actor at `path`.
    pub fn kill(&self, path: &str, mode: KillMode) -> Result<(), SupervisionError> {
        self.tree.kill(path, mode)
    }

    /// `Ok` when the pipeline runs, its source has heard from a broker within its silence limit
    /// (`streamvisor_actors::silence_limit`), every assigned partition has a live partition actor and stage
    /// actors, and no component is unready (a sink retrying a failed write); else why not.
    pub async fn readiness(&self) -> Result<(), Vec<String>> {
        let registry = self.tree.registry();
        let running = |path: &str| {
            registry
                .get(path)
                .is_some_and(|actor| actor.state == ActorState::Running)
        };
        let pipeline = &self.pipeline_path;
        let mut reasons = Vec::new();
        if !running(pipeline) {
            reasons.push(format!("{pipeline}: not running"));
        }
        if let Some(silence) = self
            .broker_contact
            .silence()
            .filter(|silence| *silence > self.broker_silence_limit)
        {
            reasons.push(format!(
                "{pipeline}/sources/{}: no answer from the Kafka brokers {} for {} s (no fetch, \
                 heartbeat or metadata answer; retrying)",
                self.source,
                self.brokers,
                silence.as_secs()
            ));
        }
        let partitions = match self.partition_states().await {
            Some(partitions) => partitions,
            None => {
                reasons.push(format!(
                    "{pipeline}/sources/{}: the source does not answer (starting or restarting)",
                    self.source
                ));
                Vec::new()
            }
        };
        for partition in partitions {
            let p = partition.partition;
            let mut subtree = vec![format!("{pipeline}/sources/{}/p{p}", self.source)];
            subtree.extend(
                self.stages
                    .iter()
                    .map(|stage| format!("{pipeline}/stages/{stage}/p{p}")),
            );
            for path in subtree {
                if !running(&path) {
                    reasons.push(format!("{path}: partition {p} has no live actor here"));
                }
            }
        }
        reasons.extend(self.readiness.check().err().unwrap_or_default());
        reasons.extend(self.ingests.unready());
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// The state of every partition the source has assigned (empty while it restarts).
    pub async fn partitions(&self) -> Vec<PartitionStatus> {
        self.partition_states().await.unwrap_or_default()
    }

    /// The state of every partition the source has assigned; none when the source does not
    /// answer (not started, restarting, or busy past the timeout). Requests coalesce: callers
    /// take turns, a caller reuses an answer that came after it asked, and a request that timed
    /// out is awaited again rather than asked twice, so a polling thread busy in a rebalance
    /// never gets more than one question queued.
    async fn partition_states(&self) -> Option<Vec<PartitionStatus>> {
        self.status
            .get(|| {
                let source = self.acks.source(&self.topic)?;
                let (reply, answer) = tokio::sync::oneshot::channel();
                source.send(SourceInput::Status(reply)).then_some(answer)
            })
            .await
    }
}
