//! `traceparent` on the first line, `tracestate` fields on the others: accepted exactly by the grammar, re-serialised canonically.
//! The properties live in the library, shared with the corpus test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    host::fuzzing::trace_context(data);
});
