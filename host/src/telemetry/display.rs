//! How the host shows a trace to a person: the link to it in Jaeger and
//! durations, the same in the request log and in the terminal waterfall.

use std::fmt::Write;
use std::time::Duration;

/// Where Jaeger's UI shows a trace.
pub const JAEGER_TRACE_URL: &str = "http://localhost:16686/trace/";

/// `0.05ms`, `12.35ms`, `1.20s`.
pub fn duration(d: Duration) -> String {
    let mut out = String::with_capacity(10);
    write_duration(&mut out, d);
    out
}

/// Appends `d` as [`duration`] writes it, rounded to the nearest hundredth
/// of its unit; whole-number arithmetic, as the request log writes one for
/// every request.
pub fn write_duration(out: &mut impl Write, d: Duration) {
    let nanos = d.as_nanos();
    // Hundredths of a millisecond, and of a second.
    let ms = (nanos + 5_000) / 10_000;
    let (hundredths, unit) = if ms >= 100_000 {
        ((nanos + 5_000_000) / 10_000_000, "s")
    } else {
        (ms, "ms")
    };
    let whole = hundredths / 100;
    let cents = (hundredths % 100) as u8;
    if whole < 1_000_000 {
        push_decimal(out, whole as u32);
    } else {
        let _ = write!(out, "{whole}");
    }
    let _ = out.write_str(".");
    let _ = out.write_char(char::from(b'0' + cents / 10));
    let _ = out.write_char(char::from(b'0' + cents % 10));
    let _ = out.write_str(unit);
}

/// Appends what a request did, as its log line and its log record say it:
/// method, path, status and time (`POST /orders 201 1.05ms`).
pub fn write_request_summary(
    out: &mut String,
    method: &str,
    path: &str,
    status: u16,
    took: Duration,
) {
    for part in [method, " ", path, " "] {
        out.push_str(part);
    }
    push_decimal(out, u32::from(status));
    out.push(' ');
    write_duration(out, took);
}

/// Appends `n` in decimal, without the formatting machinery.
fn push_decimal(out: &mut impl Write, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &digit in &digits[at..] {
        let _ = out.write_char(char::from(digit));
    }
}

/// Appends `bytes` as lowercase hex digits (an id as W3C Trace Context
/// writes it).
pub fn write_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (byte, pair) in chunk.iter().zip(buf.chunks_exact_mut(2)) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0xf)];
        }
        // Only ASCII digits were written.
        out.push_str(std::str::from_utf8(&buf[..chunk.len() * 2]).unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_rounded_to_hundredths_of_their_unit() {
        let cases = [
            (Duration::from_micros(50), "0.05ms"),
            (Duration::from_micros(12_345), "12.35ms"),
            (Duration::from_nanos(4_999), "0.00ms"),
            (Duration::from_micros(999_994), "999.99ms"),
            (Duration::from_micros(999_996), "1.00s"),
            (Duration::from_millis(1_204), "1.20s"),
            (Duration::from_secs(75), "75.00s"),
            (Duration::from_secs(12_345_678), "12345678.00s"),
        ];
        for (d, text) in cases {
            assert_eq!(duration(d), text, "{d:?}");
        }
    }

    #[test]
    fn hex_is_lowercase_and_zero_padded() {
        let mut out = String::new();
        write_hex(&mut out, &[0x00, 0x0a, 0xff, 0x4b]);
        assert_eq!(out, "000aff4b");
        let long: Vec<u8> = (0..40).collect();
        let mut out = String::new();
        write_hex(&mut out, &long);
        let expected: String = long.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, expected);
    }
}
