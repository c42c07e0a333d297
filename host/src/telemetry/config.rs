//! The standard `OTEL_*` environment variables, read once at start-up.
//!
//! The rules are the OpenTelemetry specification's, including the parts the
//! Rust SDK leaves to applications: an empty variable counts as unset,
//! `OTEL_SERVICE_NAME` wins over `service.name` in `OTEL_RESOURCE_ATTRIBUTES`,
//! resource attribute and header values are percent-decoded, and a
//! signal-specific variable (`…_TRACES_…`) wins over the general one. Unlike
//! the specification's "log and fall back", an invalid value is a start-up
//! error naming the variable and the value: a typo in a sampler should not
//! silently record everything.

use std::fmt;
use std::time::Duration;

/// Where OTLP/gRPC goes by default.
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Where OTLP/HTTP goes by default.
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318/v1/traces";
/// How long one export may take by default (`OTEL_EXPORTER_OTLP_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A variable with a value this host cannot use.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The variable's name.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What is wrong and what would be right.
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}=`{}`: {}",
            self.variable, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// Where finished spans go (`OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exporter {
    /// OTLP to a collector.
    Otlp,
    /// The waterfall in the terminal.
    Console,
}

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`, port 4317.
    Grpc,
    /// `http/protobuf`, port 4318.
    HttpProtobuf,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        })
    }
}

/// The sampler (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio` with its ratio.
    TraceIdRatio(f64),
    /// `parentbased_*`: the parent's decision, else the root sampler.
    ParentBased(Root),
}

/// The sampler for root spans of a parent-based sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    /// `parentbased_always_on` (the default sampler).
    AlwaysOn,
    /// `parentbased_always_off`.
    AlwaysOff,
    /// `parentbased_traceidratio`.
    TraceIdRatio(f64),
}

impl fmt::Display for Sampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sampler::AlwaysOn => write!(f, "always_on"),
            Sampler::AlwaysOff => write!(f, "always_off"),
            Sampler::TraceIdRatio(r) => write!(f, "traceidratio({r})"),
            Sampler::ParentBased(Root::AlwaysOn) => write!(f, "parentbased_always_on"),
            Sampler::ParentBased(Root::AlwaysOff) => write!(f, "parentbased_always_off"),
            Sampler::ParentBased(Root::TraceIdRatio(r)) => {
                write!(f, "parentbased_traceidratio({r})")
            }
        }
    }
}

/// A propagator (`OTEL_PROPAGATORS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagator {
    /// W3C Trace Context.
    TraceContext,
    /// W3C Baggage.
    Baggage,
}

/// The span limits (`OTEL_SPAN_*_LIMIT`, `OTEL_ATTRIBUTE_*_LIMIT`,
/// `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`): what is cut is counted in the span's
/// dropped counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Attributes per span.
    pub attribute_count: u32,
    /// Characters per string attribute value (each string of an array);
    /// `None`: no limit.
    pub attribute_value_length: Option<usize>,
    /// Events per span.
    pub event_count: u32,
    /// Attributes per event.
    pub event_attribute_count: u32,
}

/// The specification's default count limit.
pub const DEFAULT_COUNT_LIMIT: u32 = 128;

/// Everything the `OTEL_*` variables say.
#[derive(Debug, Clone, PartialEq)]
pub struct OtelConfig {
    /// `OTEL_SDK_DISABLED=true`: no spans, no exporters, no injection.
    pub disabled: bool,
    /// `OTEL_SERVICE_NAME`.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`, percent-decoded, in order.
    pub resource_attributes: Vec<(String, String)>,
    /// `OTEL_TRACES_EXPORTER`; empty for `none`.
    pub exporters: Vec<Exporter>,
    /// Whether `OTEL_TRACES_EXPORTER` was set (rather than defaulted).
    pub exporters_chosen: bool,
    /// The OTLP transport.
    pub protocol: Protocol,
    /// The OTLP URL spans are sent to (for HTTP, including `/v1/traces`).
    pub endpoint: String,
    /// Extra OTLP request headers (gRPC metadata), percent-decoded.
    pub headers: Vec<(String, String)>,
    /// How long one export may take.
    pub timeout: Duration,
    /// The sampler.
    pub sampler: Sampler,
    /// The propagators, in order; empty for `none`.
    pub propagators: Vec<Propagator>,
    /// Span limits.
    pub limits: Limits,
}

