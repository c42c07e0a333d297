//! An incoming request's line and headers: extract, server span, inject.
//! The properties live in the library, shared with the corpus test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    host::fuzzing::headers(data);
});
