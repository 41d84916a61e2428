//! The settings of a blue/green run, validated: which cluster is green (`spec.green`) and how
//! traffic moves and is judged (`spec.traffic`). They live here, below the workflow document,
//! because the green step kinds read them while they are built and run; the document
//! (`workflow::validate`) fills them in from the file.

use serde::Serialize;

use crate::types::{HumanDuration, Version};

/// `spec.green` and `spec.traffic`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreen {
    /// Green's name as written; `None` means [`green_name`]'s default.
    pub green_name: Option<String>,
    pub traffic: Option<Traffic>,
}

/// Green's name: the one written, else `<blue>-<major>-<minor>` (`demo` at 1.35 →
/// `demo-1-35`), cut so that it stays a valid EKS cluster name (at most 100 characters).
pub fn green_name(written: Option<&str>, blue: &str, target: Version) -> String {
    if let Some(name) = written {
        return name.to_string();
    }
    let suffix = format!("-{}-{}", target.major, target.minor);
    let room = 100usize.saturating_sub(suffix.len());
    let stem: String = blue.chars().take(room).collect();
    format!("{}{suffix}", stem.trim_end_matches(['-', '_']))
}

/// The DNS record whose weights move from blue to green.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Traffic {
    /// The public hosted zone, as a name (`example.com`).
    pub zone: String,
    /// The record whose weighted sets are moved (`app.example.com`).
    pub record: String,
    /// Blue's weighted set.
    pub blue_set: String,
    /// Green's weighted set, created by the first weight change.
    pub green_set: String,
    /// What green's set points at.
    pub green_target: GreenTarget,
    pub error_rate: Option<ErrorRate>,
}

/// Where green's record points.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum GreenTarget {
    /// A Service of type LoadBalancer on green: its load balancer's hostname, read once the
    /// restore created it.
    Service { namespace: String, name: String },
    /// A value written in the file.
    Value(String),
}

/// The error-rate gate of each traffic stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorRate {
    pub prometheus: Prometheus,
    /// The largest acceptable share of failed requests, as a fraction (`1%` → 0.01).
    pub max: f64,
    /// Fewer requests than this in the window cannot be judged.
    pub min_requests: u64,
    /// The window the queries look back over (`{window}`).
    pub window: HumanDuration,
}

/// A Prometheus-compatible query API and the two instant queries whose ratio is the error rate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prometheus {
    pub url: UrlFrom,
    /// Failed requests in the window; `{cluster}` and `{window}` are filled in.
    pub errors: String,
    /// All requests in the window; `{cluster}` and `{window}` are filled in.
    pub requests: String,
}

/// The placeholders a query may use.
pub const PLACEHOLDERS: &[&str] = &["cluster", "window"];

impl Prometheus {
    /// A query with its placeholders filled in for `cluster` over `window` (in Prometheus's
    /// duration syntax, whole seconds).
    pub fn query(template: &str, cluster: &str, window: &HumanDuration) -> String {
        template
            .replace("{cluster}", cluster)
            .replace("{window}", &format!("{}s", window.0.as_secs().max(1)))
    }
}

/// Where a URL comes from. A URL may carry credentials, so a literal one is never logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum UrlFrom {
    #[serde(serialize_with = "redact")]
    Literal(String),
    Env(String),
}

fn redact<S: serde::Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<redacted>")
}

impl UrlFrom {
    /// The URL, read when needed; `None` when the variable is unset or empty.
    pub fn resolve(&self) -> Option<String> {
        match self {
            UrlFrom::Literal(u) => Some(u.clone()),
            UrlFrom::Env(var) => std::env::var(var).ok().filter(|v| !v.is_empty()),
        }
    }
}

/// `app.example.com` in `example.com`, sets `blue` and `green` (green at `green.elb`), no
/// error-rate gate: the traffic the unit tests of the traffic kinds share.
#[cfg(test)]
pub fn example_traffic() -> Traffic {
    Traffic {
        zone: "example.com".into(),
        record: "app.example.com".into(),
        blue_set: "blue".into(),
        green_set: "green".into(),
        green_target: GreenTarget::Value("green.elb".into()),
        error_rate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn green_is_named_after_blue_and_the_target_unless_written() {
        let v = Version::new(1, 35);
        assert_eq!(green_name(None, "demo", v), "demo-1-35");
        assert_eq!(green_name(Some("demo-green"), "demo", v), "demo-green");
        let long = "a".repeat(100);
        let name = green_name(None, &long, v);
        assert_eq!(name.len(), 100);
        assert!(name.ends_with("-1-35"));
        // A cut that ends on `-` would put two separators together.
        let cut = format!("{}-b", "a".repeat(94));
        assert_eq!(
            green_name(None, &cut, v),
            format!("{}-1-35", "a".repeat(94))
        );
    }

    #[test]
    fn queries_get_the_cluster_and_the_window_in_seconds() {
        let q = Prometheus::query(
            r#"sum(increase(x{cluster="{cluster}"}[{window}]))"#,
            "demo-1-35",
            &HumanDuration(std::time::Duration::from_secs(120)),
        );
        assert_eq!(q, r#"sum(increase(x{cluster="demo-1-35"}[120s]))"#);
    }

    #[test]
    fn a_literal_url_is_never_serialized() {
        let json = serde_json::to_string(&UrlFrom::Literal("https://u:p@prom".into())).unwrap();
        assert!(!json.contains("u:p"), "{json}");
    }
}
