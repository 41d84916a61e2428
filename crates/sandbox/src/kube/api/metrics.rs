//! `/metrics` in the Prometheus text format, as the API server exposes it.
//!
//! The one metric the tool relies on is `apiserver_requested_deprecated_apis`: the scenario says
//! which deprecated APIs clients have called (the sandbox serves none of them, so it cannot
//! observe such calls itself). Around it are a few ordinary metrics with their real names and
//! labels, so a parser that picks one metric out of a full scrape is exercised honestly.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;

use super::discovery::git_version;
use super::status::{ApiResult, bytes_response};
use crate::world::World;

/// The labels of `apiserver_request_total`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestKey {
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    /// `cluster`, `namespace` or `resource`; empty for non-resource paths.
    pub scope: &'static str,
    pub code: u16,
}

/// Counters the API keeps while serving.
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    /// Watches currently open.
    pub watches: AtomicI64,
    started: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: Mutex::new(BTreeMap::new()),
            watches: AtomicI64::new(0),
            started: SystemTime::now(),
        }
    }
}

/// Decrements the open-watch gauge when a watch ends, however it ends.
pub struct WatchGuard<'a>(&'a AtomicI64);

impl<'a> WatchGuard<'a> {
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        WatchGuard(gauge)
    }
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn count(&self, key: RequestKey) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry(key).or_default() += 1;
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `GET /metrics`.
pub fn render(world: &World, metrics: &Metrics) -> ApiResult {
    let mut out = String::new();

    header(
        &mut out,
        "apiserver_requested_deprecated_apis",
        "gauge",
        "[STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.",
    );
    for d in &world.scenario.spec.deprecated_api_requests {
        let _ = writeln!(
            out,
            "apiserver_requested_deprecated_apis{{group=\"{}\",removed_release=\"{}\",resource=\"{}\",subresource=\"\",version=\"{}\"}} 1",
            esc(&d.group),
            d.removed_release,
            esc(&d.resource),
            esc(&d.version),
        );
    }

    header(
        &mut out,
        "apiserver_request_total",
        "counter",
        "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
    );
    let requests = metrics
        .requests
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    for (k, n) in &requests {
        let _ = writeln!(
            out,
            "apiserver_request_total{{code=\"{}\",component=\"apiserver\",dry_run=\"\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"}} {n}",
            k.code,
            esc(&k.group),
            esc(&k.resource),
            k.scope,
            esc(&k.subresource),
            k.verb,
            esc(&k.version),
        );
    }

    header(
        &mut out,
        "apiserver_storage_objects",
        "gauge",
        "[STABLE] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.",
    );
    let mut types = world.store.types();
    types.sort_by_key(|t| t.group_resource());
    for t in &types {
        let _ = writeln!(
            out,
            "apiserver_storage_objects{{resource=\"{}\"}} {}",
            esc(&t.group_resource()),
            world.store.count(t)
        );
    }

    header(
        &mut out,
        "apiserver_longrunning_requests",
        "gauge",
        "[STABLE] Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
    );
    let _ = writeln!(
        out,
        "apiserver_longrunning_requests{{component=\"apiserver\",group=\"\",resource=\"\",scope=\"\",subresource=\"\",verb=\"WATCH\",version=\"\"}} {}",
        metrics.watches.load(Ordering::Relaxed).max(0)
    );

    header(
        &mut out,
        "kubernetes_build_info",
        "gauge",
        "[ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.",
    );
    let v = world.control_plane_version();
    let _ = writeln!(
        out,
        "kubernetes_build_info{{build_date=\"2025-10-01T00:00:00Z\",compiler=\"gc\",git_tree_state=\"clean\",git_version=\"{}\",go_version=\"go1.24.6\",major=\"{}\",minor=\"{}\",platform=\"linux/amd64\"}} 1",
        git_version(v),
        v.major,
        v.minor
    );

    header(
        &mut out,
        "process_start_time_seconds",
        "gauge",
        "[ALPHA] Start time of the process since unix epoch in seconds.",
    );
    let started = metrics
        .started
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let _ = writeln!(out, "process_start_time_seconds {started}");

    Ok(bytes_response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        out.into_bytes(),
    ))
}
