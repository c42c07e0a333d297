//! The pages in a real headless Chromium, driven through chromedriver's
//! W3C WebDriver HTTP API: what a person sees on the search, trace,
//! compare and services pages, and that span data is never markup.
//!
//! Needs Debian's `chromium` and `chromium-driver`
//! (`apt-get install chromium chromium-driver`), hence ignored by default:
//! `cargo test -p host --test explorer -- --ignored`. Screenshots go to
//! target/explorer-screenshots, or to docs/ with `EXPLORER_SCREENSHOTS=docs`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Explorer, order};
use crate::common::*;

/// The WebDriver W3C element key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The flags the brief's headless runs use: no network beyond the page, a
/// fresh profile.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,900",
];

/// A chromedriver process and one browser session.
struct Browser {
    driver: tokio::process::Child,
    base: String,
    session: String,
    _profile: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(name))
        .find(|path| path.is_file())
}

impl Browser {
    async fn start() -> Browser {
        let driver_path = which("chromedriver")
            .expect("chromedriver not found: apt-get install chromium chromium-driver");
        let chromium = which("chromium").expect("chromium not found: apt-get install chromium");
        let port = free_port().await;
        let driver = tokio::process::Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
                && send("GET", &format!("{base}/status"), &[], "").await.json()["value"]["ready"]
                    == true
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("explorer-chromium-{port}"));
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let reply = send(
            "POST",
            &format!("{base}/session"),
            &[],
            &capabilities.to_string(),
        )
        .await;
        let body = reply.json();
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {body}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            _profile: TempDir(profile),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let body = if method == "GET" {
            String::new()
        } else {
            body.to_string()
        };
        let reply = send(method, &url, &[], &body).await;
        let value = reply.json()["value"].clone();
        assert_eq!(reply.status, 200, "{method} {path}: {value}");
        value
    }

    async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    async fn run(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found
            .as_array()
            .unwrap_or_else(|| panic!("`{css}`: {found}"))
            .iter()
            .map(|e| {
                e[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("{e}"))
                    .to_string()
            })
            .collect()
    }

    async fn text(&self, element: &str) -> String {
        let text = self
            .call("GET", &format!("/element/{element}/text"), Value::Null)
            .await;
        text.as_str().unwrap().to_string()
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.find_all(css).await {
            out.push(self.text(&element).await);
        }
        out
    }

    async fn click(&self, css: &str) {
        let element = self.wait_for(css, 1).await.remove(0);
        self.call("POST", &format!("/element/{element}/click"), json!({}))
            .await;
    }

    /// Waits until `css` matches at least `count` elements.
    async fn wait_for(&self, css: &str, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found = self.find_all(css).await;
            if found.len() >= count {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{css}`: {} of {count} elements",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `css` contains `text`.
    async fn wait_for_text(&self, css: &str, text: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let shown = self.texts(css).await.join("\n");
            if shown.contains(text) {
                return shown;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{css}` never showed `{text}`: {shown}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call("GET", "/screenshot", Value::Null).await;
        let dir = match std::env::var("EXPLORER_SCREENSHOTS").as_deref() {
            Ok("docs") => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images"),
            _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/explorer-screenshots"),
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), base64(png.as_str().unwrap())).unwrap();
    }

    async fn quit(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        send("DELETE", &url, &[], "").await;
        let _ = self.driver.kill().await;
    }
}

/// Standard base64, as WebDriver returns screenshots.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A span whose name and attribute are markup, sent over OTLP/HTTP JSON.
const HOSTILE: &str = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"<b>hostile</b>"}}]},
  "scopeSpans":[{"spans":[{"traceId":"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a","spanId":"0a0a0a0a0a0a0a0a","name":"<script>window.pwned=1</script>",
  "startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000002000000",
  "attributes":[{"key":"note","value":{"stringValue":"<img src=x onerror=\"window.pwned=2\">"}}]}]}]}]}"#;

