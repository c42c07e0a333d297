//! OTLP export over TLS and with gzip, for spans, metrics and logs, over
//! gRPC and HTTP/protobuf: real receivers serving TLS with certificates
//! made here (a test CA, a server certificate for 127.0.0.1, a client
//! certificate), a real host process serving a real component.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::net::TcpListener;

use crate::common::*;

/// A test CA, a server certificate it signed for `127.0.0.1` and
/// `localhost`, and a client certificate it signed; the files the host is
/// pointed at live in `dir`.
struct Pki {
    dir: PathBuf,
    ca: String,
    server: (String, String),
}

impl Pki {
    /// Makes the certificates and writes `ca.pem`, `client.pem` and
    /// `client.key` into a fresh directory named after `name`.
    fn new(name: &str) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wasm-otel test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["host".to_string()]).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "wasm-otel host");
        let client = client_params.signed_by(&client_key, &ca).unwrap();

        let dir = std::env::temp_dir().join(format!("otlp-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();
        Pki {
            dir,
            ca: ca.pem(),
            server: (server.pem(), server_key.serialize_pem()),
        }
    }

    fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// The variables that make the host trust the test CA and, with
    /// `client`, present the client certificate.
    fn env(&self, client: bool) -> Vec<(String, String)> {
        let mut env = vec![(
            "OTEL_EXPORTER_OTLP_CERTIFICATE".to_string(),
            self.path("ca.pem"),
        )];
        if client {
            env.push((
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE".to_string(),
                self.path("client.pem"),
            ));
            env.push((
                "OTEL_EXPORTER_OTLP_CLIENT_KEY".to_string(),
                self.path("client.key"),
            ));
        }
        env
    }

    /// An OTLP/gRPC receiver serving TLS; with `mtls`, one that requires a
    /// client certificate signed by the test CA.
    async fn grpc_receiver(&self, mtls: bool) -> (Receiver, String) {
        let identity = tonic::transport::Identity::from_pem(&self.server.0, &self.server.1);
        let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
        if mtls {
            tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(&self.ca));
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve_grpc(listener, Receiver::default(), Some(tls)).await
    }

    /// An OTLP/HTTP receiver serving TLS; with `mtls`, one that requires a
    /// client certificate signed by the test CA.
    async fn http_receiver(&self, mtls: bool) -> (Receiver, String) {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if mtls {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca.as_bytes()).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(self.server.0.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(self.server.1.as_bytes()).unwrap(),
            )
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Receiver::serve_http(
            listener,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
        .await
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `testbed` exporting spans, metrics and logs to `endpoint` quickly, with
/// `env` on top.
async fn testbed(endpoint: &str, env: &[(String, String)]) -> Host {
    let mut all = vec![
        ("OTEL_BLRP_SCHEDULE_DELAY".to_string(), "100".to_string()),
        ("OTEL_METRIC_EXPORT_INTERVAL".to_string(), "200".to_string()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT".to_string(), "2000".to_string()),
    ];
    all.extend(env.iter().cloned());
    Host::start(
        "testbed",
        endpoint,
        HostOptions {
            env: all,
            ..Default::default()
        },
    )
    .await
}

fn var(key: &str, value: &str) -> (String, String) {
    (key.to_string(), value.to_string())
}

/// Sends GET /print to `host`, stops it (the last metrics and logs go at
/// SIGTERM) and checks that its spans, its metrics and its log lines all
/// reached `receiver`; returns the request's trace id.
async fn every_signal_arrives(receiver: &Receiver, mut host: Host) -> String {
    let reply = send("GET", &host.url("/print"), &[], "").await;
    assert_eq!(reply.status, 200);
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 2).await;
    assert_eq!(
        find(&spans, "testbed", "work").parent_id(),
        find(&spans, "testbed", "GET /print").span_id()
    );
    assert!(host.terminate().await.success());
    let lines: Vec<String> = receiver
        .logs()
        .into_iter()
        .filter(|log| log.trace_id() == trace_id && log.scope == "wasm-otel-guest")
        .map(|log| log.body())
        .collect();
    assert_eq!(lines.len(), 4, "the guest's four lines: {lines:?}");
    let requests = receiver.histogram("testbed", "http.server.request.duration");
    assert_eq!(requests.iter().map(|p| p.count).sum::<u64>(), 1);
    trace_id
}

/// The signals of every export the receiver saw, each once.
fn signals(receiver: &Receiver) -> Vec<&'static str> {
    let mut signals: Vec<&'static str> = receiver
        .exports
        .lock()
        .unwrap()
        .iter()
        .map(|(signal, _)| *signal)
        .collect();
    signals.sort();
    signals.dedup();
    signals
}

/// Spans, metrics and logs reach a TLS gRPC receiver at an `https://`
/// endpoint whose certificate the test CA signed
/// (`OTEL_EXPORTER_OTLP_CERTIFICATE`).
#[tokio::test]
async fn every_signal_over_grpc_with_tls() {
    let pki = Pki::new("grpc");
    let (receiver, endpoint) = pki.grpc_receiver(false).await;
    assert!(endpoint.starts_with("https://"));
    let host = testbed(&endpoint, &pki.env(false)).await;
    every_signal_arrives(&receiver, host).await;
    assert_eq!(signals(&receiver), ["logs", "metrics", "traces"]);
}

/// Spans, metrics and logs reach an HTTPS OTLP/HTTP receiver at its
/// `/v1/…` paths, each signal over one connection kept alive between its
/// exports (one TLS handshake each, not one per export).
#[tokio::test]
async fn every_signal_over_http_with_tls() {
    let pki = Pki::new("http");
    let (receiver, base) = pki.http_receiver(false).await;
    assert!(base.starts_with("https://"));
    let mut env = pki.env(false);
    env.push(var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"));
    let host = testbed(&base, &env).await;
    every_signal_arrives(&receiver, host).await;
    assert_eq!(signals(&receiver), ["logs", "metrics", "traces"]);
    let exports = receiver.exports.lock().unwrap().len();
    let connections = receiver
        .connections
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections <= 3 && exports > connections,
        "{exports} exports over {connections} connections"
    );
}

/// Checks that a receiver requiring a client certificate refuses every
/// signal of a host that has none: requests are still served, each
/// signal's failure is said on stderr (the spans' with the TLS alert), and
/// the undelivered spans are counted at shutdown.
async fn refused_without_a_client_certificate(
    receiver: &Receiver,
    endpoint: &str,
    env: &[(String, String)],
) {
    let mut host = testbed(endpoint, env).await;
    for _ in 0..3 {
        assert_eq!(send("GET", &host.url("/print"), &[], "").await.status, 200);
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let wanted = [
        "spans are not reaching the collector",
        "metrics export to",
        "logs export to",
    ];
    loop {
        let stderr = host.stderr.lock().unwrap().clone();
        if wanted.iter().all(|text| stderr.contains(text)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stderr never said every signal fails:\n{stderr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stderr = host.stderr.lock().unwrap().clone();
    let spans_line = stderr
        .lines()
        .find(|line| line.contains("spans are not reaching the collector"))
        .unwrap();
    // In TLS 1.3 the server checks the client's certificate after the
    // client has finished its handshake and may already be writing: the
    // alert then races the first write, and gRPC's connection can see its
    // stream broken before it reads the alert. Either way the report names
    // the transport's failure, never a served export.
    assert!(
        spans_line.contains("CertificateRequired")
            || spans_line.contains("broken pipe")
            || spans_line.contains("connection"),
        "the report says why: {spans_line}"
    );
    assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    assert!(host.terminate().await.success());
    let stderr = host.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("span(s) could not be delivered to the collector at"),
        "{stderr}"
    );
    assert!(receiver.spans().is_empty());
    assert!(receiver.logs().is_empty());
}

/// A gRPC receiver requiring mutual TLS takes every signal from a host
/// with `OTEL_EXPORTER_OTLP_CLIENT_KEY` and `…_CLIENT_CERTIFICATE`, and
/// refuses a host without them, which keeps serving and reports the
/// undelivered spans.
#[tokio::test]
async fn mutual_tls_over_grpc() {
    let pki = Pki::new("mtls-grpc");
    let (refusing, endpoint) = pki.grpc_receiver(true).await;
    refused_without_a_client_certificate(&refusing, &endpoint, &pki.env(false)).await;

    let (receiver, endpoint) = pki.grpc_receiver(true).await;
    let host = testbed(&endpoint, &pki.env(true)).await;
    every_signal_arrives(&receiver, host).await;
}

/// [`mutual_tls_over_grpc`], over HTTP/protobuf.
#[tokio::test]
async fn mutual_tls_over_http() {
    let pki = Pki::new("mtls-http");
    let protocol = var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
    let (refusing, base) = pki.http_receiver(true).await;
    let mut env = pki.env(false);
    env.push(protocol.clone());
    refused_without_a_client_certificate(&refusing, &base, &env).await;

    let (receiver, base) = pki.http_receiver(true).await;
    let mut env = pki.env(true);
    env.push(protocol);
    let host = testbed(&base, &env).await;
    every_signal_arrives(&receiver, host).await;
}

/// The value of `header` on every export the receiver saw, by signal.
fn encodings(receiver: &Receiver, header: &str) -> Vec<(&'static str, String)> {
    receiver
        .exports
        .lock()
        .unwrap()
        .iter()
        .map(|(signal, headers)| {
            let value = headers
                .get(header)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (*signal, value)
        })
        .collect()
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` over gRPC: every export of every
/// signal arrives with `grpc-encoding: gzip` and decodes to the request's
/// spans, log lines and metric points.
#[tokio::test]
async fn gzip_over_grpc() {
    let pki = Pki::new("gzip-grpc");
    let (receiver, endpoint) = pki.grpc_receiver(false).await;
    let mut env = pki.env(false);
    env.push(var("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"));
    let host = testbed(&endpoint, &env).await;
    every_signal_arrives(&receiver, host).await;
    let seen = encodings(&receiver, "grpc-encoding");
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|(_, value)| value == "gzip"), "{seen:?}");
    assert_eq!(signals(&receiver), ["logs", "metrics", "traces"]);
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` over HTTP/protobuf: every export
/// arrives with `Content-Encoding: gzip` and decodes to the same spans,
/// log lines and points; a per-signal `none` wins for that signal.
#[tokio::test]
async fn gzip_over_http() {
    let pki = Pki::new("gzip-http");
    let (receiver, base) = pki.http_receiver(false).await;
    let mut env = pki.env(false);
    env.push(var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"));
    env.push(var("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"));
    env.push(var("OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "none"));
    let host = testbed(&base, &env).await;
    every_signal_arrives(&receiver, host).await;
    let seen = encodings(&receiver, "content-encoding");
    for (signal, value) in &seen {
        let expected = if *signal == "metrics" { "" } else { "gzip" };
        assert_eq!(value, expected, "{signal}: {seen:?}");
    }
    assert_eq!(signals(&receiver), ["logs", "metrics", "traces"]);
}

/// A CA file that does not exist stops start-up, naming the variable and
/// the path and saying what to do; so does an invalid compression.
#[tokio::test]
async fn unusable_tls_files_and_compression_stop_startup() {
    let missing = Path::new("/nonexistent/otlp-ca.pem").display().to_string();
    // (variables, what stderr says)
    #[rustfmt::skip]
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("OTEL_EXPORTER_OTLP_CERTIFICATE", &missing)], "cannot read OTEL_EXPORTER_OTLP_CERTIFICATE=`/nonexistent/otlp-ca.pem`: point it at a readable PEM file"),
        (&[("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", &missing)], "cannot read OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE=`/nonexistent/otlp-ca.pem`"),
        (&[("OTEL_EXPORTER_OTLP_CLIENT_KEY", "/k.pem")], "invalid OTEL_EXPORTER_OTLP_CLIENT_KEY=`/k.pem`: mutual TLS needs"),
        (&[("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")], "invalid OTEL_EXPORTER_OTLP_COMPRESSION=`zstd`: expected `gzip` or `none`"),
    ];
    for (vars, says) in cases {
        let env: Vec<(String, String)> = vars.iter().map(|(k, v)| var(k, v)).collect();
        let output = Host::command(
            &[
                component("payment").display().to_string(),
                "--port".into(),
                "0".into(),
            ],
            "https://127.0.0.1:9",
            &env,
        )
        .output()
        .await
        .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{stderr}");
    }
}

/// A gRPC endpoint given as a bare `host:port` is TLS, as the
/// specification says; with `OTEL_EXPORTER_OTLP_INSECURE=true` it is
/// plaintext.
#[tokio::test]
async fn a_scheme_less_grpc_endpoint_is_tls_unless_insecure() {
    let pki = Pki::new("scheme-less");
    let (secure, endpoint) = pki.grpc_receiver(false).await;
    let (plain, plain_endpoint) = Receiver::start().await;
    // (receiver, its endpoint without the scheme, variables)
    type Case<'a> = (&'a Receiver, &'a str, &'a [(String, String)]);
    let insecure = [var("OTEL_EXPORTER_OTLP_INSECURE", "true")];
    let cases: [Case; 2] = [
        (
            &secure,
            endpoint.trim_start_matches("https://"),
            &pki.env(false),
        ),
        (
            &plain,
            plain_endpoint.trim_start_matches("http://"),
            &insecure,
        ),
    ];
    for (receiver, bare, env) in cases {
        let host = Host::start(
            "payment",
            bare,
            HostOptions {
                env: env.to_vec(),
                ..Default::default()
            },
        )
        .await;
        let reply = send("GET", &host.url("/health"), &[], "").await;
        let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
        let spans = receiver.trace(&trace_id, 1).await;
        assert_eq!(spans[0].span.name, "GET /health", "{bare}");
    }
}
