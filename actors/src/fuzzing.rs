//! Entry points for the fuzz targets of `fuzz/` (the `fuzzing` feature): the file sinks' repair
//! of a torn tail, which only this crate reaches, run on fuzzer bytes with the checks its
//! documentation promises. Nothing here is for production use.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::sink::file::JsonLinesFile;
use crate::sink::rolling::{FileFormat, FileLayout, RollingFiles, RollingSettings};

/// Writes a file sink's JSON Lines file holding `contents`, opens it as the sink does when it
/// starts (`JsonLinesFile::open`, which cuts a torn last line off), and checks that it then
/// holds `contents` up to and with its last newline (nothing when it has none).
pub fn file_sink_reopen(contents: &[u8]) {
    let path = scratch().join("file-sink.jsonl");
    std::fs::write(&path, contents).expect("the file written");
    drop(JsonLinesFile::open(&path).expect("the file sink opens its file"));
    let left = std::fs::read(&path).expect("the file read back");
    let whole = whole_lines(contents);
    assert!(
        left == whole,
        "the file sink's repair kept {} of {} bytes, the whole lines are {}",
        left.len(),
        contents.len(),
        whole.len()
    );
}

/// Writes one of a rolling file sink's own files holding `contents`, starts the sink over its
/// folder (`RollingFiles::open`, which cuts a torn tail off its files), and checks what is
/// left: a prefix of `contents` that a second start leaves alone; for JSON Lines, `contents`
/// up to and with its last newline.
pub fn rolling_restart(contents: &[u8], format: FileFormat) {
    let extension = format.extension();
    let folder = scratch().join(format!("rolling-{extension}"));
    std::fs::create_dir_all(&folder).expect("the sink's folder");
    // Named as the sink names its files (`<stem>-<ms>-<n>.<extension>`), so that it repairs it.
    let file = folder.join(format!("part-1-0.{extension}"));
    std::fs::write(&file, contents).expect("the file written");
    let settings = RollingSettings {
        path: folder.join(format!("part.{extension}")),
        format,
        layout: FileLayout::Single,
        max_bytes: None,
        max_age: None,
    };
    let start = || drop(RollingFiles::open(settings.clone()).expect("the rolling sink starts"));

    start();
    let left = std::fs::read(&file).expect("the file read back");
    assert!(
        contents.starts_with(&left),
        "the rolling sink's repair left {} bytes that are not a prefix of the {} written",
        left.len(),
        contents.len()
    );
    if format == FileFormat::JsonLines {
        let whole = whole_lines(contents);
        assert!(
            left == whole,
            "the rolling sink's repair kept {} of {} bytes, the whole lines are {}",
            left.len(),
            contents.len(),
            whole.len()
        );
    }
    start();
    let again = std::fs::read(&file).expect("the file read back");
    assert!(
        again == left,
        "a second start changed the file by {} bytes: the first left a torn record",
        left.len().abs_diff(again.len())
    );
}

/// `contents` up to and with its last newline, or nothing: the whole lines of JSON Lines.
fn whole_lines(contents: &[u8]) -> &[u8] {
    let end = contents
        .iter()
        .rposition(|byte| *byte == b'\n')
        .map_or(0, |newline| newline + 1);
    &contents[..end]
}

/// A folder of this process's own in the temporary folder (`scripts/fuzz.sh` sets `TMPDIR` to a
/// tmpfs, where the repair's fsyncs cost nothing).
fn scratch() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let folder = std::env::temp_dir().join(format!("streamvisor-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&folder).expect("a scratch folder");
        folder
    })
}