impl OtelConfig {
    /// Reads the configuration from the process environment.
    pub fn from_process_env() -> Result<OtelConfig, ConfigError> {
        OtelConfig::from_env(|key| std::env::var(key).ok())
    }

    /// Reads the configuration through `env`, which returns a variable's value.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<OtelConfig, ConfigError> {
        // The specification: an empty value is the same as unset.
        let get = |key: &str| env(key).filter(|value| !value.trim().is_empty());
        let error = |variable: &'static str, value: &str, expected: &str| ConfigError {
            variable,
            value: value.to_string(),
            expected: expected.to_string(),
        };

        let disabled = match get("OTEL_SDK_DISABLED") {
            None => false,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(error(
                        "OTEL_SDK_DISABLED",
                        &value,
                        "expected `true` or `false`",
                    ));
                }
            },
        };

        let resource_attributes = match get("OTEL_RESOURCE_ATTRIBUTES") {
            None => Vec::new(),
            Some(value) => parse_pairs(&value).ok_or_else(|| {
                error(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    &value,
                    "expected comma-separated key=value pairs with percent-encoded values",
                )
            })?,
        };

        let exporters = match get("OTEL_TRACES_EXPORTER") {
            None => vec![Exporter::Otlp],
            Some(value) => {
                let mut exporters = Vec::new();
                for name in value.split(',').map(str::trim) {
                    let exporter = match name {
                        "otlp" => Exporter::Otlp,
                        "console" => Exporter::Console,
                        "none" => continue,
                        _ => {
                            return Err(error(
                                "OTEL_TRACES_EXPORTER",
                                &value,
                                &format!(
                                    "unknown exporter `{name}`; expected `otlp`, `console` or `none`, comma-separated"
                                ),
                            ));
                        }
                    };
                    if !exporters.contains(&exporter) {
                        exporters.push(exporter);
                    }
                }
                exporters
            }
        };

        let (protocol_variable, protocol_value) = first_set(
            &get,
            [
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
            ],
        );
        let protocol = match protocol_value.as_deref().map(str::trim) {
            None | Some("grpc") => Protocol::Grpc,
            Some("http/protobuf") => Protocol::HttpProtobuf,
            Some(other) => {
                return Err(error(
                    protocol_variable,
                    other,
                    "expected `grpc` or `http/protobuf` (`http/json` is not supported)",
                ));
            }
        };

        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            // The signal-specific URL is used as it is.
            (Some(url), _) => check_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)?,
            // The general one is a base: HTTP appends the signal's path.
            (None, Some(base)) => {
                let base = check_url("OTEL_EXPORTER_OTLP_ENDPOINT", base)?;
                match protocol {
                    Protocol::Grpc => base,
                    Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
                }
            }
            (None, None) => match protocol {
                Protocol::Grpc => DEFAULT_GRPC_ENDPOINT.to_string(),
                Protocol::HttpProtobuf => DEFAULT_HTTP_ENDPOINT.to_string(),
            },
        };

        let (headers_variable, headers_value) = first_set(
            &get,
            [
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ],
        );
        let headers = match headers_value {
            None => Vec::new(),
            Some(value) => parse_pairs(&value).ok_or_else(|| {
                error(
                    headers_variable,
                    &value,
                    "expected comma-separated key=value pairs with percent-encoded values",
                )
            })?,
        };

        let (timeout_variable, timeout_value) = first_set(
            &get,
            [
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ],
        );
        let timeout = match timeout_value {
            None => DEFAULT_TIMEOUT,
            Some(value) => match value.trim().parse::<u64>() {
                Ok(ms) => Duration::from_millis(ms),
                Err(_) => {
                    return Err(error(
                        timeout_variable,
                        &value,
                        "expected a whole number of milliseconds",
                    ));
                }
            },
        };

        let ratio = || -> Result<f64, ConfigError> {
            match get("OTEL_TRACES_SAMPLER_ARG") {
                None => Ok(1.0),
                Some(value) => match value.trim().parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(error(
                        "OTEL_TRACES_SAMPLER_ARG",
                        &value,
                        "expected a sampling ratio between 0 and 1",
                    )),
                },
            }
        };
        let sampler = match get("OTEL_TRACES_SAMPLER").as_deref().map(str::trim) {
            None | Some("parentbased_always_on") => Sampler::ParentBased(Root::AlwaysOn),
            Some("always_on") => Sampler::AlwaysOn,
            Some("always_off") => Sampler::AlwaysOff,
            Some("traceidratio") => Sampler::TraceIdRatio(ratio()?),
            Some("parentbased_always_off") => Sampler::ParentBased(Root::AlwaysOff),
            Some("parentbased_traceidratio") => Sampler::ParentBased(Root::TraceIdRatio(ratio()?)),
            Some(other) => {
                return Err(error(
                    "OTEL_TRACES_SAMPLER",
                    other,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                ));
            }
        };

        let propagators = match get("OTEL_PROPAGATORS") {
            None => vec![Propagator::TraceContext, Propagator::Baggage],
            Some(value) => {
                let mut propagators = Vec::new();
                for name in value.split(',').map(str::trim) {
                    let propagator = match name {
                        "tracecontext" => Propagator::TraceContext,
                        "baggage" => Propagator::Baggage,
                        "none" => continue,
                        _ => {
                            return Err(error(
                                "OTEL_PROPAGATORS",
                                &value,
                                &format!(
                                    "unsupported propagator `{name}`; expected `tracecontext`, `baggage` or `none`"
                                ),
                            ));
                        }
                    };
                    if !propagators.contains(&propagator) {
                        propagators.push(propagator);
                    }
                }
                propagators
            }
        };

        let number = |variables: &[&'static str]| -> Result<Option<u64>, ConfigError> {
            for &variable in variables {
                if let Some(value) = get(variable) {
                    return value.trim().parse::<u64>().map(Some).map_err(|_| {
                        error(variable, &value, "expected a non-negative whole number")
                    });
                }
            }
            Ok(None)
        };
        let count = |variables: &[&'static str]| -> Result<u32, ConfigError> {
            Ok(number(variables)?
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                .unwrap_or(DEFAULT_COUNT_LIMIT))
        };
        let limits = Limits {
            attribute_count: count(&[
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])?,
            attribute_value_length: number(&[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ])?
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            event_count: count(&["OTEL_SPAN_EVENT_COUNT_LIMIT"])?,
            event_attribute_count: count(&[
                "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])?,
        };

        Ok(OtelConfig {
            limits,
            exporters_chosen: get("OTEL_TRACES_EXPORTER").is_some(),
            disabled,
            service_name: get("OTEL_SERVICE_NAME").map(|name| name.trim().to_string()),
            resource_attributes,
            exporters,
            protocol,
            endpoint,
            headers,
            timeout,
            sampler,
            propagators,
        })
    }

    /// `service.name` from the environment: `OTEL_SERVICE_NAME`, else the
    /// one in `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn env_service_name(&self) -> Option<&str> {
        self.service_name.as_deref().or_else(|| {
            self.resource_attributes
                .iter()
                .find(|(key, _)| key == "service.name")
                .map(|(_, value)| value.as_str())
        })
    }

    /// Whether `OTEL_RESOURCE_ATTRIBUTES` sets `key`.
    pub fn sets_resource_attribute(&self, key: &str) -> bool {
        self.resource_attributes.iter().any(|(k, _)| k == key)
    }
}

