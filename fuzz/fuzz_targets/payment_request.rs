//! The Payment Service's request (content-type, body): a valid payment or a 415/422 refusal.
//! The properties live in the library, shared with the corpus test.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    otel_guest::fuzzing::payment_request(data);
});
