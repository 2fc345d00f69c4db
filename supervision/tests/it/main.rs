//! Integration tests of the supervision crate, one module per behaviour.
#![allow(clippy::print_stdout)]

mod support;

mod arbiters;
mod kill;
mod mailbox;
mod owned;
mod panics;
mod policies;
mod restart_intensity;
mod shutdown;
mod strategies;
mod validation;
