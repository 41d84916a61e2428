//! `spec.green` and `spec.traffic` from YAML to settings, and their problems.

use super::*;
use crate::steps::blue_green::ErrorRate;
use crate::types::HumanDuration;

/// The settings and the problems' messages of a `spec` written as YAML.
fn settings_of(yaml: &str) -> (Option<BlueGreen>, Vec<String>) {
    let spec: RawSpec = serde_saphyr::from_str_with_options(yaml, crate::format::parse_options())
        .expect("the spec parses");
    let mut v = Validator::new(yaml);
    let out = settings(&mut v, &spec);
    let problems = v.into_problems().into_iter().map(|p| p.message).collect();
    (out, problems)
}

const GOOD: &str = r#"
green: { name: demo-green }
traffic:
  zone: example.com
  record: App.Example.com.
  blue: { setIdentifier: blue }
  green: { setIdentifier: green, service: shop/web }
  errorRate:
    prometheus:
      urlEnv: PROMETHEUS_URL
      errors: 'sum(increase(x{cluster="{cluster}",status=~"5.."}[{window}]))'
      requests: 'sum(increase(x{cluster="{cluster}"}[{window}]))'
    max: 1.5%
"#;

#[test]
fn the_settings_are_read_with_their_defaults() {
    let (bg, problems) = settings_of(GOOD);
    assert_eq!(problems, Vec::<String>::new());
    let bg = bg.expect("settings");
    assert_eq!(bg.green_name.as_deref(), Some("demo-green"));
    let t = bg.traffic.expect("traffic");
    assert_eq!(
        (t.zone.as_str(), t.record.as_str()),
        ("example.com", "app.example.com")
    );
    assert_eq!(
        (t.blue_set.as_str(), t.green_set.as_str()),
        ("blue", "green")
    );
    assert_eq!(
        t.green_target,
        GreenTarget::Service {
            namespace: "shop".into(),
            name: "web".into()
        }
    );
    let ErrorRate {
        prometheus,
        max,
        min_requests,
        window,
    } = t.error_rate.expect("error rate");
    assert_eq!(prometheus.url, UrlFrom::Env("PROMETHEUS_URL".into()));
    assert!((max - 0.015).abs() < 1e-12, "{max}");
    assert_eq!(min_requests, defaults::MIN_REQUESTS);
    assert_eq!(window, HumanDuration(defaults::WINDOW));
}

#[test]
fn no_settings_is_none() {
    assert_eq!(settings_of("target: \"1.35\"\n"), (None, vec![]));
}

#[test]
fn each_choice_takes_exactly_one_field() {
    let both = GOOD
        .replace(
            "service: shop/web",
            "service: shop/web, value: lb.example.com",
        )
        .replace(
            "urlEnv: PROMETHEUS_URL",
            "url: 'http://p:9090'\n      urlEnv: P",
        );
    let (_, problems) = settings_of(&both);
    assert_eq!(
        problems,
        [
            "green's set has both `service` and `value`",
            "`prometheus` has both `url` and `urlEnv`"
        ]
    );
    let neither = GOOD
        .replace(", service: shop/web", "")
        .replace("urlEnv: PROMETHEUS_URL", "");
    let (_, problems) = settings_of(&neither);
    assert_eq!(
        problems,
        [
            "green's set does not say where it points",
            "`prometheus` does not say where the query API is"
        ]
    );
}

#[test]
fn bad_values_are_named_where_they_are() {
    let bad = GOOD
        .replace("name: demo-green", "name: -bad")
        .replace("record: App.Example.com.", "record: app.example.org")
        .replace("setIdentifier: green", "setIdentifier: blue")
        .replace("service: shop/web", "service: web")
        .replace("max: 1.5%", "max: 150%")
        .replace(
            r#"x{cluster="{cluster}"}[{window}]"#,
            r#"x{cluster="{clutser}"}[{window}]"#,
        );
    let (_, problems) = settings_of(&bad);
    assert_eq!(
        problems,
        [
            "`-bad` is not a valid EKS cluster name",
            "record `app.example.org` is not in zone `example.com`",
            "blue and green both use `setIdentifier` `blue`",
            "`web` is not a Service as `namespace/name`",
            "the `requests` query has an unknown placeholder `{clutser}`",
            "`max` `150%` is not a percentage from 0% to 100%",
        ]
    );
}

#[test]
fn placeholders_are_bare_words_in_braces() {
    assert_eq!(
        placeholders(r#"sum(increase(x{cluster="{cluster}",status=~"5.."}[{window}]))"#),
        vec!["cluster", "window"]
    );
    assert_eq!(placeholders("x{job}"), vec!["job"]);
    assert!(placeholders(r#"sum(x{a="b"})"#).is_empty());
    assert!(placeholders("x{}").is_empty());
    assert!(placeholders("x{").is_empty());
}

#[test]
fn names_compare_without_the_trailing_dot_or_case() {
    assert_eq!(dns("App.Example.com."), "app.example.com");
    assert!(is_hostname(
        "k8s-shop-web-0123456789.elb.eu-west-1.amazonaws.com"
    ));
    assert!(!is_hostname("app..example.com"));
    assert!(!is_hostname("app example.com"));
}
