//! The commands of the `streamvisor` binary, one module each, and their exit codes.

pub(crate) mod admin;
pub(crate) mod allocator;
pub(crate) mod produce;
pub(crate) mod progress;
pub(crate) mod run;

/// Runtime failure: an escalation, a shutdown deadline passed, a service that did not answer.
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Usage or configuration error.
pub(crate) const EXIT_CONFIG: u8 = 2;

/// Says `error: ...` on stderr and returns `code`.
pub(crate) fn fail(code: u8, error: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {error}");
    std::process::ExitCode::from(code)
}
