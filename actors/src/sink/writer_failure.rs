//! [`WriterFailure`]: why a sink's writer (a task or thread beside the actor) gave up, kept for
//! the actor, which fails with it at its next message; and [`forward`], the actor's side of
//! such a sink: hand batches to the writer, or fail.

use std::sync::{Arc, Mutex, PoisonError};

use streamvisor_supervision::Failure;

use crate::flow::inlet::StageMessage;
use crate::record::Batch;

/// The channel to a writer (a tokio task's or a thread's).
pub trait WriterInbox {
    /// Hands `batch` over; false once the writer is gone.
    fn hand_over(&self, batch: Batch) -> bool;
}

impl WriterInbox for tokio::sync::mpsc::UnboundedSender<Batch> {
    fn hand_over(&self, batch: Batch) -> bool {
        self.send(batch).is_ok()
    }
}

impl WriterInbox for std::sync::mpsc::Sender<Batch> {
    fn hand_over(&self, batch: Batch) -> bool {
        self.send(batch).is_ok()
    }
}

/// Handles `message` for a sink actor whose `writer` does the writing: fails with the writer's
/// reason once it gave up (`writer` names it when it gave none), else hands batches over.
pub fn forward(
    failure: &WriterFailure,
    inbox: Option<&impl WriterInbox>,
    message: StageMessage,
    writer: &str,
) -> Result<(), Failure> {
    if let Some(why) = failure.get() {
        return Err(Failure::new(why));
    }
    if let StageMessage::Batch(batch) = message {
        if !inbox.is_some_and(|inbox| inbox.hand_over(batch)) {
            return Err(Failure::new(
                failure
                    .get()
                    .unwrap_or_else(|| format!("the {writer} ended")),
            ));
        }
    }
    Ok(())
}

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
