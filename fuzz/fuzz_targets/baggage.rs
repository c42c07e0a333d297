//! `baggage` header values: kept within limits, round-trips, guest `set` reads back.
//! The properties live in the library, shared with the corpus test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    host::fuzzing::baggage(data);
});
