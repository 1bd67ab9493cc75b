//! See `switchyard::fuzzing::sse_chunking` for the property checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard::fuzzing::sse_chunking(data));
