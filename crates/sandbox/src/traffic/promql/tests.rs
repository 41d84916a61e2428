//! The subset's parser and evaluator against what Prometheus answers for the same data.

use std::time::Duration;

use super::*;

struct Fixed(Vec<(Labels, Vec<(f64, f64)>)>);

impl Samples for Fixed {
    fn select(&self, selector: &Selector) -> Vec<(Labels, Vec<(f64, f64)>)> {
        self.0
            .iter()
            .filter(|(l, _)| selector.matches(l))
            .cloned()
            .collect()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const METRIC: &str = "nginx_ingress_controller_requests";

/// Two clusters; each series counts from 0 at t=1000 up by `per_second` until t=1120.
fn traffic() -> Fixed {
    let series = |cluster: &str, status: &str, per_second: f64| {
        let samples = (0..=120)
            .map(|i| (1000.0 + i as f64, per_second * i as f64))
            .collect();
        (
            labels(&[
                ("__name__", METRIC),
                ("cluster", cluster),
                ("status", status),
            ]),
            samples,
        )
    };
    Fixed(vec![
        series("blue", "200", 9.0),
        series("green", "200", 0.9),
        series("green", "503", 0.1),
    ])
}

fn vector(v: Value) -> Vec<(Labels, f64)> {
    match v {
        Value::Vector(v) => v,
        Value::Scalar(s) => panic!("expected a vector, got the scalar {s}"),
    }
}

#[test]
fn an_error_ratio_of_one_cluster_is_its_errors_over_its_requests() {
    let q = r#"sum(increase(nginx_ingress_controller_requests{cluster="green",status=~"5.."}[1m])) / sum(increase(nginx_ingress_controller_requests{cluster="green"}[1m]))"#;
    let v = vector(eval(&parse(q).unwrap(), 1120.0, &traffic()));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, Labels::new());
    assert!((v[0].1 - 0.1).abs() < 1e-9, "{v:?}");
}

#[test]
fn sum_by_keeps_only_the_named_labels_and_rate_is_per_second() {
    for q in [
        format!("sum by (cluster) (rate({METRIC}[1m]))"),
        format!("sum(rate({METRIC}[1m])) by (cluster)"),
    ] {
        let v = vector(eval(&parse(&q).unwrap(), 1120.0, &traffic()));
        let got: Vec<(String, f64)> = v
            .iter()
            .map(|(l, v)| (l["cluster"].clone(), (v * 1000.0).round() / 1000.0))
            .collect();
        // 59 increments of the counter inside (1060, 1120], over a 60 s range.
        assert_eq!(
            got,
            vec![("blue".into(), 8.85), ("green".into(), 0.983)],
            "{q}"
        );
        assert!(v.iter().all(|(l, _)| l.len() == 1), "{v:?}");
    }
}

#[test]
fn a_range_with_fewer_than_two_samples_has_no_result_rather_than_zero() {
    let q = format!("sum(increase({METRIC}[1m]))");
    assert_eq!(
        vector(eval(&parse(&q).unwrap(), 5000.0, &traffic())),
        vec![]
    );
    let q = format!("increase({METRIC}{{cluster=\"nowhere\"}}[1m])");
    assert_eq!(
        vector(eval(&parse(&q).unwrap(), 1120.0, &traffic())),
        vec![]
    );
}

#[test]
fn matchers_are_anchored_and_negations_work() {
    let count = |q: &str| vector(eval(&parse(q).unwrap(), 1120.0, &traffic())).len();
    assert_eq!(count(&format!("{METRIC}{{status=~\"5\"}}")), 0);
    assert_eq!(count(&format!("{METRIC}{{status=~\"5..\"}}")), 1);
    assert_eq!(count(&format!("{METRIC}{{status!~\"5..\"}}")), 2);
    assert_eq!(count(&format!("{METRIC}{{cluster!=\"blue\"}}")), 2);
    assert_eq!(count(&format!("{METRIC}{{missing=\"\"}}")), 3);
    assert_eq!(count("other_metric"), 0);
}

#[test]
fn a_plain_selector_answers_the_latest_sample_with_its_name() {
    let v = vector(eval(
        &parse(&format!("{METRIC}{{cluster='blue'}}")).unwrap(),
        1050.5,
        &traffic(),
    ));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0["__name__"], METRIC);
    assert_eq!(v[0].1, 450.0);
}

#[test]
fn numbers_divide_as_scalars_and_zero_over_zero_is_nan() {
    assert_eq!(
        eval(&parse("1 / 4").unwrap(), 0.0, &traffic()),
        Value::Scalar(0.25)
    );
    let Value::Scalar(nan) = eval(&parse("0 / 0").unwrap(), 0.0, &traffic()) else {
        panic!("expected a scalar");
    };
    assert_eq!(format_value(nan), "NaN");
    assert_eq!(format_value(1.0 / 0.0), "+Inf");
    assert_eq!(format_value(0.5), "0.5");
    assert_eq!(format_value(12.0), "12");
}

#[test]
fn durations_read_as_prometheus_writes_them() {
    assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(duration("2d").unwrap(), Duration::from_secs(172_800));
    for bad in ["", "5", "m", "5x", "1.5m", "5m:1m"] {
        assert!(duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn what_the_subset_does_not_evaluate_is_refused_by_name() {
    for (q, needle) in [
        (format!("avg(rate({METRIC}[1m]))"), "`avg`"),
        (
            format!("histogram_quantile(0.9, {METRIC})"),
            "`histogram_quantile`",
        ),
        (
            format!("sum without (status) (rate({METRIC}[1m]))"),
            "`without`",
        ),
        (format!("rate({METRIC}[1m]) * 100"), "`*`"),
        (format!("{METRIC}[5m]"), "matrix"),
        (format!("rate({METRIC})"), "range selector"),
        (format!("rate({METRIC}[5q])"), "`5q`"),
        (format!("{METRIC}{{status=~\"(\"}}"), "regular expression"),
        ("{cluster=\"blue\"}".to_string(), "metric name"),
        (format!("sum(rate({METRIC}[1m])"), "`)`"),
        ("".to_string(), "empty"),
        (format!("{METRIC} {METRIC}"), "after the expression"),
    ] {
        let err = parse(&q).expect_err(&q);
        assert!(err.message.contains(needle), "{q}: {}", err.message);
    }
}
