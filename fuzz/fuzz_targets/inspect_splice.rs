//! See `switchyard::fuzzing::inspect_and_splice` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::inspect_and_splice(data));
