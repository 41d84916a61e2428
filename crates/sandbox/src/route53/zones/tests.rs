//! Change batches against a zone, and what resolvers see of them.

use super::*;
use crate::scenario::{HostedZoneSpec, RecordSpec};

fn weighted(id: &str, weight: u64) -> RecordSet {
    RecordSet {
        name: "app.example.com.".into(),
        kind: "CNAME".into(),
        set_identifier: Some(id.into()),
        weight: Some(weight),
        ttl: Some(60),
        values: vec![format!("{id}.elb.example.net")],
    }
}

fn zones() -> (Zones, String) {
    let spec = Route53Spec {
        hosted_zones: vec![HostedZoneSpec {
            name: "example.com".into(),
            records: vec![RecordSpec {
                name: "app.example.com".into(),
                kind: "CNAME".into(),
                ttl: 60,
                values: vec!["blue.elb.example.net".into()],
                service: None,
                set_identifier: Some("blue".into()),
                weight: Some(100),
            }],
        }],
    };
    let z = Zones::new(&spec, Duration::from_secs(3600));
    let id = z.all()[0].id.clone();
    (z, id)
}

fn upsert(set: RecordSet) -> Requested {
    Requested {
        action: "UPSERT".into(),
        set,
    }
}

#[test]
fn names_sort_as_route_53_sorts_them_reversed_as_one_string() {
    let mut names = [
        "app.www.example.com.",
        "app-green.example.com.",
        "app.example.com.",
    ]
    .map(|n| (reversed(n), n));
    names.sort();
    assert_eq!(
        names.map(|(_, n)| n),
        [
            "app.example.com.",
            "app-green.example.com.",
            "app.www.example.com."
        ]
    );
}

#[test]
fn a_batch_applies_whole_or_not_at_all() {
    let (z, id) = zones();
    let create_blue = Requested {
        action: "CREATE".into(),
        set: weighted("blue", 100),
    };
    let refused = z.apply(&id, &[upsert(weighted("green", 10)), create_blue], None);
    assert_eq!(
        refused.map(|c| c.id),
        Err(Refusal::InvalidChangeBatch(vec![
            "Tried to create resource record set [name='app.example.com.', type='CNAME', set-identifier='blue'] but it already exists".into()
        ]))
    );
    // The first change of the refused batch did not stay.
    assert_eq!(z.zone(&id).map(|z| z.records.len()), Ok(3));
    let change = z
        .apply(
            &id,
            &[upsert(weighted("blue", 90)), upsert(weighted("green", 10))],
            None,
        )
        .expect("applied");
    assert_eq!(change.status(), "PENDING");
    let weights: Vec<(Option<String>, Option<u64>)> = z
        .zone(&id)
        .expect("zone")
        .records
        .iter()
        .filter(|r| r.kind == "CNAME")
        .map(|r| (r.set_identifier.clone(), r.weight))
        .collect();
    assert_eq!(
        weights,
        [
            (Some("blue".into()), Some(90)),
            (Some("green".into()), Some(10))
        ]
    );
}

#[test]
fn malformed_and_conflicting_changes_are_refused_as_route_53_refuses_them() {
    let (z, id) = zones();
    let mut simple = weighted("x", 1);
    (simple.set_identifier, simple.weight) = (None, None);
    let Err(Refusal::InvalidChangeBatch(m)) = z.apply(&id, &[upsert(simple)], None) else {
        panic!("a simple set beside weighted ones was accepted");
    };
    assert!(m[0].contains("as a weighted set exists"), "{m:?}");
    assert!(matches!(
        z.apply(&id, &[upsert(weighted("green", 256))], None),
        Err(Refusal::InvalidInput(m)) if m.contains("less than or equal to 255")
    ));
    let mut outside = weighted("green", 1);
    outside.name = "app.example.org.".into();
    assert!(matches!(
        z.apply(&id, &[upsert(outside)], None),
        Err(Refusal::InvalidChangeBatch(m)) if m[0].contains("is not permitted in zone example.com.")
    ));
    assert!(matches!(
        z.apply("ZNOPE", &[upsert(weighted("green", 1))], None),
        Err(Refusal::NoSuchHostedZone(_))
    ));
    let delete = Requested {
        action: "DELETE".into(),
        set: weighted("blue", 5),
    };
    assert!(matches!(
        z.apply(&id, &[delete], None),
        Err(Refusal::InvalidChangeBatch(m)) if m[0].contains("do not match the current values")
    ));
}

#[test]
fn resolvers_see_a_change_once_it_is_insync_and_the_old_answer_has_expired() {
    let spec = Route53Spec {
        hosted_zones: vec![HostedZoneSpec {
            name: "example.com".into(),
            records: vec![RecordSpec {
                name: "app.example.com".into(),
                kind: "CNAME".into(),
                ttl: 0,
                values: vec!["blue.elb.example.net".into()],
                service: None,
                set_identifier: Some("blue".into()),
                weight: Some(100),
            }],
        }],
    };
    let weights = |sets: Vec<RecordSet>| -> Vec<(String, u64)> {
        sets.into_iter()
            .map(|s| (s.set_identifier.unwrap_or_default(), s.weight.unwrap_or(0)))
            .collect()
    };
    // Propagation takes no time and the old answer had TTL 0: seen at once.
    let z = Zones::new(&spec, Duration::ZERO);
    let id = z.all()[0].id.clone();
    z.apply(
        &id,
        &[upsert(weighted("blue", 90)), upsert(weighted("green", 10))],
        None,
    )
    .expect("applied");
    assert_eq!(
        weights(z.effective("app.example.com", "cname", 1.0)),
        [("blue".to_string(), 90), ("green".to_string(), 10)]
    );
    // The new sets have TTL 60: the next change waits for caches, emulated seconds over speed.
    z.apply(&id, &[upsert(weighted("green", 50))], None)
        .expect("applied");
    assert_eq!(
        weights(z.effective("app.example.com.", "CNAME", 1.0)),
        [("blue".to_string(), 90), ("green".to_string(), 10)]
    );
    assert_eq!(
        weights(z.effective("app.example.com.", "CNAME", 1e9)),
        [("blue".to_string(), 90), ("green".to_string(), 50)]
    );
    // Until propagation ends, resolvers keep the scenario's answer.
    let (slow, id) = zones();
    slow.apply(&id, &[upsert(weighted("blue", 0))], None)
        .expect("applied");
    assert_eq!(
        weights(slow.effective("app.example.com.", "CNAME", 1e9)),
        [("blue".to_string(), 100)]
    );
    // Names no change touched answer what the zone holds.
    assert_eq!(slow.effective("example.com.", "NS", 1.0).len(), 1);
}
