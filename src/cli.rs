//! The commands of the `streamvisor` binary, one module each, and their exit codes.

pub mod admin;
pub mod produce;
pub mod progress;
pub mod run;

/// Runtime failure: an escalation, a shutdown deadline passed, a service that did not answer.
pub const EXIT_FAILURE: u8 = 1;
/// Usage or configuration error.
pub const EXIT_CONFIG: u8 = 2;

/// Says `error: ...` on stderr and returns `code`.
pub fn fail(code: u8, error: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {error}");
    std::process::ExitCode::from(code)
}
