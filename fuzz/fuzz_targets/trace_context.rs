//! `traceparent` on the first line, `tracestate` fields on the others: accepted exactly by the Trace
//! Context draft's grammar (its `key` and `value` ABNF written a second way: any number of `@`,
//! duplicate keys kept), re-serialised canonically.
//! The properties live in the library, shared with the corpus test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    host::fuzzing::trace_context(data);
});
