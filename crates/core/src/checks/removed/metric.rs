//! The `apiserver_requested_deprecated_apis` gauge: the API server sets it to 1 for every
//! deprecated group/version/resource a client has requested since it started. It names APIs,
//! not objects, and resets when the API server restarts, so it is evidence of a client that
//! still calls the old API rather than a complete list.

use super::{Removals, Source, finding};
use crate::checks::Finding;

const METRIC: &str = "apiserver_requested_deprecated_apis";

/// One series of the metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub removed_release: String,
}

/// Reads the metric's series from the Prometheus text format. Lines it cannot read are skipped:
/// the format is line-oriented, so one odd line says nothing about the others.
pub fn parse(text: &str) -> Vec<Requested> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(METRIC) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        // A gauge at 0 means "not requested"; only 1 is evidence.
        if value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            != Some(1.0)
        {
            continue;
        }
        let mut r = Requested {
            group: String::new(),
            version: String::new(),
            resource: String::new(),
            removed_release: String::new(),
        };
        for (key, value) in labels_of(labels) {
            match key {
                "group" => r.group = value,
                "version" => r.version = value,
                "resource" => r.resource = value,
                "removed_release" => r.removed_release = value,
                _ => {}
            }
        }
        if !r.version.is_empty() && !r.resource.is_empty() && !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// `key="value"` pairs, with the format's escapes (`\"`, `\\`, `\n`) undone.
fn labels_of(text: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        let Some((key, after)) = rest.split_once("=\"") else {
            return out;
        };
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let Some(end) = end else {
            return out;
        };
        out.push((key.trim(), value));
        rest = &after[end..];
    }
}

/// Findings for the requested APIs that a hop removes.
pub fn check(text: &str, removals: &Removals) -> Vec<Finding> {
    parse(text)
        .iter()
        .filter_map(|r| removals.by_resource(&r.group, &r.version, &r.resource))
        .map(|api| finding(api, Source::Metric, None, &api.resource))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_series_with_value_one_only() {
        let text = r#"# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="",version="v1beta3"} 1
apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",resource="cronjobs",subresource="",version="v1beta1"} 0
apiserver_request_total{code="200",group="",resource="pods",verb="LIST",version="v1"} 17
apiserver_requested_deprecated_apis{group="x\"y",removed_release="1.40",resource="things",subresource="",version="v1"} 1
apiserver_requested_deprecated_apis{broken
"#;
        let got = parse(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].group, "flowcontrol.apiserver.k8s.io");
        assert_eq!(got[0].resource, "flowschemas");
        assert_eq!(got[0].removed_release, "1.32");
        assert_eq!(got[1].group, "x\"y");
    }
}
