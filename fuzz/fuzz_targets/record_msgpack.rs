#![no_main]
//! MessagePack records: a Kafka source's format check (`Format::Msgpack`, with its nesting
//! limit) and the ingest's MessagePack decoding (`streamvisor::fuzzing::ingest_msgpack`).

use libfuzzer_sys::fuzz_target;
use streamvisor::actors::Format;

fuzz_target!(|data: &[u8]| {
    let _ = Format::Msgpack.check(data);
    streamvisor::fuzzing::ingest_msgpack(data);
});
