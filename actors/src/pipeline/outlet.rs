//! [`ActorOutlet`]: the polling thread's side of a pipeline: on assign it asks the supervisors
//! for the partition's actors (downstream first), on revoke it stops them (upstream first), on
//! rewind it tells the partition actor its new incarnation, and it dispatches batches to the
//! partition actor. It never waits: rebalance callbacks run inside `poll`.

use std::collections::{HashMap, HashSet};

use streamvisor_supervision::{ActorRef, ChildSpec, TreeHandle};

use crate::pipeline::partition::{Incarnations, PartitionMessage};
use crate::record::Batch;
use crate::source::kafka::PartitionOutlet;

/// Where a partition's actors live and how to make them.
pub struct ActorOutlet {
    /// The tree.
    pub tree: TreeHandle,
    /// The source supervisor (`/pipelines/<p>/sources/<s>`): parent of the partition actors.
    pub source_path: String,
    /// The partition actor's recipe (named `p<N>` at each assign).
    pub partition: ChildSpec,
    /// Each stage supervisor's path with the stage actor's recipe, in flow order.
    pub stages: Vec<(String, ChildSpec)>,
    /// The partitions' incarnations, shared with the partition actors.
    pub incarnations: Incarnations,
    refs: HashMap<i32, ActorRef<PartitionMessage>>,
    /// Partitions whose partition actor could not start at their assignment.
    unstarted: HashSet<i32>,
}

impl ActorOutlet {
    /// An outlet for these recipes.
    pub fn new(
        tree: TreeHandle,
        source_path: String,
        partition: ChildSpec,
        stages: Vec<(String, ChildSpec)>,
        incarnations: Incarnations,
    ) -> Self {
        ActorOutlet {
            tree,
            source_path,
            partition,
            stages,
            incarnations,
            refs: HashMap::new(),
            unstarted: HashSet::new(),
        }
    }

    fn partition_actor(&mut self, partition: i32) -> Option<&ActorRef<PartitionMessage>> {
        let fresh = self
            .refs
            .get(&partition)
            .is_some_and(ActorRef::is_connected);
        if !fresh {
            let path = format!("{}/p{partition}", self.source_path);
            match self.tree.registry().actor_ref::<PartitionMessage>(&path) {
                Some(actor) => {
                    self.refs.insert(partition, actor);
                }
                None => {
                    self.refs.remove(&partition);
                }
            }
        }
        self.refs.get(&partition)
    }
}

impl ActorOutlet {
    /// Starts the stage actors of `partition` that are not listed (downstream first); false
    /// when one could not start (its stage group is restarting): try again later.
    fn start_missing_stages(&mut self, partition: i32) -> bool {
        let name = format!("p{partition}");
        let mut all_run = true;
        for (parent, recipe) in self.stages.iter().rev() {
            if self
                .tree
                .registry()
                .get(&format!("{parent}/{name}"))
                .is_some()
            {
                continue;
            }
            if let Err(error) = self
                .tree
                .start_child_detached(parent, recipe.named(name.clone()))
            {
                tracing::info!(%parent, partition, %error, "a stage actor could not start yet");
                all_run = false;
            }
        }
        all_run
    }
}

impl PartitionOutlet for ActorOutlet {
    fn assigned(&mut self, partition: i32, incarnation: u64) {
        self.incarnations.insert(partition, incarnation);
        let name = format!("p{partition}");
        for (parent, recipe) in self.stages.iter().rev() {
            if let Err(error) = self
                .tree
                .start_child_detached(parent, recipe.named(name.clone()))
            {
                tracing::error!(%parent, partition, %error, "could not start a stage actor");
            }
        }
        self.unstarted.remove(&partition);
        if let Err(error) = self
            .tree
            .start_child_detached(&self.source_path, self.partition.named(name))
        {
            // Its supervisor is not listed yet (an assignment can come that fast): the polling
            // thread asks again (`PartitionOutlet::confirm_assigned`).
            tracing::info!(partition, %error, "the partition actor could not start yet");
            self.unstarted.insert(partition);
        }
    }

    fn rewound(&mut self, partition: i32, incarnation: u64) -> bool {
        self.incarnations.insert(partition, incarnation);
        // A stage group that restarted lost its partition actors: start the missing ones. A
        // group still restarting (not listed yet) cannot take them: the polling thread tries
        // again, or the partition would wait for them for good.
        let stages_run = self.start_missing_stages(partition);
        // A restarted actor reads the incarnation at start; a live one learns it here. Not
        // delivered (no live actor listed, or a full mailbox): the polling thread tries again.
        let told = self.partition_actor(partition).is_some_and(|actor| {
            actor
                .try_send(PartitionMessage::Incarnation(incarnation))
                .is_ok()
        });
        told && stages_run
    }

    fn confirm_assigned(&mut self, partition: i32, _incarnation: u64) -> bool {
        let stages_run = self.start_missing_stages(partition);
        if !self.unstarted.contains(&partition) {
            return stages_run;
        }
        let name = format!("p{partition}");
        match self
            .tree
            .start_child_detached(&self.source_path, self.partition.named(name))
        {
            Ok(()) => {
                tracing::info!(
                    partition,
                    "started the partition actor that could not start at its assignment"
                );
                self.unstarted.remove(&partition);
                stages_run
            }
            // Its supervisor is still not listed: next time.
            Err(_) => false,
        }
    }

    fn revoked(&mut self, partition: i32) {
        self.refs.remove(&partition);
        self.unstarted.remove(&partition);
        let name = format!("p{partition}");
        if let Err(error) = self.tree.stop_child_detached(&self.source_path, &name) {
            tracing::warn!(partition, %error, "could not stop the partition actor");
        }
        for (parent, _) in &self.stages {
            if let Err(error) = self.tree.stop_child_detached(parent, &name) {
                tracing::warn!(%parent, partition, %error, "could not stop a stage actor");
            }
        }
    }

    fn dispatch(&mut self, batch: Batch) -> Result<(), Batch> {
        let Some(actor) = self.partition_actor(batch.partition()) else {
            return Err(batch);
        };
        actor
            .try_send(PartitionMessage::Batch(batch))
            .map_err(|error| match error.into_inner() {
                PartitionMessage::Batch(batch) => batch,
                _ => unreachable!("a batch was sent"),
            })
    }
}
