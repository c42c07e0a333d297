//! Percent-encoding as the W3C Baggage specification and the `OTEL_*`
//! key=value lists (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`)
//! use it: `%` and two hex digits, UTF-8 underneath.

/// Decodes `%XX` escapes; `None` for a broken escape or invalid UTF-8.
pub fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            // Two hex digits exactly: `from_str_radix` alone also takes a
            // sign, and would read `%+1` as byte 1.
            let hex = value
                .get(i + 1..i + 3)
                .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes `%XX` escapes as W3C Baggage values need: octet sequences that
/// are not UTF-8 become U+FFFD (W3C Baggage § value: "MUST be replaced with
/// the replacement code point"); a `%` that does not start a two-hex-digit
/// escape is kept as a `%`, since the specification says nothing of it.
pub fn decode_lossy(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes every byte for which `plain` is false, and `%` itself, as `%XX`
/// (uppercase hex).
pub fn encode(value: &str, plain: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b != b'%' && plain(b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An escape is `%` and two hex digits, nothing else: a sign is not a
    /// digit (found while writing the fuzz target `baggage`'s properties).
    #[test]
    fn percent_escapes_are_two_hex_digits() {
        assert_eq!(decode("a%20b%2C").as_deref(), Some("a b,"));
        assert_eq!(decode("%+1"), None);
        assert_eq!(decode("%-1"), None);
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%e2%82%ac").as_deref(), Some("€"));
    }
}
