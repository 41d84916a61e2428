//! The options of `shiftTraffic` as built, and its plan and time scaling.

use super::*;
use crate::steps::blue_green::BlueGreen;

fn traffic() -> Traffic {
    crate::steps::blue_green::example_traffic()
}

/// The step built from `yaml`, with or without `spec.traffic`, and its problems' messages.
fn built(yaml: &str, with_traffic: bool) -> (Option<ShiftTraffic>, Vec<String>) {
    let raw: Spanned<RawShiftTraffic> =
        serde_saphyr::from_str_with_options(yaml, crate::format::parse_options())
            .expect("the options parse");
    let mut v = Validator::new(yaml);
    let velero = crate::velero::Settings {
        namespace: "velero".into(),
        storage_location: "default".into(),
    };
    let bg = BlueGreen {
        green_name: None,
        traffic: with_traffic.then(traffic),
    };
    let cx = BuildCx {
        velero: &velero,
        blue_green: Some(&bg),
        dir: std::path::Path::new("."),
    };
    let step = ShiftTrafficKind::build(&raw, &mut v, &cx);
    let problems = v.into_problems().into_iter().map(|p| p.message).collect();
    (step, problems)
}

#[test]
fn defaults_are_three_stages_of_five_minutes() {
    let (step, problems) = built("{}", true);
    assert!(problems.is_empty(), "{problems:?}");
    let step = step.expect("built");
    assert_eq!(step.stages, [10, 50, 100]);
    assert_eq!(step.hold.to_string(), "5m");
    assert_eq!(step.interval.to_string(), "30s");
    assert_eq!(step.timeout.to_string(), "15m");
    assert_eq!(step.traffic, traffic());
}

#[test]
fn stages_and_timeout_are_checked_where_written() {
    let (_, problems) = built("{ stages: [50, 10, 90], hold: 10m, timeout: 5m }", true);
    assert_eq!(
        problems,
        [
            "the last stage sends green `90`%, not all the traffic",
            "stage `10` does not move past `50` before it",
            "`timeout` 5m is shorter than `hold` 10m",
        ]
    );
}

#[test]
fn without_spec_traffic_the_step_is_refused() {
    let (step, problems) = built("{ stages: [100] }", false);
    assert!(step.is_none());
    assert_eq!(
        problems,
        ["`shiftTraffic` moves DNS weights, but the workflow has no `spec.traffic`"]
    );
}

#[test]
fn a_faster_clock_shortens_the_waits_and_the_ttl() {
    let (step, _) = built("{ hold: 10m, interval: 1m }", true);
    let mut step = step.expect("built");
    ShiftTrafficKind::scale_time(&mut step, &TimeScale::new(600.0).expect("a scale"));
    assert_eq!(step.hold.0, Duration::from_secs(1));
    assert_eq!(step.interval.0, Duration::from_millis(100));
    // A 60 s TTL lasts a tenth of a second.
    assert_eq!((step.ttl_second.0 * 60).as_millis(), 100);
}
