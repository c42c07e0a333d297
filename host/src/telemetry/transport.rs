//! How an OTLP export reaches its collector, the same way for spans,
//! metrics and logs: the TLS of an `https://` endpoint (the files
//! `OTEL_EXPORTER_OTLP_*CERTIFICATE` and `…_CLIENT_KEY` name, read and
//! checked once, at start-up), the gRPC endpoint, and the OTLP/HTTP POST
//! over a kept-alive connection (TCP or rustls), and gzip for the bodies
//! the host compresses itself.
//!
//! TLS is rustls with the ring provider (already built for
//! wasmtime-wasi-http's outgoing HTTPS: no aws-lc-sys, no cmake). Without
//! `…_CERTIFICATE` the server is checked against the Mozilla roots compiled
//! into the binary (`webpki-roots`), as the guests' outgoing HTTPS is: the
//! same answer on every machine and in a minimal image with no CA bundle.
//! A private CA is trusted by naming its PEM file in `…_CERTIFICATE`, which
//! then replaces the built-in roots, as the specification's "the trusted
//! certificate" reads and other SDKs do.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime::error::Context as _;

use super::config::{ConfigFile, OtlpSettings};

/// One signal's TLS, loaded at start-up: the same certificates for gRPC and
/// HTTP.
#[derive(Debug, Clone)]
pub(super) struct Tls {
    /// For OTLP/HTTP (ALPN `http/1.1`).
    http: Arc<rustls::ClientConfig>,
    /// For OTLP/gRPC, as tonic takes it.
    grpc: tonic::transport::ClientTlsConfig,
}

/// A PEM file's contents, with the variable that named it.
struct Pem<'a> {
    file: &'a ConfigFile,
    bytes: Vec<u8>,
}

impl<'a> Pem<'a> {
    /// Reads `file`; the error names its variable and path.
    fn read(file: &'a ConfigFile, what: &str) -> wasmtime::Result<Pem<'a>> {
        let bytes = std::fs::read(&file.path).with_context(|| {
            format!(
                "cannot read {}=`{}`: point it at a readable PEM file holding {what}, or unset it",
                file.variable,
                file.path.display()
            )
        })?;
        Ok(Pem { file, bytes })
    }

    /// The start-up error for a file that does not hold what it should.
    fn invalid(&self, what: &str) -> wasmtime::Error {
        wasmtime::format_err!(
            "{}=`{}` holds no usable {what}: it must be PEM (`-----BEGIN …-----`); fix the \
             file or unset the variable",
            self.file.variable,
            self.file.path.display()
        )
    }

    fn certificates(&self, what: &str) -> wasmtime::Result<Vec<CertificateDer<'static>>> {
        let certificates = CertificateDer::pem_slice_iter(&self.bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| self.invalid(what))?;
        if certificates.is_empty() {
            return Err(self.invalid(what));
        }
        Ok(certificates)
    }
}

impl Tls {
    /// The TLS `settings` asks for: `None` for an `http://` endpoint. Every
    /// file named is read and checked now, whatever the endpoint, so that
    /// a wrong path fails at start-up rather than at the first export.
    pub(super) fn load(settings: &OtlpSettings) -> wasmtime::Result<Option<Tls>> {
        let ca = settings
            .tls
            .certificate
            .as_ref()
            .map(|file| Pem::read(file, "the CA certificates to trust"))
            .transpose()?;
        let client = settings
            .tls
            .client
            .as_ref()
            .map(|(key, certificate)| {
                Ok::<_, wasmtime::Error>((
                    Pem::read(key, "the client's private key")?,
                    Pem::read(certificate, "the client's certificate chain")?,
                ))
            })
            .transpose()?;

        let mut roots = rustls::RootCertStore::empty();
        let mut grpc = tonic::transport::ClientTlsConfig::new();
        match &ca {
            Some(ca) => {
                let what = "CA certificate";
                let (added, _) = roots.add_parsable_certificates(ca.certificates(what)?);
                if added == 0 {
                    return Err(ca.invalid(what));
                }
                grpc = grpc.ca_certificate(tonic::transport::Certificate::from_pem(&ca.bytes));
            }
            None => {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                grpc = grpc.with_webpki_roots();
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("rustls refuses its own default protocol versions")?
            .with_root_certificates(roots);
        let mut http = match &client {
            Some((key, certificate)) => {
                let chain = certificate.certificates("client certificate")?;
                let private = PrivateKeyDer::from_pem_slice(&key.bytes)
                    .map_err(|_| key.invalid("private key"))?;
                grpc = grpc.identity(tonic::transport::Identity::from_pem(
                    &certificate.bytes,
                    &key.bytes,
                ));
                builder
                    .with_client_auth_cert(chain, private)
                    .with_context(|| {
                        format!(
                            "{}=`{}` and {}=`{}` are not a usable key and certificate pair",
                            key.file.variable,
                            key.file.path.display(),
                            certificate.file.variable,
                            certificate.file.path.display()
                        )
                    })?
            }
            None => builder.with_no_client_auth(),
        };
        if !settings.endpoint.starts_with("https://") {
            return Ok(None);
        }
        http.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Some(Tls {
            http: Arc::new(http),
            grpc,
        }))
    }
}

/// The gRPC endpoint `settings` names (TLS when `tls` is given), every
/// export bounded by the timeout; its channel connects on first use
/// (`connect_lazy`, on a runtime).
pub(super) fn grpc_endpoint(
    settings: &OtlpSettings,
    tls: Option<&Tls>,
) -> wasmtime::Result<tonic::transport::Endpoint> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(settings.endpoint.clone())
        .with_context(|| format!("invalid OTLP/gRPC endpoint `{}`", settings.endpoint))?
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.grpc.clone())
            .with_context(|| format!("cannot set up TLS for `{}`", settings.endpoint))?;
    }
    Ok(endpoint)
}

