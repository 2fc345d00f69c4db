#![no_main]
//! A socket ingest's length-prefixed MessagePack framing: a client's bytes cut into frames as a
//! connection does, each decoded as the ingest does (`streamvisor::fuzzing::socket`, which says
//! how the input chooses the read buffer and the record limit).

use libfuzzer_sys::fuzz_target;
use streamvisor::config::Framing;

fuzz_target!(|data: &[u8]| {
    streamvisor::fuzzing::socket(Framing::Msgpack, data);
});
