//! Egress control: a guest's outgoing HTTP is denied unless its destination
//! (scheme, host and port) was granted.
//!
//! A component declares the origins it calls in its `service-info` export
//! (`outbound`), computed once at start-up from its own defaults and the
//! `--env` the operator passed; the operator's `--allow-outbound` replaces
//! that list. The grant is fixed before the first request is accepted, so
//! nothing a request carries (a URL in a body or a query: an SSRF attempt)
//! can widen it.

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

/// One `--allow-outbound` value: an origin, or `none` (grant nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundFlag {
    /// `--allow-outbound http://host:port`.
    Origin(Destination),
    /// `--allow-outbound none`: the component may call nothing, whatever it
    /// declares.
    Nothing,
}

impl OutboundFlag {
    /// Parses `none` or an origin (see [`Destination::parse`]).
    pub fn parse(arg: &str) -> Result<OutboundFlag, String> {
        if arg.trim() == "none" {
            return Ok(OutboundFlag::Nothing);
        }
        Destination::parse(arg).map(OutboundFlag::Origin)
    }
}

/// Where a service's grant came from, said at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantSource {
    /// The component's `service-info` declaration.
    Declared,
    /// The operator's `--allow-outbound`.
    Flag,
}

/// The allowed destinations of a service.
#[derive(Debug, Default)]
pub struct Egress {
    allowed: HashSet<Destination>,
    /// The same origins in the order they were given, for messages.
    listed: Vec<Destination>,
    source: Option<GrantSource>,
    /// Denied destinations already logged, so a busy guest does not flood
    /// the log.
    logged: Mutex<HashSet<Destination>>,
}

impl Egress {
    /// Allows exactly `allowed`.
    pub fn new(allowed: impl IntoIterator<Item = Destination>) -> Egress {
        let mut listed: Vec<Destination> = Vec::new();
        for destination in allowed {
            if !listed.contains(&destination) {
                listed.push(destination);
            }
        }
        Egress {
            allowed: listed.iter().cloned().collect(),
            listed,
            source: None,
            logged: Mutex::new(HashSet::new()),
        }
    }

    /// The grant of the component `service`: the operator's `flags` when
    /// there are any, else the origins the component `declared`. A declared
    /// origin that is not an http(s) URL with a host is an error naming it.
    pub fn grant(
        service: &str,
        declared: &[String],
        flags: &[OutboundFlag],
    ) -> Result<Egress, String> {
        if !flags.is_empty() {
            let origins = flags.iter().filter_map(|flag| match flag {
                OutboundFlag::Origin(destination) => Some(destination.clone()),
                OutboundFlag::Nothing => None,
            });
            let mut egress = Egress::new(origins);
            egress.source = Some(GrantSource::Flag);
            return Ok(egress);
        }
        let origins = declared
            .iter()
            .map(|origin| {
                Destination::parse(origin).map_err(|why| {
                    format!(
                        "`{service}` declares the outbound origin `{origin}` in its service-info, \
                         which the host cannot grant: {why}. Fix the `--env` value it comes from, \
                         or replace the declared list with `--allow-outbound`"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut egress = Egress::new(origins);
        egress.source = Some(GrantSource::Declared);
        Ok(egress)
    }

    /// One line for start-up: what `service` may call, and why.
    pub fn summary(&self, service: &str) -> String {
        let origins = self.origins();
        match (self.source, origins.is_empty()) {
            (Some(GrantSource::Flag), false) => {
                format!("{service}: outbound HTTP granted to {origins} (--allow-outbound)")
            }
            (Some(GrantSource::Flag), true) => {
                format!("{service}: no outbound HTTP (--allow-outbound none)")
            }
            (_, false) => format!(
                "{service}: outbound HTTP granted to {origins} (declared by the component; \
                 --allow-outbound replaces it)"
            ),
            (_, true) => format!(
                "{service}: no outbound HTTP (the component declares none; \
                 --allow-outbound URL grants an origin)"
            ),
        }
    }

    /// The granted origins, comma-separated.
    fn origins(&self) -> String {
        let origins: Vec<String> = self.listed.iter().map(ToString::to_string).collect();
        origins.join(", ")
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
        let message = if self.listed.is_empty() {
            format!(
                "outbound request to {destination} denied: no origin is granted; allow it with \
                 `--allow-outbound {destination}`"
            )
        } else {
            format!(
                "outbound request to {destination} denied: not among the granted origins ({}); \
                 allow it with `--allow-outbound {destination}` (which replaces the granted list: \
                 repeat the flag for each origin needed)",
                self.origins()
            )
        };
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

    /// The component's declaration is the grant unless the operator gives
    /// `--allow-outbound`, which replaces it (`none` grants nothing); a
    /// declared origin the host cannot parse is an error naming it.
    #[test]
    fn grant_comes_from_the_declaration_or_the_flags() {
        let declared = ["http://127.0.0.1:8001/payments".to_string()];
        let allowed = |egress: &Egress, url: &str| egress.check("t", &url.parse().unwrap()).is_ok();

        let egress = Egress::grant("order-api", &declared, &[]).unwrap();
        assert!(allowed(&egress, "http://127.0.0.1:8001/payments"));
        assert!(!allowed(&egress, "http://127.0.0.1:8002/"));
        assert_eq!(
            egress.summary("order-api"),
            "order-api: outbound HTTP granted to http://127.0.0.1:8001 (declared by the \
             component; --allow-outbound replaces it)"
        );

        let flag = OutboundFlag::parse("http://127.0.0.1:9000").unwrap();
        let egress = Egress::grant("order-api", &declared, &[flag]).unwrap();
        assert!(
            !allowed(&egress, "http://127.0.0.1:8001/payments"),
            "replaced, not added"
        );
        assert!(allowed(&egress, "http://127.0.0.1:9000/"));
        assert_eq!(
            egress.summary("order-api"),
            "order-api: outbound HTTP granted to http://127.0.0.1:9000 (--allow-outbound)"
        );

        let nothing = OutboundFlag::parse("none").unwrap();
        let egress = Egress::grant("order-api", &declared, &[nothing]).unwrap();
        assert!(!allowed(&egress, "http://127.0.0.1:8001/payments"));
        assert_eq!(
            egress.summary("order-api"),
            "order-api: no outbound HTTP (--allow-outbound none)"
        );

        let egress = Egress::grant("payment-service", &[], &[]).unwrap();
        assert!(!allowed(&egress, "http://127.0.0.1:8001/"));
        assert!(egress.summary("payment-service").contains("declares none"));

        let error = Egress::grant("order-api", &["payments".to_string()], &[]).unwrap_err();
        assert!(
            error.contains("`order-api` declares the outbound origin `payments`"),
            "{error}"
        );
    }
}