/// Search, trace, compare and services as a person sees them: the valid
/// order's trace is found and opened (six spans in two services, their
/// names, an attribute value), the fraud order's spans carry the error
/// mark and its message, the compare view lines the two up, new traces
/// appear without a reload, a custom time window finds what it holds and
/// is a shareable link, and markup in span data is shown as text.
#[tokio::test]
#[ignore = "needs chromium and chromium-driver (apt-get install chromium chromium-driver); run with --ignored"]
async fn pages_show_what_a_person_needs() {
    let explorer = Explorer::one_process("http://127.0.0.1:9", &[]).await;
    let url = explorer.host.url("");
    let valid = order(&url, VALID_ORDER).await;
    let fraud = order(&url, FRAUD_ORDER).await;
    explorer.trace(&valid, 6).await;
    explorer.trace(&fraud, 6).await;
    let browser = Browser::start().await;

    // Search: both orders listed with their root span, services and counts.
    browser
        .goto(&format!("{}/search?service=order-api", explorer.ui))
        .await;
    browser.wait_for("tr.result", 2).await;
    let row = browser
        .wait_for_text(&format!("tr[data-trace='{valid}']"), "6 spans")
        .await;
    assert!(
        row.contains("order-api: POST /orders") && row.contains("payment-service"),
        "{row}"
    );
    let fraud_row = browser
        .texts(&format!("tr.result.error[data-trace='{fraud}']"))
        .await;
    assert!(
        fraud_row.concat().contains("errors"),
        "fraud row marked: {fraud_row:?}"
    );
    browser.screenshot("explorer-search.png").await;

    // Live: a new order appears without a reload.
    browser.run("window.notReloaded = true").await;
    let third = order(&url, VALID_ORDER).await;
    browser
        .wait_for(&format!("tr[data-trace='{third}']"), 1)
        .await;
    assert_eq!(
        browser.run("return window.notReloaded === true").await,
        true
    );

    // Trace: open the valid order from the list.
    browser.click(&format!("tr[data-trace='{valid}'] a")).await;
    browser.wait_for(".row.span", 6).await;
    let mut names = browser.texts(".row.span .op").await;
    names.sort();
    assert_eq!(
        names,
        [
            "POST",
            "POST /orders",
            "POST /payments",
            "process_payment",
            "save_order",
            "validate_order"
        ]
    );
    let mut services = browser.texts(".row.span .svc").await;
    services.sort();
    services.dedup();
    assert_eq!(services, ["order-api", "payment-service"]);
    assert!(
        browser.find_all(".row.span.error").await.is_empty(),
        "a valid order has no error mark"
    );
    assert_eq!(browser.find_all(".row.span.dominant").await.len(), 1);
    browser.click(".row.span").await;
    let attributes = browser
        .wait_for_text("#attributes", "http.response.status_code")
        .await;
    assert!(attributes.contains("201"), "{attributes}");
    let resource = browser.wait_for_text("#resource", "service.version").await;
    assert!(resource.contains("0.1.0"), "{resource}");
    browser.screenshot("explorer-trace.png").await;

    // The fraud order: error marks, and the reason on the payment span.
    browser
        .goto(&format!("{}/trace/{fraud}", explorer.ui))
        .await;
    browser.wait_for(".row.span", 6).await;
    let errors = browser.texts(".row.span.error .op").await;
    assert!(
        errors.contains(&"process_payment".to_string()),
        "{errors:?}"
    );
    let payment_row = browser.find_all(".row.span.error").await;
    for element in payment_row {
        if browser.text(&element).await.contains("process_payment") {
            browser
                .call("POST", &format!("/element/{element}/click"), json!({}))
                .await;
        }
    }
    browser
        .wait_for_text("#detail", "payment declined: suspected fraud")
        .await;
    browser.screenshot("explorer-error.png").await;

    // Compare: the same six span paths, durations side by side.
    browser
        .goto(&format!("{}/compare/{valid}/{fraud}", explorer.ui))
        .await;
    let rows = browser.wait_for("table.compare tbody tr", 6).await;
    assert_eq!(rows.len(), 6);
    assert_eq!(browser.find_all("table.compare tr.both").await.len(), 6);
    let compared = browser.texts("table.compare").await.concat();
    assert!(
        compared.contains("process_payment") && compared.contains("B − A"),
        "{compared}"
    );
    browser.screenshot("explorer-compare.png").await;

    // An invalid order: fewer spans (no payment), so the compare view
    // marks the valid order's extra spans as only in A; its exception
    // event shows type and message.
    let invalid = order(&url, INVALID_ORDER).await;
    browser
        .goto(&format!("{}/compare/{valid}/{invalid}", explorer.ui))
        .await;
    browser.wait_for("table.compare tbody tr", 6).await;
    let only_a = browser.texts("table.compare tr.only-a").await;
    assert!(only_a.concat().contains("process_payment"), "{only_a:?}");
    assert!(browser.find_all("table.compare tr.only-b").await.is_empty());
    browser
        .goto(&format!("{}/trace/{invalid}", explorer.ui))
        .await;
    for element in browser.wait_for(".row.span.error", 1).await {
        if browser.text(&element).await.contains("validate_order") {
            browser
                .call("POST", &format!("/element/{element}/click"), json!({}))
                .await;
        }
    }
    let exception = browser
        .wait_for_text("#events .exception-line", "quantity")
        .await;
    assert!(exception.contains("must be at least 1"), "{exception}");
    // What *Download OTLP/JSON* saves: the trace as OTLP/JSON.
    let downloaded = browser
        .run(&format!(
            "return fetch('/api/v3/traces/{valid}').then(r => r.json()).then(j => j.result.resourceSpans.length)"
        ))
        .await;
    assert_eq!(downloaded, 2);

    // A custom time window, kept in the page's URL: one that holds the
    // orders finds them, and the link opens the same search; one in the
    // past finds nothing; one that ends before it starts is refused.
    browser
        .goto(&format!("{}/search?service=order-api", explorer.ui))
        .await;
    browser.wait_for("tr.result", 2).await;
    assert_eq!(
        browser
            .run("return document.querySelector('form .range').hidden")
            .await,
        true,
        "the range shows only for a custom window"
    );
    let set_window = |from: &str, to: &str| {
        format!(
            "const f = (v) => typeof v === 'number' ? new Date(v - new Date(v).getTimezoneOffset() * 60000).toISOString().slice(0, 19) : v;
             const lookback = document.querySelector('select[name=lookback]');
             lookback.value = 'custom';
             lookback.dispatchEvent(new Event('change'));
             document.querySelector('input[name=start]').value = f({from});
             document.querySelector('input[name=end]').value = f({to});
             document.getElementById('find').click();"
        )
    };
    browser
        .run(&set_window("Date.now() - 600000", "Date.now() + 600000"))
        .await;
    browser
        .wait_for(&format!("tr[data-trace='{valid}']"), 1)
        .await;
    browser
        .wait_for(&format!("tr[data-trace='{fraud}']"), 1)
        .await;
    let shared = browser.run("return location.href").await;
    let shared = shared.as_str().unwrap().to_string();
    assert!(
        shared.contains("lookback=custom") && shared.contains("start=") && shared.contains("end="),
        "{shared}"
    );
    let inputs = "return [...document.querySelectorAll('input[name=start], input[name=end]')].map(i => i.value)";
    let chosen = browser.run(inputs).await;
    browser.goto("about:blank").await;
    browser.goto(&shared).await;
    browser
        .wait_for(&format!("tr[data-trace='{valid}']"), 1)
        .await;
    assert_eq!(
        browser.run(inputs).await,
        chosen,
        "the link restores the window"
    );
    assert_eq!(
        browser
            .run("return document.querySelector('form .range').hidden")
            .await,
        false
    );
    browser
        .run(&set_window(
            "'2001-01-01T00:00:00'",
            "'2001-01-02T00:00:00'",
        ))
        .await;
    browser.wait_for_text("#results", "No traces match").await;
    assert!(browser.find_all("tr.result").await.is_empty());
    browser
        .run(&set_window(
            "'2001-01-02T00:00:00'",
            "'2001-01-01T00:00:00'",
        ))
        .await;
    browser
        .wait_for_text("#results", "the time window ends before it starts")
        .await;

    // Services: rates, error rates and percentiles per service.
    browser.goto(&format!("{}/services", explorer.ui)).await;
    let figures = browser
        .wait_for_text("table.figures", "payment-service")
        .await;
    assert!(
        figures.contains("process_payment") && figures.contains("p99"),
        "{figures}"
    );
    browser.screenshot("explorer-services.png").await;

    // Markup in span data is text: shown literally, never run.
    let hostile = send(
        "POST",
        &format!("{}/v1/traces", explorer.http),
        &[],
        HOSTILE,
    )
    .await;
    assert_eq!(hostile.status, 200);
    browser
        .goto(&format!(
            "{}/trace/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
            explorer.ui
        ))
        .await;
    browser.wait_for(".row.span", 1).await;
    assert_eq!(
        browser.texts(".row.span .op").await,
        ["<script>window.pwned=1</script>"]
    );
    browser.click(".row.span").await;
    browser.wait_for_text("#attributes", "onerror").await;
    let clean = browser
        .run("return [window.pwned === undefined, document.querySelectorAll('main script, main img, main b').length]")
        .await;
    assert_eq!(clean, json!([true, 0]));
    browser.quit().await;
}
