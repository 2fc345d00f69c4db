//! [`WriterFailure`]: why a sink's writer (a task or thread beside the actor) gave up, kept for
//! the actor, which fails with it at its next message.

use std::sync::{Arc, Mutex, PoisonError};

/// Shared by a sink actor and its writer.
#[derive(Clone, Debug, Default)]
pub struct WriterFailure(Arc<Mutex<Option<String>>>);

impl WriterFailure {
    /// The writer gave up, because of `why`.
    pub fn set(&self, why: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// Why the writer gave up, if it did.
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
