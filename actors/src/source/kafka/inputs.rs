//! The polling thread's inputs ([`SourceInput`]): demand, acks, rewinds, the questions of
//! readiness and of an exactly-once sink, shutdown; taken between polls, never per record.

use super::{DriverState, Inputs};
use crate::source::partition_flow::PartitionFlow;

/// What the partitions' actors tell the polling thread. The channel is unbounded in type but
/// bounded by construction: grants and acks come at most one per batch in flight, and batches in
/// flight are capped per partition.
#[derive(Debug)]
pub enum SourceInput {
    /// Demand for `records` more records of `partition`, from its actors of `incarnation`.
    Grant {
        /// The partition.
        partition: i32,
        /// The incarnation the actors serve.
        incarnation: u64,
        /// Records they can take.
        records: u64,
    },
    /// These offsets of `partition`, read by `incarnation`, are durable (or deliberately dropped).
    Ack {
        /// The partition.
        partition: i32,
        /// The incarnation that read them.
        incarnation: u64,
        /// The offsets.
        offsets: Vec<i64>,
        /// The paths to a sink each ack stands for (1 from a sink; a record dropped before
        /// the graph fans out stands for every path after it).
        paths: u32,
    },
    /// Records of `partition` read by `incarnation` need more acks: a flat_map made several
    /// records of each, (offset, acks more) (sent before those records go on).
    ExpectMore {
        /// The partition.
        partition: i32,
        /// The incarnation that read them.
        incarnation: u64,
        /// (offset, further acks it needs).
        offsets: Vec<(i64, u32)>,
    },
    /// The window stages of `partition`'s `incarnation` hold `records` in open windows.
    HeldInWindows {
        /// The partition.
        partition: i32,
        /// The incarnation they serve.
        incarnation: u64,
        /// Records held.
        records: usize,
    },
    /// An actor holding records of `partition` failed: replay from the committed offset.
    Rewind {
        /// The partition.
        partition: i32,
        /// The incarnation whose records the failure is about: a partition that rewound since
        /// (a newer incarnation) is not rewound again for it. `None`: whatever is current (an
        /// actor of the partition failed).
        incarnation: Option<u64>,
    },
    /// An actor holding records of every partition (a sink) failed: replay them all.
    RewindAll,
    /// Reports the state of every assigned partition.
    Status(tokio::sync::oneshot::Sender<Vec<PartitionStatus>>),
    /// Where the acknowledged prefix of each listed (partition, incarnation) would end if the
    /// offsets listed with it were acknowledged too (an exactly-once transaction holding those
    /// records asks before it commits); `None` for a partition not read here or rewound since.
    AckedPrefix {
        /// (partition, incarnation, offsets the transaction would acknowledge).
        asked: Vec<(i32, u64, Vec<i64>)>,
        /// Where the answers go: (partition, end of the prefix).
        reply: std::sync::mpsc::Sender<Vec<(i32, Option<i64>)>>,
    },
    /// Stop intake, wait for what is in flight (the drain timeout at most), commit, close.
    Shutdown,
}

/// One assigned partition, as its polling thread sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionStatus {
    /// The partition.
    pub partition: i32,
    /// Paused (no demand, or at its unacked cap).
    pub paused: bool,
    /// The end of its acknowledged prefix (what is committed, or about to be).
    pub position: i64,
    /// The next offset it will hand on (everything before was read).
    pub next_offset: i64,
    /// Records handed on and not acknowledged.
    pub unacked: usize,
    /// Its current incarnation.
    pub incarnation: u64,
}

impl DriverState {
    pub(super) fn take_inputs(&mut self) -> Inputs {
        while let Some(input) = self
            .deferred
            .pop_front()
            .or_else(|| self.inputs.try_recv().ok())
        {
            self.handle(input);
        }
        if self.shutdown_requested {
            Inputs::Shutdown
        } else {
            Inputs::Continue
        }
    }

