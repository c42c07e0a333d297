//! Egress control: a guest's outgoing HTTP is denied unless its destination
//! (scheme, host and port) was allowed with `--allow-outbound`.

use std::collections::HashSet;
use std::sync::Mutex;

use hyper::Uri;

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    https: bool,
    host: String,
    port: u16,
}

impl Destination {
    /// Parses `http://host[:port]` or `https://host[:port]` (a path is
    /// ignored: the policy is per origin).
    pub fn parse(url: &str) -> Result<Destination, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("`{url}` is not a URL ({e}): expected http://host[:port]"))?;
        Destination::of(&uri).ok_or_else(|| {
            format!("`{url}` is not an http:// or https:// URL with a host, such as http://127.0.0.1:8001")
        })
    }

    /// The destination of a request's URI.
    pub fn of(uri: &Uri) -> Option<Destination> {
        let https = match uri.scheme_str()? {
            "http" => false,
            "https" => true,
            _ => return None,
        };
        let host = uri.host()?.to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Destination { https, host, port })
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// The allowed destinations of a service.
#[derive(Debug, Default)]
pub struct Egress {
    allowed: HashSet<Destination>,
    /// Denied destinations already logged, so a busy guest does not flood
    /// the log.
    logged: Mutex<HashSet<Destination>>,
}

impl Egress {
    /// Allows exactly `allowed`.
    pub fn new(allowed: impl IntoIterator<Item = Destination>) -> Egress {
        Egress {
            allowed: allowed.into_iter().collect(),
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// `Ok` if a request to `uri` may leave; else the message saying which
    /// flag would allow it (logged once per destination).
    pub fn check(&self, service: &str, uri: &Uri) -> Result<(), String> {
        let Some(destination) = Destination::of(uri) else {
            return Err(format!(
                "outbound request to `{uri}` denied: not an http(s) URL"
            ));
        };
        if self.allowed.contains(&destination) {
            return Ok(());
        }
        let message = format!(
            "outbound request to {destination} denied: allow it with `--allow-outbound {destination}`"
        );
        if let Ok(mut logged) = self.logged.lock()
            && logged.insert(destination)
        {
            eprintln!("{service}: {message}");
        }
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Destinations compare by scheme, host (case-insensitive) and port,
    /// with default ports filled in.
    #[test]
    fn matching() {
        let egress = Egress::new([
            Destination::parse("http://127.0.0.1:8001").unwrap(),
            Destination::parse("https://Pay.Example/api").unwrap(),
        ]);
        let ok = |url: &str| egress.check("t", &url.parse().unwrap()).is_ok();
        assert!(ok("http://127.0.0.1:8001/payments"));
        assert!(ok("https://pay.example:443/x"));
        assert!(!ok("http://127.0.0.1:8002/payments"));
        assert!(!ok("https://127.0.0.1:8001/payments"));
        assert!(!ok("http://pay.example/x"));
        let denied = egress
            .check("t", &"http://10.0.0.1:9/".parse().unwrap())
            .unwrap_err();
        assert!(
            denied.contains("--allow-outbound http://10.0.0.1:9"),
            "{denied}"
        );
        assert!(Destination::parse("ftp://x").is_err());
        assert!(Destination::parse("127.0.0.1:8001").is_err());
    }
}
