#![no_main]
//! The body of `POST /api/actors/kill` as the route reads it, then its path as the runtime's
//! kill checks it (`streamvisor::fuzzing::kill_body`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    streamvisor::fuzzing::kill_body(data);
});