    pub(super) fn handle(&mut self, input: SourceInput) {
        match input {
            SourceInput::Grant {
                partition,
                incarnation,
                records,
            } => {
                if let Some(flow) = self.flows.get_mut(&partition) {
                    if incarnation < flow.incarnation() {
                        // Its actor missed the rewind (the message was lost): tell it again.
                        let current = flow.incarnation();
                        if !self.outlet.rewound(partition, current) {
                            self.retell.insert(partition);
                        }
                    } else {
                        flow.grant(incarnation, records);
                        self.retell.remove(&partition);
                    }
                } else {
                    tracing::debug!(
                        partition,
                        incarnation,
                        "grant for a partition not assigned here"
                    );
                }
            }
            SourceInput::Ack {
                partition,
                incarnation,
                offsets,
                paths,
            } => {
                if let Some(flow) = self.flows.get_mut(&partition) {
                    flow.ack_paths(incarnation, offsets, paths);
                }
            }
            SourceInput::ExpectMore {
                partition,
                incarnation,
                offsets,
            } => {
                if let Some(flow) = self.flows.get_mut(&partition) {
                    flow.expect_more(incarnation, offsets);
                }
            }
            SourceInput::HeldInWindows {
                partition,
                incarnation,
                records,
            } => {
                if let Some(flow) = self.flows.get_mut(&partition) {
                    flow.held_in_windows(incarnation, records);
                }
            }
            SourceInput::Rewind {
                partition,
                incarnation,
            } => self.rewind(partition, incarnation),
            SourceInput::RewindAll => {
                let partitions: Vec<i32> = self.flows.keys().copied().collect();
                for partition in partitions {
                    self.rewind(partition, None);
                }
            }
            SourceInput::Status(reply) => {
                let status = self
                    .flows
                    .iter()
                    .map(|(partition, flow)| PartitionStatus {
                        partition: *partition,
                        paused: flow.is_paused(),
                        position: flow.position(),
                        next_offset: flow.next_offset(),
                        unacked: flow.unacked(),
                        incarnation: flow.incarnation(),
                    })
                    .collect();
                let _ = reply.send(status);
            }
            SourceInput::AckedPrefix { asked, reply } => {
                let answers = asked
                    .into_iter()
                    .map(|(partition, incarnation, mut offsets)| {
                        let end = self
                            .flows
                            .get(&partition)
                            .and_then(|flow| flow.position_if_acked(incarnation, &mut offsets));
                        (partition, end)
                    })
                    .collect();
                let _ = reply.send(answers);
            }
            SourceInput::Shutdown => self.shutdown_requested = true,
        }
    }

    pub(super) fn rewind(&mut self, partition: i32, about: Option<u64>) {
        let current = self.flows.get(&partition).map(PartitionFlow::incarnation);
        if about.is_some_and(|about| current.is_some_and(|current| about < current)) {
            tracing::debug!(
                partition,
                ?about,
                ?current,
                "a failure of an older incarnation: no rewind"
            );
            return;
        }
        // Under the fence, after the acks already sent: records a transaction committed are
        // in the acknowledged prefix before the partition seeks back to it.
        let fence = self.settings.fence.clone();
        let mut fence = fence.lock();
        while let Ok(input) = self.inputs.try_recv() {
            match input {
                ack @ (SourceInput::Ack { .. } | SourceInput::ExpectMore { .. }) => {
                    self.handle(ack)
                }
                other => self.deferred.push_back(other),
            }
        }
        if let Some(flow) = self.flows.get_mut(&partition) {
            let from = flow.rewind_past(fence.start(partition, i64::MIN));
            let incarnation = flow.incarnation();
            fence.set(partition, incarnation);
            tracing::info!(partition, from, incarnation, "partition rewinds");
            if !self.outlet.rewound(partition, incarnation) {
                self.retell.insert(partition);
            }
        }
    }
}
