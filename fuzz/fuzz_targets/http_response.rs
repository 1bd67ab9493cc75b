//! See `switchyard::fuzzing::http_response` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::http_response(data));
