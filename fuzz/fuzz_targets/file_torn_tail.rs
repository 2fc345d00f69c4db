#![no_main]
//! Torn-tail repair of the file sinks: a file sink's JSON Lines file reopened, a rolling sink's
//! JSON Lines or MessagePack file at its start (`streamvisor::actors::fuzzing`).
//!
//! Input: the sink (byte 0: file sink, rolling JSON Lines, rolling MessagePack); filler written
//! before the rest, in 8 KiB units (byte 1: up to 2 MiB, past the repairs' 64 KiB chunks and
//! 1 MiB window); for JSON Lines where the filler holds its one newline (byte 2, none at 0), for
//! MessagePack how many bytes past the filler its one record claims (byte 2); then the file's
//! tail.

use libfuzzer_sys::fuzz_target;
use streamvisor::actors::fuzzing::{file_sink_reopen, rolling_restart};
use streamvisor::actors::FileFormat;

fuzz_target!(|data: &[u8]| {
    let [sink, units, place, tail @ ..] = data else {
        return;
    };
    let filler = usize::from(*units) * 8 * 1024;
    let place = usize::from(*place);
    let mut contents = Vec::with_capacity(filler + tail.len());
    match sink % 3 {
        2 if filler > 0 => {
            // One bin 32 record that fills the filler, and claims `place` bytes of the tail.
            let claimed = u32::try_from(filler - 5 + place).expect("under 4 GiB");
            contents.push(0xc6);
            contents.extend_from_slice(&claimed.to_be_bytes());
            contents.resize(filler, 0);
        }
        2 => {}
        _ => {
            contents.resize(filler, b'x');
            if filler > 0 && place > 0 {
                contents[filler * place / 256] = b'\n';
            }
        }
    }
    contents.extend_from_slice(tail);
    match sink % 3 {
        0 => file_sink_reopen(&contents),
        1 => rolling_restart(&contents, FileFormat::JsonLines),
        _ => rolling_restart(&contents, FileFormat::MessagePack),
    }
});
