//! A supervisor's children in start order: a vector sorted by a key that grows with each
//! addition (compact: no tree nodes per child, which matters at 100,000 children).

use std::sync::Arc;
use std::time::Instant;

use crate::backoff::BackoffState;
use crate::child_control::ChildControl;
use crate::path::ActorPath;
use crate::spec::{ChildSpec, ChildTemplate};

/// One child as its supervisor knows it.
pub(super) struct Slot {
    pub(super) template: Arc<ChildTemplate>,
    pub(super) path: ActorPath,
    /// The handle on its latest incarnation (kept while it waits for a restart).
    pub(super) control: Option<Arc<dyn ChildControl>>,
    pub(super) incarnation: u64,
    pub(super) restarts: u32,
    pub(super) backoff: BackoffState,
    pub(super) state: SlotState,
}

/// Running, or waiting for its restart.
pub(super) enum SlotState {
    Running,
    Pending { due: Instant },
}

impl Slot {
    pub(super) fn new(parent: &ActorPath, spec: &ChildSpec) -> Self {
        Slot {
            template: Arc::clone(&spec.template),
            path: parent.child(&spec.name),
            control: None,
            incarnation: 0,
            restarts: 0,
            backoff: BackoffState::default(),
            state: SlotState::Pending {
                due: Instant::now(),
            },
        }
    }
}

/// Children keyed by start order.
#[derive(Default)]
pub(super) struct Children {
    slots: Vec<(u64, Slot)>,
}

impl Children {
    pub(super) fn from_specs(parent: &ActorPath, specs: &[ChildSpec]) -> Self {
        Children {
            slots: specs
                .iter()
                .enumerate()
                .map(|(key, spec)| (key as u64, Slot::new(parent, spec)))
                .collect(),
        }
    }

    /// Adds a child after all others; `key` must be larger than every key present.
    pub(super) fn push(&mut self, key: u64, slot: Slot) {
        debug_assert!(self.slots.last().is_none_or(|(last, _)| *last < key));
        self.slots.push((key, slot));
    }

    pub(super) fn get(&self, key: u64) -> Option<&Slot> {
        let index = self.index(key)?;
        Some(&self.slots[index].1)
    }

    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut Slot> {
        let index = self.index(key)?;
        Some(&mut self.slots[index].1)
    }

    pub(super) fn remove(&mut self, key: u64) -> Option<Slot> {
        let index = self.index(key)?;
        Some(self.slots.remove(index).1)
    }

    /// Every key, in start order.
    pub(super) fn keys(&self) -> Vec<u64> {
        self.slots.iter().map(|(key, _)| *key).collect()
    }

    /// `key` and every key after it, in start order.
    pub(super) fn keys_from(&self, key: u64) -> Vec<u64> {
        let start = self.slots.partition_point(|(k, _)| *k < key);
        self.slots[start..].iter().map(|(key, _)| *key).collect()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &Slot)> {
        self.slots.iter().map(|(key, slot)| (*key, slot))
    }

    pub(super) fn key_named(&self, name: &str) -> Option<u64> {
        self.iter()
            .find(|(_, slot)| slot.path.name() == name)
            .map(|(key, _)| key)
    }

    pub(super) fn take_all(&mut self) -> Vec<Slot> {
        std::mem::take(&mut self.slots)
            .into_iter()
            .map(|(_, slot)| slot)
            .collect()
    }

    fn index(&self, key: u64) -> Option<usize> {
        self.slots.binary_search_by_key(&key, |(k, _)| *k).ok()
    }
}
