#![no_main]
//! The TOML pipeline loader (`PipelineConfig::parse`, its checks and its plan, and
//! `parse_settings` for a graph built in Rust): a file that loads has valid settings and a
//! graph, and an error's message is written without a panic (it looks up the field's line).

use libfuzzer_sys::fuzz_target;
use streamvisor::config::PipelineConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let settings = PipelineConfig::parse_settings(text, "fuzz.toml");
    if let Err(error) = &settings {
        let _ = error.to_string();
    }
    match PipelineConfig::parse(text, "fuzz.toml") {
        Ok(config) => {
            assert!(settings.is_ok(), "a pipeline that loads has valid settings");
            config
                .stages_in_order()
                .expect("a pipeline that loads has a graph");
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
