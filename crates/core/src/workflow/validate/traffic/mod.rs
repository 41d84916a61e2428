//! `spec.green` and `spec.traffic` as written → [`BlueGreen`]: green's name, the weighted record
//! and the error-rate gate. Each choice between two fields (`service` or `value`, `url` or
//! `urlEnv`) is a pair of optional fields checked here, so every problem keeps its location.

use crate::format::Validator;
use crate::format::lint::did_you_mean;
use crate::format::spanned::{Loc, Spanned};
use crate::steps::blue_green::{
    BlueGreen, ErrorRate, GreenTarget, PLACEHOLDERS, Prometheus, Traffic, UrlFrom,
};
use crate::types::names;
use crate::workflow::raw::{RawErrorRate, RawPrometheus, RawSpec, RawTraffic};

/// Defaults of `spec.traffic.errorRate`.
pub mod defaults {
    pub const MIN_REQUESTS: u64 = 50;
    pub const WINDOW: std::time::Duration = std::time::Duration::from_secs(120);
}

/// The blue/green settings, when the file has `spec.green` or `spec.traffic`.
pub(super) fn settings(v: &mut Validator, spec: &RawSpec) -> Option<BlueGreen> {
    if spec.green.is_none() && spec.traffic.is_none() {
        return None;
    }
    let green_name = spec
        .green
        .as_ref()
        .and_then(|g| g.value.name.as_ref())
        .map(|name| {
            if let Err(p) = names::eks_cluster_name(&name.value) {
                v.problem(
                    name.loc,
                    format!("`{}` is not a valid EKS cluster name", name.value),
                    "invalid name",
                    p.rule,
                );
            }
            name.value.clone()
        });
    let traffic = spec.traffic.as_ref().and_then(|t| traffic(v, &t.value));
    Some(BlueGreen {
        green_name,
        traffic,
    })
}

/// A DNS name without its trailing dot, in lower case.
fn dns(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn hostname(v: &mut Validator, what: &str, value: &Spanned<String>) -> bool {
    let ok = is_hostname(&dns(&value.value));
    if !ok {
        v.problem(
            value.loc,
            format!("{what} `{}` is not a DNS name", value.value),
            "not a DNS name",
            "write a name such as `app.example.com`: labels of letters, digits and `-`, separated by dots",
        );
    }
    ok
}

fn set_identifier(v: &mut Validator, value: &Spanned<String>) {
    let len = value.value.chars().count();
    if len == 0 || len > 128 {
        v.problem(
            value.loc,
            "a `setIdentifier` must have 1 to 128 characters",
            if len == 0 { "empty" } else { "too long" },
            "name the weighted set, such as `blue` or `green`",
        );
    }
}

fn traffic(v: &mut Validator, raw: &RawTraffic) -> Option<Traffic> {
    let zone_ok = hostname(v, "zone", &raw.zone);
    let record_ok = hostname(v, "record", &raw.record);
    let (zone, record) = (dns(&raw.zone.value), dns(&raw.record.value));
    if zone_ok && record_ok && record != zone && !record.ends_with(&format!(".{zone}")) {
        v.problem(
            raw.record.loc,
            format!("record `{record}` is not in zone `{zone}`"),
            "outside the zone",
            format!("name a record that ends in `.{zone}`, or the zone that holds `{record}`"),
        );
    }
    let blue = &raw.blue.value.set_identifier;
    let green = &raw.green.value.set_identifier;
    set_identifier(v, blue);
    set_identifier(v, green);
    if blue.value == green.value {
        v.problem(
            green.loc,
            format!("blue and green both use `setIdentifier` `{}`", green.value),
            "same as blue's",
            "give green's weighted set its own identifier, such as `green`",
        );
    }
    // Both are checked before either may end the settings: every problem is reported.
    let green_target = green_target(v, &raw.green);
    let error_rate = match raw.error_rate.as_ref().map(|e| error_rate(v, &e.value)) {
        Some(None) => return None,
        Some(Some(e)) => Some(e),
        None => None,
    };
    let green_target = green_target?;
    Some(Traffic {
        zone,
        record,
        blue_set: blue.value.clone(),
        green_set: green.value.clone(),
        green_target,
        error_rate,
    })
}

fn green_target(
    v: &mut Validator,
    raw: &Spanned<crate::workflow::raw::RawGreenSet>,
) -> Option<GreenTarget> {
    match (&raw.value.service, &raw.value.value) {
        (Some(service), None) => {
            let parts: Vec<&str> = service.value.split('/').collect();
            // Namespaces and Service names are RFC 1123 labels.
            let valid = |s: &str| {
                !s.is_empty()
                    && s.len() <= 63
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !s.starts_with('-')
                    && !s.ends_with('-')
            };
            match parts.as_slice() {
                [ns, name] if valid(ns) && valid(name) => Some(GreenTarget::Service {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                }),
                _ => {
                    v.problem(
                        service.loc,
                        format!("`{}` is not a Service as `namespace/name`", service.value),
                        "not namespace/name",
                        "name the LoadBalancer Service on green, such as `shop/web`",
                    );
                    None
                }
            }
        }
        (None, Some(value)) => {
            hostname(v, "green's value", value).then(|| GreenTarget::Value(dns(&value.value)))
        }
        (Some(_), Some(value)) => {
            v.problem(
                value.loc,
                "green's set has both `service` and `value`",
                "second target",
                "keep one: `service` points the record at that Service's load balancer on green, `value` at a name you give",
            );
            None
        }
        (None, None) => {
            v.problem(
                raw.loc,
                "green's set does not say where it points",
                "no `service` or `value`",
                "add `service: namespace/name` (a LoadBalancer Service on green) or `value: <hostname>`",
            );
            None
        }
    }
}

fn error_rate(v: &mut Validator, raw: &RawErrorRate) -> Option<ErrorRate> {
    let prometheus = prometheus(v, &raw.prometheus);
    let max = percent(v, &raw.max);
    if let Some(min) = &raw.min_requests
        && min.value == 0
    {
        v.problem(
            min.loc,
            "`minRequests` must be at least 1",
            "zero",
            "a rate over no requests says nothing; the default is `50`",
        );
    }
    let window = v.positive("window", raw.window.as_ref(), defaults::WINDOW);
    Some(ErrorRate {
        prometheus: prometheus?,
        max: max?,
        min_requests: raw
            .min_requests
            .as_ref()
            .map_or(defaults::MIN_REQUESTS, |m| m.value),
        window,
    })
}

/// `1%` → 0.01.
fn percent(v: &mut Validator, raw: &Spanned<crate::format::text::PercentText>) -> Option<f64> {
    let text = raw.value.0.trim();
    let number = text
        .strip_suffix('%')
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && (0.0..=100.0).contains(n));
    if number.is_none() {
        v.problem(
            raw.loc,
            format!("`max` `{text}` is not a percentage from 0% to 100%"),
            "not a percentage",
            "write a percentage such as `1%` or `0.5%`",
        );
    }
    number.map(|n| n / 100.0)
}

