//! W3C Baggage: the `baggage` header, kept member by member as it arrived so
//! that percent-encoding and properties travel on unchanged, within the
//! specification's limits.

/// The most members propagated (the specification's minimum to support).
pub const MAX_MEMBERS: usize = 64;
/// The most bytes of the serialized header propagated.
pub const MAX_BYTES: usize = 8192;

/// One list member: `key=value;property…`, as received (or as a guest set it).
#[derive(Debug, Clone, PartialEq)]
struct Member {
    key: String,
    /// Everything after the key's `=`, trimmed: the encoded value and any
    /// properties, byte for byte.
    rest: String,
}

/// A request's baggage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baggage {
    members: Vec<Member>,
}

/// RFC 7230 `token` characters, the grammar of baggage keys.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_value(s: &str) -> bool {
    s.bytes().all(|b| {
        b == 0x21
            || (0x23..=0x2b).contains(&b)
            || (0x2d..=0x3a).contains(&b)
            || (0x3c..=0x5b).contains(&b)
            || (0x5d..=0x7e).contains(&b)
    })
}

/// A property: `key` or `key=value` (OWS allowed around `=`). OWS is space
/// and tab only: other whitespace (form feed, …) is not a header character.
fn is_property(s: &str) -> bool {
    let ows = [' ', '\t'];
    match s.split_once('=') {
        Some((key, value)) => is_token(key.trim_matches(ows)) && is_value(value.trim_matches(ows)),
        None => is_token(s.trim_matches(ows)),
    }
}

impl Baggage {
    /// Parses every `baggage` header value, in order. Malformed members are
    /// dropped one by one; members beyond the limits are dropped whole.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Baggage {
        let mut baggage = Baggage::default();
        for value in values {
            for member in value.split(',') {
                let member = member.trim_matches([' ', '\t']);
                if member.is_empty() {
                    continue;
                }
                let Some((key, rest)) = member.split_once('=') else {
                    continue;
                };
                let key = key.trim_matches([' ', '\t']);
                let rest = rest.trim_matches([' ', '\t']);
                let mut parts = rest.split(';');
                let value = parts.next().unwrap_or("").trim_matches([' ', '\t']);
                if !is_token(key) || !is_value(value) || !parts.all(is_property) {
                    continue;
                }
                baggage.push(Member {
                    key: key.to_string(),
                    rest: rest.to_string(),
                });
            }
        }
        baggage
    }

    /// Adds `member` if it fits the limits; a later duplicate key replaces
    /// the earlier member.
    fn push(&mut self, member: Member) {
        self.members.retain(|m| m.key != member.key);
        if self.members.len() >= MAX_MEMBERS {
            return;
        }
        let size = self.header().len()
            + usize::from(!self.members.is_empty())
            + member.key.len()
            + 1
            + member.rest.len();
        if size > MAX_BYTES {
            return;
        }
        self.members.push(member);
    }

    /// Sets `key` to `value` (percent-encoded here), replacing an earlier
    /// entry. Returns false, changing nothing, if `key` is not a valid key or
    /// the entry does not fit the limits.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        if !is_token(key) {
            return false;
        }
        let before = self.members.clone();
        self.push(Member {
            key: key.to_string(),
            rest: percent_encode(value),
        });
        if self.members.iter().any(|m| m.key == key) {
            true
        } else {
            self.members = before;
            false
        }
    }

    /// The entries, values percent-decoded (properties left out).
    pub fn entries(&self) -> Vec<(String, String)> {
        self.members
            .iter()
            .map(|m| (m.key.clone(), decode(value_of(&m.rest))))
            .collect()
    }

    /// The decoded value of `key`.
    pub fn get(&self, key: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.key == key)
            .map(|m| decode(value_of(&m.rest)))
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The `baggage` header value.
    pub fn header(&self) -> String {
        let mut out = String::new();
        for (i, member) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&member.key);
            out.push('=');
            out.push_str(&member.rest);
        }
        out
    }
}

fn value_of(rest: &str) -> &str {
    rest.split(';')
        .next()
        .unwrap_or("")
        .trim_matches([' ', '\t'])
}

/// Percent-decodes a value. Octet sequences that are not UTF-8 become
/// U+FFFD (W3C Baggage § value: "MUST be replaced with the replacement code
/// point"); a `%` that does not start a two-hex-digit escape is kept as a
/// `%`, since the specification says nothing of it.
fn decode(value: &str) -> String {
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

/// Percent-encodes everything outside `baggage-octet`, and `%` itself.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let plain = b != b'%' && is_value(std::str::from_utf8(&[b]).unwrap_or(" "));
        if plain {
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

    /// W3C Baggage § value: escapes that are not UTF-8 decode to U+FFFD;
    /// the header itself travels on unchanged.
    #[rustfmt::skip]
    #[test]
    fn invalid_utf8_decodes_to_replacement() {
        let cases = [
            ("a=%FF", "\u{FFFD}"),
            ("a=%C3%A9%FF%41", "\u{e9}\u{FFFD}A"),
            ("a=%C3", "\u{FFFD}"),
            ("a=100%", "100%"),
            ("a=%zz", "%zz"),
            ("a=Am%C3%A9lie", "Am\u{e9}lie"),
        ];
        for (header, decoded) in cases {
            let b = Baggage::parse([header]);
            assert_eq!(b.get("a").as_deref(), Some(decoded), "{header}");
            assert_eq!(b.header(), header);
        }
    }

    /// Members, their encoding and their properties are kept as received;
    /// headers are combined in order; OWS is trimmed.
    #[test]
    fn keeps_members_as_received() {
        let b = Baggage::parse([
            "customer.tier=gold , note=hello%20world;ttl=60;secret",
            "x=1",
        ]);
        assert_eq!(
            b.header(),
            "customer.tier=gold,note=hello%20world;ttl=60;secret,x=1"
        );
        assert_eq!(b.get("note").as_deref(), Some("hello world"));
        assert_eq!(
            b.entries(),
            vec![
                ("customer.tier".into(), "gold".into()),
                ("note".into(), "hello world".into()),
                ("x".into(), "1".into())
            ]
        );
    }

    /// Malformed members are dropped alone; empty members are skipped.
    #[test]
    fn malformed_members_are_dropped() {
        let b = Baggage::parse(["ok=1,,no-equals, bad key=2,quote=\"x\",fine=2;prop=a b"]);
        assert_eq!(b.header(), "ok=1");
        assert!(Baggage::parse([""]).is_empty());
    }

    /// At most 64 members and 8192 bytes: beyond that, whole members go.
    #[test]
    fn limits_drop_whole_members() {
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let b = Baggage::parse([many.join(",").as_str()]);
        assert_eq!(b.entries().len(), MAX_MEMBERS);
        assert_eq!(b.entries()[63].0, "k63");
        let big = format!("a={},b={},c=small", "x".repeat(5000), "y".repeat(5000));
        let b = Baggage::parse([big.as_str()]);
        assert_eq!(
            b.entries()
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert!(b.header().len() <= MAX_BYTES);
    }

    /// Guests' entries are encoded and replace the same key.
    #[test]
    fn set_encodes_and_replaces() {
        let mut b = Baggage::parse(["tier=silver"]);
        assert!(b.set("tier", "gold plus,1"));
        assert!(b.set("region", "eu"));
        assert_eq!(b.header(), "tier=gold%20plus%2C1,region=eu");
        assert_eq!(b.get("tier").as_deref(), Some("gold plus,1"));
        assert!(!b.set("bad key", "x"));
    }
}