/// `body` gzip-compressed, for `Content-Encoding: gzip`.
pub(super) fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::default(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// OTLP/HTTP to one endpoint over an HTTP/1.1 connection kept alive
/// between exports (TLS for `https://`), opened on first use and again
/// whenever the collector has closed it: one handshake per connection, not
/// per export.
#[derive(Debug)]
pub(super) struct HttpConnection {
    tls: Option<Tls>,
    /// The connection between two exports; `None` before the first, while
    /// one is in flight, and after a failure.
    idle: Mutex<Option<SendRequest>>,
}

type SendRequest = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Why an exchange failed.
enum Failure {
    /// The kept-alive connection was closed before the request went out
    /// (a collector may close an idle connection at any moment): worth
    /// once more on a new one. With why, for when it was a new one.
    Stale(String),
    /// Anything else, said as it is.
    Failed(String),
}

impl HttpConnection {
    /// No connection yet; `tls` for an `https://` endpoint.
    pub(super) fn new(tls: Option<Tls>) -> HttpConnection {
        HttpConnection {
            tls,
            idle: Mutex::new(None),
        }
    }

    /// Sends `request` (its URI absolute) and returns the whole response.
    pub(super) async fn post(
        &self,
        request: hyper::Request<Bytes>,
    ) -> Result<hyper::Response<Bytes>, String> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.take());
        if let Some(sender) = idle {
            match self.send(sender, copy(&request)).await {
                Err(Failure::Stale(_)) => {}
                Err(Failure::Failed(error)) => return Err(error),
                Ok(response) => return Ok(response),
            }
        }
        let sender = connect(request.uri(), self.tls.as_ref()).await?;
        match self.send(sender, request).await {
            Ok(response) => Ok(response),
            Err(Failure::Stale(error) | Failure::Failed(error)) => Err(error),
        }
    }

    /// One request and its whole response on `sender`, which is kept for
    /// the next export unless the collector said it closes it.
    async fn send(
        &self,
        mut sender: SendRequest,
        request: hyper::Request<Bytes>,
    ) -> Result<hyper::Response<Bytes>, Failure> {
        sender
            .ready()
            .await
            .map_err(|e| Failure::Stale(error_chain(&e)))?;
        let uri = request.uri().clone();
        let (mut parts, body) = request.into_parts();
        // HTTP/1.1 wants the path in the request line and the authority in
        // Host.
        parts.uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e| Failure::Failed(format!("{e}")))?;
        if let Some(authority) = uri.authority()
            && let Ok(value) = authority.as_str().parse()
        {
            parts.headers.insert(hyper::header::HOST, value);
        }
        let response = sender
            .send_request(hyper::Request::from_parts(parts, Full::new(body)))
            .await
            .map_err(|e| {
                let error = error_chain(&e);
                if e.is_canceled() {
                    Failure::Stale(error)
                } else {
                    Failure::Failed(error)
                }
            })?;
        let closes = response
            .headers()
            .get(hyper::header::CONNECTION)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"close"));
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Failure::Failed(error_chain(&e)))?
            .to_bytes();
        if !closes && let Ok(mut idle) = self.idle.lock() {
            *idle = Some(sender);
        }
        Ok(hyper::Response::from_parts(parts, body))
    }
}