fn prometheus(v: &mut Validator, raw: &Spanned<RawPrometheus>) -> Option<Prometheus> {
    let p = &raw.value;
    let url = match (&p.url, &p.url_env) {
        (Some(u), None) => {
            if !(u.value.starts_with("https://") || u.value.starts_with("http://")) {
                v.problem(
                    u.loc,
                    "the Prometheus `url` is not an http(s) URL",
                    "not http(s)",
                    "write the query API's base URL, such as `http://prometheus:9090`",
                );
            }
            Some(UrlFrom::Literal(u.value.trim_end_matches('/').to_string()))
        }
        (None, Some(e)) => {
            if !crate::types::names::env_var(&e.value) {
                v.problem(
                    e.loc,
                    format!("`{}` is not an environment variable name", e.value),
                    "invalid name",
                    "use letters, digits and `_`, such as `PROMETHEUS_URL`",
                );
            }
            Some(UrlFrom::Env(e.value.clone()))
        }
        (Some(_), Some(e)) => {
            v.problem(
                e.loc,
                "`prometheus` has both `url` and `urlEnv`",
                "second source",
                "keep one: `urlEnv` reads the URL from the environment when the run starts",
            );
            None
        }
        (None, None) => {
            v.problem(
                raw.loc,
                "`prometheus` does not say where the query API is",
                "no `url` or `urlEnv`",
                "add `urlEnv: PROMETHEUS_URL` (or `url: http://prometheus:9090`)",
            );
            None
        }
    };
    let errors = query(v, "errors", &p.errors);
    let requests = query(v, "requests", &p.requests);
    Some(Prometheus {
        url: url?,
        errors: errors?,
        requests: requests?,
    })
}

/// A query: not empty, only known placeholders, and `{cluster}` among them (without it blue's
/// and green's rates would be the same number).
fn query(v: &mut Validator, field: &str, raw: &Spanned<String>) -> Option<String> {
    let text = raw.value.trim();
    if text.is_empty() {
        v.problem(
            raw.loc,
            format!("the `{field}` query is empty"),
            "empty",
            "write a PromQL expression that counts requests over `[{window}]`",
        );
        return None;
    }
    let mut ok = true;
    for name in placeholders(text) {
        if !PLACEHOLDERS.contains(&name) {
            let help = match did_you_mean(name, PLACEHOLDERS.iter().copied()) {
                Some(s) => format!("did you mean `{{{s}}}`?"),
                None => "the placeholders are `{cluster}` and `{window}`".to_string(),
            };
            v.problem(
                raw.loc,
                format!("the `{field}` query has an unknown placeholder `{{{name}}}`"),
                "unknown placeholder",
                help,
            );
            ok = false;
        }
    }
    // An unknown placeholder already points at the spelling meant.
    if ok && !text.contains("{cluster}") {
        v.problem(
            raw.loc,
            format!("the `{field}` query does not name `{{cluster}}`"),
            "no `{cluster}`",
            "select the cluster with a matcher such as `cluster=\"{cluster}\"`: green's and blue's rates are read with the same query",
        );
        ok = false;
    }
    ok.then(|| text.to_string())
}

/// Every `{name}` whose inside is a bare identifier: PromQL's own braces hold matchers
/// (`{status=~"5.."}`), never a lone word.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find(['{', '}']) else {
            break;
        };
        let inside = &after[..close];
        if after[close..].starts_with('}')
            && !inside.is_empty()
            && inside
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            out.push(inside);
        }
        rest = &after[close..];
    }
    out
}

/// Where the settings are, for problems about them as a whole.
pub(super) fn settings_loc(spec: &RawSpec) -> Option<Loc> {
    spec.green
        .as_ref()
        .map(|g| g.loc)
        .or_else(|| spec.traffic.as_ref().map(|t| t.loc))
}

#[cfg(test)]
mod tests;
