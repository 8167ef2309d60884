//! Any text as a config file: parsing either succeeds or says why it refused it.
#![no_main]

use floodwatch::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(refused) = Config::from_toml(text) {
            assert!(!refused.to_string().is_empty());
        }
    }
});
