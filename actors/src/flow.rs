//! Demand flow control (Reactive Streams / Akka Streams semantics), all of it: the downstream
//! grants demand in records, the upstream never sends more than it was granted. Between actors:
//! each actor's [`inlet`] holds its credit, a [`forwarder`] sends within it, [`outputs`] fan a
//! stage's batches out to its successors (key routing included). Inside one consumer: a bounded
//! [`InputBuffer`] re-requests once half of it is free again. And backpressure from
//! [`memory`]: the bytes in flight against a budget.

mod demand;
pub(crate) mod forwarder;
pub(crate) mod inlet;
mod input_buffer;
pub(crate) mod memory;
pub(crate) mod outputs;

pub(crate) use demand::Demand;
pub(crate) use input_buffer::InputBuffer;