fn first_set(
    get: &impl Fn(&str) -> Option<String>,
    variables: [&'static str; 2],
) -> (&'static str, Option<String>) {
    for variable in variables {
        if let Some(value) = get(variable) {
            return (variable, Some(value));
        }
    }
    (variables[1], None)
}

fn check_url(variable: &'static str, url: String) -> Result<String, ConfigError> {
    let url = url.trim().to_string();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(url),
        _ => Err(ConfigError {
            variable,
            value: url,
            expected:
                "expected an http:// or https:// URL with a host, such as http://localhost:4317"
                    .to_string(),
        }),
    }
}

/// Parses `key1=value1,key2=value2` (W3C Baggage-like, as the specification
/// says for `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_EXPORTER_OTLP_HEADERS`):
/// keys and values trimmed, values percent-decoded. `None` if malformed.
pub fn parse_pairs(value: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for member in value.split(',') {
        if member.trim().is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        let key = key.trim();
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '%') {
            return None;
        }
        pairs.push((key.to_string(), percent_decode(value.trim())?));
    }
    Some(pairs)
}

/// Decodes `%XX` escapes; `None` for a broken escape or invalid UTF-8.
pub fn percent_decode(value: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<OtelConfig, ConfigError> {
        OtelConfig::from_env(|key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    /// With nothing set: OTLP/gRPC to localhost:4317, parent-based
    /// always-on, tracecontext and baggage, 10 s timeout.
    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert!(!c.disabled);
        assert_eq!(c.exporters, vec![Exporter::Otlp]);
        assert_eq!(c.protocol, Protocol::Grpc);
        assert_eq!(c.endpoint, "http://localhost:4317");
        assert_eq!(c.timeout, Duration::from_secs(10));
        assert_eq!(c.sampler, Sampler::ParentBased(Root::AlwaysOn));
        assert_eq!(
            c.propagators,
            vec![Propagator::TraceContext, Propagator::Baggage]
        );
    }

    /// An empty variable is the same as an unset one.
    #[test]
    fn empty_is_unset() {
        let empty = config(&[
            ("OTEL_SDK_DISABLED", ""),
            ("OTEL_TRACES_EXPORTER", ""),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", " "),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            ("OTEL_TRACES_SAMPLER", ""),
            ("OTEL_PROPAGATORS", ""),
            ("OTEL_SERVICE_NAME", ""),
        ])
        .unwrap();
        assert_eq!(empty, config(&[]).unwrap());
    }

    /// OTEL_SDK_DISABLED is case-insensitive `true`/`false`; anything else is an error.
    #[test]
    fn sdk_disabled() {
        assert!(config(&[("OTEL_SDK_DISABLED", "TRUE")]).unwrap().disabled);
        assert!(!config(&[("OTEL_SDK_DISABLED", "false")]).unwrap().disabled);
        let e = config(&[("OTEL_SDK_DISABLED", "yes")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid OTEL_SDK_DISABLED=`yes`: expected `true` or `false`"
        );
    }

    /// OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES,
    /// whose values are percent-decoded.
    #[test]
    fn service_name_and_resource_attributes() {
        let c = config(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=from-attrs,team=pay%20ments, deployment.environment.name = prod%2Ceu ",
        )])
        .unwrap();
        assert_eq!(c.env_service_name(), Some("from-attrs"));
        assert_eq!(
            c.resource_attributes,
            vec![
                ("service.name".to_string(), "from-attrs".to_string()),
                ("team".to_string(), "pay ments".to_string()),
                (
                    "deployment.environment.name".to_string(),
                    "prod,eu".to_string()
                ),
            ]
        );
        let c = config(&[
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ])
        .unwrap();
        assert_eq!(c.env_service_name(), Some("from-env"));
        for bad in ["novalue", "a=%zz", "=x", "a=%ff"] {
            let e = config(&[("OTEL_RESOURCE_ATTRIBUTES", bad)]).unwrap_err();
            assert_eq!(e.variable, "OTEL_RESOURCE_ATTRIBUTES", "{bad}");
        }
    }

    /// Exporters: a comma-separated list of otlp, console, none.
    #[test]
    fn traces_exporter() {
        let c = config(&[("OTEL_TRACES_EXPORTER", "console, otlp")]).unwrap();
        assert_eq!(c.exporters, vec![Exporter::Console, Exporter::Otlp]);
        assert!(
            config(&[("OTEL_TRACES_EXPORTER", "none")])
                .unwrap()
                .exporters
                .is_empty()
        );
        let e = config(&[("OTEL_TRACES_EXPORTER", "otlp,zipkin")]).unwrap_err();
        assert!(e.to_string().contains("unknown exporter `zipkin`"), "{e}");
    }

    /// The protocol picks the default port; the traces variable wins; the
    /// general endpoint gets `/v1/traces` for HTTP, the traces one is kept.
    #[test]
    fn protocol_and_endpoint() {
        let c = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]).unwrap();
        assert_eq!(
            (c.protocol, c.endpoint.as_str()),
            (Protocol::HttpProtobuf, "http://localhost:4318/v1/traces")
        );
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://collector:4318/v1/traces");
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/custom"),
        ])
        .unwrap();
        assert_eq!(c.endpoint, "http://b:2/custom");
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")]).unwrap();
        assert_eq!(c.endpoint, "http://c:4317");
        let e = config(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]).unwrap_err();
        assert!(
            e.to_string().contains("`http/json` is not supported"),
            "{e}"
        );
        let e = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    /// Headers are percent-decoded pairs; the traces variable wins. Timeout
    /// is milliseconds.
    #[test]
    fn headers_and_timeout() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "api-key=a%3Db,x-tenant=t1",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ])
        .unwrap();
        assert_eq!(
            c.headers,
            vec![
                ("api-key".to_string(), "a=b".to_string()),
                ("x-tenant".to_string(), "t1".to_string())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        let e = config(&[("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
    }

    /// Samplers by name, ratios checked.
    #[test]
    fn sampler() {
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ])
        .unwrap();
        assert_eq!(c.sampler, Sampler::ParentBased(Root::TraceIdRatio(0.25)));
        assert_eq!(
            config(&[("OTEL_TRACES_SAMPLER", "traceidratio")])
                .unwrap()
                .sampler,
            Sampler::TraceIdRatio(1.0)
        );
        assert_eq!(
            config(&[("OTEL_TRACES_SAMPLER", "always_off")])
                .unwrap()
                .sampler,
            Sampler::AlwaysOff
        );
        let e = config(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "1.5"),
        ])
        .unwrap_err();
        assert_eq!(e.variable, "OTEL_TRACES_SAMPLER_ARG");
        let e = config(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_TRACES_SAMPLER");
    }

    /// Span limits: the span-specific variable wins over the general one;
    /// defaults 128 and no value-length limit; invalid values are errors.
    #[test]
    fn span_limits() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.limits,
            Limits {
                attribute_count: 128,
                attribute_value_length: None,
                event_count: 128,
                event_attribute_count: 128
            }
        );
        let c = config(&[
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "10"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "5"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "16"),
            ("OTEL_SPAN_EVENT_COUNT_LIMIT", "3"),
        ])
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                attribute_count: 5,
                attribute_value_length: Some(16),
                event_count: 3,
                event_attribute_count: 10
            }
        );
        let e = config(&[("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-1")]).unwrap_err();
        assert_eq!(e.variable, "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT");
    }

    /// Propagators: tracecontext, baggage, none.
    #[test]
    fn propagators() {
        assert_eq!(
            config(&[("OTEL_PROPAGATORS", "baggage")])
                .unwrap()
                .propagators,
            vec![Propagator::Baggage]
        );
        assert!(
            config(&[("OTEL_PROPAGATORS", "none")])
                .unwrap()
                .propagators
                .is_empty()
        );
        let e = config(&[("OTEL_PROPAGATORS", "tracecontext,b3")]).unwrap_err();
        assert!(e.to_string().contains("unsupported propagator `b3`"), "{e}");
    }

    /// An escape is `%` and two hex digits, nothing else: a sign is not a
    /// digit (found while writing the fuzz target `baggage`'s properties).
    #[test]
    fn percent_escapes_are_two_hex_digits() {
        assert_eq!(percent_decode("a%20b%2C").as_deref(), Some("a b,"));
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%-1"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
    }
}
