//! [`ActorOutlet`]: the polling thread's side of a pipeline: on assign it asks the supervisors
//! for the partition's actors (downstream first), on revoke it stops them (upstream first), on
//! rewind it tells the partition actor its new incarnation, and it dispatches batches to the
//! partition actor. It never waits: rebalance callbacks run inside `poll`.

use std::collections::HashMap;

use streamvisor_supervision::{ActorRef, ActorState, ChildSpec, TreeHandle};

use crate::record::Batch;
use crate::source::kafka::PartitionOutlet;
use crate::source::partition::{Incarnations, PartitionMessage};

/// Where a partition's actors live and how to make them.
pub(crate) struct ActorOutlet {
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
}

impl ActorOutlet {
    /// An outlet for these recipes.
    pub(crate) fn new(
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
    /// Makes sure the child `name` of `parent` runs: true when it is listed running (or
    /// restarting). One not listed is started, and one listed as stopping (revoked just before
    /// a new assignment: its supervisor refuses a second child of that name until it is gone)
    /// is waited for; either way false, so that the polling thread asks again.
    fn ensure_child(&self, parent: &str, name: &str, recipe: &ChildSpec) -> bool {
        match self.tree.registry().get(&format!("{parent}/{name}")) {
            Some(actor) => actor.state != ActorState::Stopping,
            None => {
                if let Err(error) = self
                    .tree
                    .start_child_detached(parent, recipe.named(name.to_owned()))
                {
                    tracing::info!(%parent, %name, %error, "an actor could not start yet");
                }
                false
            }
        }
    }

    /// Makes sure the stage actors of `partition` run (downstream first); false while one is
    /// not listed running yet: try again later.
    fn start_missing_stages(&mut self, partition: i32) -> bool {
        let name = format!("p{partition}");
        let mut all_run = true;
        for (parent, recipe) in self.stages.iter().rev() {
            all_run &= self.ensure_child(parent, &name, recipe);
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
        if let Err(error) = self
            .tree
            .start_child_detached(&self.source_path, self.partition.named(name))
        {
            // Its supervisor is not listed yet (an assignment can come that fast): the polling
            // thread asks again (`PartitionOutlet::confirm_assigned`).
            tracing::info!(partition, %error, "the partition actor could not start yet");
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
        let name = format!("p{partition}");
        let partition_runs = self.ensure_child(&self.source_path, &name, &self.partition);
        stages_run && partition_runs
    }

    fn revoked(&mut self, partition: i32) {
        self.refs.remove(&partition);
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
