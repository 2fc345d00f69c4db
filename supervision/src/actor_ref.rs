//! [`ActorRef`]: a typed, bounded handle on a supervised worker's mailbox.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix::dev::SendError;
use actix::{Message, Recipient};

use crate::path::ActorPath;

/// A message for a worker, as it travels through the actix mailbox.
pub(crate) struct Envelope<M>(pub(crate) M);

impl<M> Message for Envelope<M> {
    type Result = ();
}

/// Sends messages of type `M` to one incarnation of a supervised worker. Sending never waits
/// and never queues past the mailbox: a full mailbox hands the message back.
pub struct ActorRef<M: Send + 'static> {
    recipient: Recipient<Envelope<M>>,
    mailbox: Arc<dyn CountedMailbox>,
}

impl<M: Send + 'static> Clone for ActorRef<M> {
    fn clone(&self) -> Self {
        ActorRef {
            recipient: self.recipient.clone(),
            mailbox: Arc::clone(&self.mailbox),
        }
    }
}

impl<M: Send + 'static> fmt::Debug for ActorRef<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("path", self.mailbox.path())
            .field("mailbox_len", &self.mailbox_len())
            .finish()
    }
}

/// Why a message was not sent; either way the message comes back.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<M> {
    /// The mailbox is at capacity: wait for demand and try again.
    Full(M),
    /// This incarnation has stopped: look the path up again after its restart.
    Closed(M),
}

impl<M> TrySendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Full(message) | TrySendError::Closed(message) => message,
        }
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("mailbox full"),
            TrySendError::Closed(_) => f.write_str("actor stopped"),
        }
    }
}

impl<M: fmt::Debug> std::error::Error for TrySendError<M> {}

impl<M: Send + 'static> ActorRef<M> {
    pub(crate) fn new(recipient: Recipient<Envelope<M>>, mailbox: Arc<dyn CountedMailbox>) -> Self {
        ActorRef { recipient, mailbox }
    }

    /// Queues `message` unless the mailbox is full or the actor has stopped.
    pub fn try_send(&self, message: M) -> Result<(), TrySendError<M>> {
        // Count first: the handler may run (and count down) before try_send returns.
        self.mailbox.queued().fetch_add(1, Ordering::Relaxed);
        match self.recipient.try_send(Envelope(message)) {
            Ok(()) => Ok(()),
            Err(error) => {
                self.mailbox.queued().fetch_sub(1, Ordering::Relaxed);
                Err(match error {
                    SendError::Full(Envelope(message)) => TrySendError::Full(message),
                    SendError::Closed(Envelope(message)) => TrySendError::Closed(message),
                })
            }
        }
    }

    /// The worker's path.
    pub fn path(&self) -> &ActorPath {
        self.mailbox.path()
    }

    /// Messages waiting in the mailbox now.
    pub fn mailbox_len(&self) -> usize {
        self.mailbox.queued().load(Ordering::Relaxed)
    }

    /// True while this incarnation can still take messages.
    pub fn is_connected(&self) -> bool {
        self.recipient.connected()
    }
}

/// The crate's own count of a worker's queued messages (actix exposes only the capacity).
pub(crate) trait CountedMailbox: Send + Sync + 'static {
    /// Messages sent and not yet taken by the handler.
    fn queued(&self) -> &AtomicUsize;
    /// The worker's path.
    fn path(&self) -> &ActorPath;
}
