//! See `switchyard::fuzzing::usage` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::usage(data));
