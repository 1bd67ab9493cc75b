//! See `switchyard::fuzzing::translate` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::translate(data));
