//! Panic messages as log lines: supervised actors panic on purpose (kills in `panic` mode) and by
//! accident; either way their supervisor handles it, so the default hook's stderr dump (with a
//! backtrace) is noise. This hook logs one line through `tracing` instead.

use std::panic::PanicHookInfo;

/// Replaces the process's panic hook with one that logs a line per panic: `info` for kills in
/// `panic` mode, `error` (with the location) for the rest. Process-global: call it once, from a
/// binary's `main` (or a test binary that kills on purpose).
pub fn log_panics_to_tracing() {
    std::panic::set_hook(Box::new(|info: &PanicHookInfo<'_>| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("a panic with a non-string payload");
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        if message.starts_with("killed by request") {
            tracing::info!(thread, "{message}");
        } else {
            let location = info
                .location()
                .map(|location| format!("{}:{}", location.file(), location.line()))
                .unwrap_or_default();
            tracing::error!(thread, %location, "panic: {message}");
        }
    }));
}
