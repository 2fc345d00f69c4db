//! Reading a sink's JSON-lines file while the sink may still be writing it: only whole lines
//! (ending in a newline) count; a torn last line is left for the next read.

use std::path::Path;

/// The whole lines of the file at `path`, each parsed as JSON (none when the file is missing).
/// Panics naming the line when a whole line is not JSON: the sink wrote something wrong.
pub(crate) fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{}: {line:?} is not JSON: {error}", path.display()))
        })
        .collect()
}
