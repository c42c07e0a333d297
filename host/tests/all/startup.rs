//! Start-up: the compiled-component cache and the instance allocator, over
//! the real host binary.

use crate::common::{Host, HostOptions, Receiver, component, send};
use std::path::Path;

/// A host serving `payment` with its compile cache in `cache`.
async fn payment_with_cache(endpoint: &str, cache: &Path) -> Host {
    Host::start(
        "payment",
        endpoint,
        HostOptions {
            args: vec!["--compile-cache".into(), cache.display().to_string()],
            ..HostOptions::default()
        },
    )
    .await
}

/// A fresh temporary directory under the target directory.
fn fresh_dir(name: &str) -> std::path::PathBuf {
    let dir = component("payment")
        .parent()
        .unwrap()
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The first start compiles and stores the component; a restart loads it
/// from the cache; both serve it the same (200 and a SERVER span).
#[tokio::test]
async fn a_restart_loads_the_compiled_component_from_the_cache() {
    let (receiver, endpoint) = Receiver::start().await;
    let cache = fresh_dir("cache-restart");

    let mut first = payment_with_cache(&endpoint, &cache).await;
    first.wait_for_stdout("payment.wasm: compiled in").await;
    assert_eq!(
        send("GET", &first.url("/health"), &[], "").await.status,
        200
    );
    assert!(first.terminate().await.success());
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(entries.len(), 1, "one entry per component: {entries:?}");

    let mut second = payment_with_cache(&endpoint, &cache).await;
    second
        .wait_for_stdout("payment.wasm: loaded from the compile cache")
        .await;
    let reply = send("GET", &second.url("/health"), &[], "").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "ok");
    assert!(second.terminate().await.success());
    let spans = receiver.spans();
    let servers = spans
        .iter()
        .filter(|span| span.span.name == "GET /health" && span.service == "payment-service")
        .count();
    assert_eq!(servers, 2, "a SERVER span from each start");
    let _ = std::fs::remove_dir_all(&cache);
}

/// A damaged entry (here: overwritten with other bytes) is never loaded:
/// the host says it ignores it, compiles instead, serves normally, and the
/// entry is replaced so the next start is fast again.
#[tokio::test]
async fn a_damaged_cache_entry_is_ignored_and_replaced() {
    let (_receiver, endpoint) = Receiver::start().await;
    let cache = fresh_dir("cache-damaged");
    let mut first = payment_with_cache(&endpoint, &cache).await;
    first.wait_for_stdout("compiled in").await;
    assert!(first.terminate().await.success());

    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();

    let mut second = payment_with_cache(&endpoint, &cache).await;
    second.wait_for_stdout("payment.wasm: compiled in").await;
    let stderr = second.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("compile cache: ignoring") && stderr.contains("not an intact entry"),
        "{stderr}"
    );
    assert_eq!(
        send("GET", &second.url("/health"), &[], "").await.status,
        200
    );
    assert!(second.terminate().await.success());

    let mut third = payment_with_cache(&endpoint, &cache).await;
    third.wait_for_stdout("loaded from the compile cache").await;
    assert!(third.terminate().await.success());
    let _ = std::fs::remove_dir_all(&cache);
}

/// Where the pooling allocator cannot reserve its address space (here a
/// `ulimit -v` of 16 GiB against 1000 slots of 4 GiB), the host says so,
/// names the flag to change, and serves with per-instance allocation.
#[tokio::test]
async fn pooling_falls_back_when_address_space_is_short() {
    let (receiver, endpoint) = Receiver::start().await;
    let args = vec![
        component("payment").display().to_string(),
        "--port".to_string(),
        "0".to_string(),
        "--no-compile-cache".to_string(),
    ];
    let host = Host::command(&args, &endpoint, &[]);
    let mut wrapped = tokio::process::Command::new("sh");
    wrapped
        .arg("-c")
        .arg("ulimit -v 16777216 && exec \"$0\" \"$@\"")
        .arg(host.as_std().get_program())
        .args(host.as_std().get_args());
    for (key, value) in host.as_std().get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    let mut host = Host::spawn(wrapped, 1).await;
    let stderr = host.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("on-demand allocator: the pooling allocator could not reserve")
            && stderr.contains("--pool-instances"),
        "{stderr}"
    );
    let reply = send("GET", &host.url("/health"), &[], "").await;
    assert_eq!(reply.status, 200);
    let trace_id = reply.headers["traceresponse"].to_str().unwrap()[3..35].to_string();
    let spans = receiver.trace(&trace_id, 1).await;
    assert!(spans[0].int_attr("wasm.instantiate.duration_us").is_some());
    assert!(host.terminate().await.success());
}

/// With the default pool, instances come from pooled slots: the start-up
/// line says so, and requests are served.
#[tokio::test]
async fn the_pooling_allocator_is_on_by_default() {
    let (_receiver, endpoint) = Receiver::start().await;
    let host = Host::start("payment", &endpoint, HostOptions::default()).await;
    host.wait_for_stdout("pooling allocator, 1000 instance slots")
        .await;
    for _ in 0..3 {
        assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    }
}

/// `--perfmap` writes `/tmp/perf-PID.map`, where `perf report` looks for
/// code it cannot find in a file: every line a `START SIZE NAME` entry (hex
/// numbers), and
/// the guest's own Rust functions (its request handler) named there, so a
/// profile of the host shows which guest function the time went to.
#[tokio::test]
async fn perfmap_names_the_guest_functions_for_perf() {
    let (_receiver, endpoint) = Receiver::start().await;
    let options = HostOptions {
        args: vec!["--perfmap".into()],
        ..HostOptions::default()
    };
    let mut host = Host::start("payment", &endpoint, options).await;
    assert_eq!(send("GET", &host.url("/health"), &[], "").await.status, 200);
    let pid = host.child.id().expect("host is running");
    let map = std::path::PathBuf::from(format!("/tmp/perf-{pid}.map"));
    let text = std::fs::read_to_string(&map)
        .unwrap_or_else(|e| panic!("`{}` not written: {e}", map.display()));
    host.terminate().await;
    let _ = std::fs::remove_file(&map);
    for line in text.lines() {
        let fields: Vec<&str> = line.splitn(3, ' ').collect();
        assert!(
            fields.len() == 3
                && fields[..2]
                    .iter()
                    .all(|hex| { u64::from_str_radix(hex.trim_start_matches("0x"), 16).is_ok() }),
            "not a perf map line: `{line}`"
        );
    }
    assert!(
        text.lines()
            .any(|line| line.contains("PaymentService") && line.contains("handle")),
        "the guest's handler is not named in the perf map:\n{}",
        text.lines().take(20).collect::<Vec<_>>().join("\n")
    );
}