/// `request` again, for a second attempt (its body is shared, not copied).
fn copy(request: &hyper::Request<Bytes>) -> hyper::Request<Bytes> {
    let mut copy = hyper::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// A new HTTP/1.1 connection to `uri`'s host (TLS for `https://`, with
/// `tls`), its driver spawned on the current runtime.
async fn connect(uri: &Uri, tls: Option<&Tls>) -> Result<SendRequest, String> {
    let authority = uri
        .authority()
        .ok_or_else(|| "the endpoint has no host".to_string())?;
    let https = uri.scheme_str() == Some("https");
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    match (https, tls) {
        (false, _) => handshake(tcp).await,
        (true, Some(tls)) => {
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("`{host}` is not a name TLS can check: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(tls.http.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            handshake(stream).await
        }
        (true, None) => Err("an https:// endpoint without TLS settings".to_string()),
    }
}

/// HTTP/1.1 over `io`.
async fn handshake<Io>(io: Io) -> Result<SendRequest, String>
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| error_chain(&e))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// An error with its causes: hyper's own message alone ("connection
/// error") hides the TLS alert that says why.
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The HTTP client the OTLP/HTTP span exporter sends through: an
/// [`HttpConnection`] on a runtime of its own, since the batch span
/// processor exports from a plain thread.
#[derive(Debug, Clone)]
pub(super) struct SpanHttpClient {
    connection: Arc<HttpConnection>,
    timeout: Duration,
    runtime: Arc<OwnRuntime>,
    last_error: LastError,
}

/// The last failure of an export, in full, until someone reports it.
pub(super) type LastError = Arc<Mutex<Option<String>>>;

/// A runtime that may be dropped anywhere, an async context included.
#[derive(Debug)]
struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl SpanHttpClient {
    /// A client for `settings`' endpoint with its TLS, each export bounded
    /// by the timeout; starts the runtime's one thread.
    pub(super) fn new(settings: &OtlpSettings, tls: Option<Tls>) -> wasmtime::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-http-spans")
            .enable_all()
            .build()
            .context("cannot start the OTLP/HTTP span exporter's runtime")?;
        Ok(SpanHttpClient {
            connection: Arc::new(HttpConnection::new(tls)),
            timeout: settings.timeout,
            runtime: Arc::new(OwnRuntime(Some(runtime))),
            last_error: LastError::default(),
        })
    }

    /// Where the client keeps its last failure: the OTLP/HTTP exporter
    /// turns every failure into "network error", so the delivery report
    /// reads the cause from here.
    pub(super) fn last_error(&self) -> LastError {
        self.last_error.clone()
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for SpanHttpClient {
    async fn send_bytes(
        &self,
        request: hyper::Request<Bytes>,
    ) -> Result<hyper::Response<Bytes>, opentelemetry_http::HttpError> {
        let Some(runtime) = &self.runtime.0 else {
            return Err("the OTLP/HTTP span exporter has stopped".into());
        };
        let connection = self.connection.clone();
        let timeout = self.timeout;
        let sent = runtime.spawn(async move {
            match tokio::time::timeout(timeout, connection.post(request)).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {timeout:?}")),
            }
        });
        let result = match sent.await {
            Ok(result) => result,
            Err(error) => Err(error.to_string()),
        };
        result.map_err(|error| {
            if let Ok(mut last) = self.last_error.lock() {
                *last = Some(error.clone());
            }
            error.into()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::telemetry::config::{Compression, Protocol, TlsFiles};

    fn settings(tls: TlsFiles) -> OtlpSettings {
        OtlpSettings {
            protocol: Protocol::Grpc,
            endpoint: "https://collector:4317".to_string(),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            compression: Compression::None,
            tls,
        }
    }

    fn file(variable: &'static str, path: PathBuf) -> ConfigFile {
        ConfigFile { variable, path }
    }

    /// A CA file that is missing, or that holds no certificate, stops
    /// start-up with the variable, the path and what to do.
    #[test]
    fn an_unusable_ca_file_is_a_startup_error() {
        let dir = std::env::temp_dir().join(format!("otlp-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let missing = dir.join("missing.pem");
        // (file, what the error says)
        #[rustfmt::skip]
        let cases: &[(&PathBuf, &str)] = &[
            (&missing, "cannot read OTEL_EXPORTER_OTLP_CERTIFICATE=`"),
            (&garbage, "holds no usable CA certificate: it must be PEM"),
        ];
        for (path, says) in cases {
            let tls = TlsFiles {
                certificate: Some(file("OTEL_EXPORTER_OTLP_CERTIFICATE", (*path).clone())),
                client: None,
            };
            let error = format!("{:#}", Tls::load(&settings(tls)).unwrap_err());
            assert!(error.contains(says), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A key file that holds no key names the key's variable.
    #[test]
    fn an_unusable_client_key_names_its_variable() {
        let dir = std::env::temp_dir().join(format!("otlp-tls-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("key.pem");
        std::fs::write(&key, "-----BEGIN NOTHING-----\n-----END NOTHING-----\n").unwrap();
        let certificate = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, certificate.cert.pem()).unwrap();
        let tls = TlsFiles {
            certificate: None,
            client: Some((
                file("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", key.clone()),
                file("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert),
            )),
        };
        let error = format!("{:#}", Tls::load(&settings(tls)).unwrap_err());
        assert!(
            error.contains(&format!(
                "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY=`{}` holds no usable private key",
                key.display()
            )),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// gzip round-trips.
    #[test]
    fn gzip_decodes_to_the_body() {
        use std::io::Read as _;
        let body = b"spans spans spans spans".repeat(20);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&gzip(&body)[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, body);
    }
}
