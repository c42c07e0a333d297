//! The Protocol Buffers wire format, written by hand, for the OTLP message
//! the host writes most: a logs export of its own records, two for every
//! order (see `logs`). Building `opentelemetry-proto`'s `LogRecord`s for
//! them and letting prost encode those cost three allocations a record,
//! then prost's length of every record once for each level it is nested
//! in (four), then the freeing of it all; the hand-written encoding makes
//! one pass for the lengths and one for the bytes. What it writes is what
//! prost writes for the same message, byte for byte (a test in `logs`
//! says so), and [`Encoded`] hands the bytes to tonic as they are.

use bytes::{Buf, BufMut, Bytes};
use prost::encoding::{DecodeContext, WireType};

/// Wire type of varints.
pub const VARINT: u8 = 0;
/// Wire type of 64-bit fixed-width fields.
pub const FIXED64: u8 = 1;
/// Wire type of length-delimited fields (bytes, strings, messages).
pub const LEN: u8 = 2;
/// Wire type of 32-bit fixed-width fields.
pub const FIXED32: u8 = 5;

/// Bytes of `value` as a varint.
pub fn varint_len(value: u64) -> usize {
    // Seven bits a byte; zero takes one.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `value` as a varint.
pub fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends the key of field `field` of wire type `wire`.
pub fn put_key(buf: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(buf, u64::from(field << 3 | u32::from(wire)));
}

/// Bytes of a length-delimited field `field` whose contents take `len`.
pub fn delimited_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(field << 3)) + varint_len(len as u64) + len
}

/// Appends the key and length of a length-delimited field `field` whose
/// contents, `len` bytes, the caller writes next.
pub fn put_header(buf: &mut Vec<u8>, field: u32, len: usize) {
    put_key(buf, field, LEN);
    put_varint(buf, len as u64);
}

/// Appends the length-delimited field `field` holding `bytes`.
pub fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_header(buf, field, bytes.len());
    buf.extend_from_slice(bytes);
}

/// A message already encoded, sent through tonic's prost codec as it is.
#[derive(Debug, Clone, Default)]
pub struct Encoded(pub Bytes);

impl prost::Message for Encoded {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    /// Never decoded: the host only sends these.
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0 = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Varints and their lengths as prost writes them, at each boundary.
    #[test]
    fn varints_as_prost_writes_them() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut ours = Vec::new();
            put_varint(&mut ours, value);
            let mut theirs = Vec::new();
            prost::encoding::encode_varint(value, &mut theirs);
            assert_eq!(ours, theirs, "{value}");
            assert_eq!(varint_len(value), theirs.len(), "{value}");
        }
    }
}
