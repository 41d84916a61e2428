//! Hosted zones, their record sets and the changes made to them, with the rules Route 53
//! applies to a change batch: every change is checked against the zone as the changes before
//! it in the batch leave it, and the batch is applied whole or not at all. A change is `PENDING`
//! until it has propagated (`timings.dnsPropagation`), then `INSYNC`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::scenario::{Route53Spec, fqdn, in_zone};
use crate::sim::names;

/// A record set as Route 53 keeps it. Alias records are not emulated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSet {
    pub name: String,
    pub kind: String,
    pub set_identifier: Option<String>,
    pub weight: Option<u64>,
    pub ttl: Option<u64>,
    pub values: Vec<String>,
}

impl RecordSet {
    /// How Route 53 names a record set in its messages.
    pub fn describe(&self) -> String {
        match &self.set_identifier {
            Some(id) => format!(
                "[name='{}', type='{}', set-identifier='{id}']",
                self.name, self.kind
            ),
            None => format!("[name='{}', type='{}']", self.name, self.kind),
        }
    }

    fn same_set(&self, other: &RecordSet) -> bool {
        self.name == other.name
            && self.kind == other.kind
            && self.set_identifier == other.set_identifier
    }

    /// Route 53 lists record sets by name with its labels reversed and compared as one string
    /// (`com.example.app-green` before `com.example.app.www`: `-` sorts before `.`), then type,
    /// then identifier.
    pub(crate) fn order(&self) -> (String, String, String) {
        (
            reversed(&self.name),
            self.kind.clone(),
            self.set_identifier.clone().unwrap_or_default(),
        )
    }
}

/// A DNS name with its labels reversed, as Route 53 sorts names: `com.example.app`.
pub fn reversed(name: &str) -> String {
    name.trim_end_matches('.')
        .rsplit('.')
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Debug, Clone)]
pub struct Zone {
    /// `Z…`, without the `/hostedzone/` prefix.
    pub id: String,
    pub name: String,
    pub caller_reference: String,
    pub name_servers: Vec<String>,
    pub records: Vec<RecordSet>,
}

/// One change batch, as `GetChange` reports it.
#[derive(Debug, Clone)]
pub struct Change {
    pub id: String,
    pub submitted: DateTime<Utc>,
    pub comment: Option<String>,
    insync_at: Instant,
}

impl Change {
    pub fn status(&self) -> &'static str {
        if Instant::now() >= self.insync_at {
            "INSYNC"
        } else {
            "PENDING"
        }
    }
}

/// What a change batch asks, one entry per `<Change>`.
#[derive(Debug, Clone)]
pub struct Requested {
    pub action: String,
    pub set: RecordSet,
}

/// Why Route 53 refuses a request: `InvalidChangeBatch` (every message of the batch) or
/// `InvalidInput` (the first malformed change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoSuchHostedZone(String),
    NoSuchChange(String),
    InvalidChangeBatch(Vec<String>),
    InvalidInput(String),
}

#[derive(Default)]
struct Inner {
    zones: Vec<Zone>,
    changes: BTreeMap<String, Change>,
}

/// Every hosted zone of the account, and every change made.
pub struct Zones {
    inner: Mutex<Inner>,
    /// Emulated propagation time, already divided by the sandbox's speed.
    propagation: Duration,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A panic while holding the lock is a sandbox bug; keep serving rather than cascading.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Zones {
    pub fn new(spec: &Route53Spec, propagation: Duration) -> Zones {
        let zones = spec
            .hosted_zones
            .iter()
            .map(|z| {
                let name = fqdn(&z.name);
                let id = format!("Z{}", names::suffix(&name, 20).to_ascii_uppercase());
                let name_servers: Vec<String> = (0..4)
                    .map(|i| {
                        let tld = ["com", "net", "org", "co.uk"][i];
                        format!("ns-{}.awsdns-{:02}.{tld}", 100 + i * 500, 10 + i)
                    })
                    .collect();
                let mut records = vec![
                    RecordSet {
                        name: name.clone(),
                        kind: "NS".into(),
                        set_identifier: None,
                        weight: None,
                        ttl: Some(172_800),
                        values: name_servers.iter().map(|n| format!("{n}.")).collect(),
                    },
                    RecordSet {
                        name: name.clone(),
                        kind: "SOA".into(),
                        set_identifier: None,
                        weight: None,
                        ttl: Some(900),
                        values: vec![format!(
                            "{}. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400",
                            name_servers[0]
                        )],
                    },
                ];
                records.extend(z.records.iter().map(|r| RecordSet {
                    name: fqdn(&r.name),
                    kind: r.kind.to_ascii_uppercase(),
                    set_identifier: r.set_identifier.clone(),
                    weight: r.weight,
                    ttl: Some(r.ttl),
                    values: r.values.clone(),
                }));
                records.sort_by_key(RecordSet::order);
                Zone {
                    id,
                    caller_reference: format!("sandbox-{name}"),
                    name,
                    name_servers,
                    records,
                }
            })
            .collect();
        Zones {
            inner: Mutex::new(Inner {
                zones,
                changes: BTreeMap::new(),
            }),
            propagation,
        }
    }

    pub fn all(&self) -> Vec<Zone> {
        lock(&self.inner).zones.clone()
    }

    pub fn zone(&self, id: &str) -> Result<Zone, Refusal> {
        lock(&self.inner)
            .zones
            .iter()
            .find(|z| z.id == id)
            .cloned()
            .ok_or_else(|| Refusal::NoSuchHostedZone(id.to_string()))
    }

    pub fn change(&self, id: &str) -> Result<Change, Refusal> {
        lock(&self.inner)
            .changes
            .get(id)
            .cloned()
            .ok_or_else(|| Refusal::NoSuchChange(id.to_string()))
    }

    /// Applies a change batch to zone `id` whole, or refuses it whole.
    pub fn apply(
        &self,
        id: &str,
        batch: &[Requested],
        comment: Option<String>,
    ) -> Result<Change, Refusal> {
        let mut inner = lock(&self.inner);
        let zone = inner
            .zones
            .iter_mut()
            .find(|z| z.id == id)
            .ok_or_else(|| Refusal::NoSuchHostedZone(id.to_string()))?;
        for r in batch {
            well_formed(r)?;
        }
        let mut records = zone.records.clone();
        let mut problems = Vec::new();
        for r in batch {
            if let Err(p) = apply_one(&zone.name, &mut records, r) {
                problems.push(p);
            }
        }
        if !problems.is_empty() {
            return Err(Refusal::InvalidChangeBatch(problems));
        }
        records.sort_by_key(RecordSet::order);
        zone.records = records;
        let submitted = Utc::now();
        let change = Change {
            id: format!(
                "C{}",
                names::suffix(&format!("{id}{submitted:?}"), 20).to_ascii_uppercase()
            ),
            submitted,
            comment,
            insync_at: Instant::now() + self.propagation,
        };
        inner.changes.insert(change.id.clone(), change.clone());
        Ok(change)
    }
}

/// What the request's schema refuses, before the zone is looked at.
fn well_formed(r: &Requested) -> Result<(), Refusal> {
    let s = &r.set;
    let change = format!(
        "Change with [Action={}, Name={}, Type={}, SetIdentifier={}]",
        r.action,
        s.name,
        s.kind,
        s.set_identifier.as_deref().unwrap_or("null")
    );
    if !matches!(r.action.as_str(), "CREATE" | "DELETE" | "UPSERT") {
        return Err(Refusal::InvalidInput(format!(
            "Invalid XML ; cvc-enumeration-valid: Value '{}' is not facet-valid with respect to enumeration '[CREATE, DELETE, UPSERT]'. It must be a value from the enumeration.",
            r.action
        )));
    }
    if s.ttl.is_none() || s.values.is_empty() {
        return Err(Refusal::InvalidInput(format!(
            "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in {change}"
        )));
    }
    if let Some(w) = s.weight.filter(|w| *w > 255) {
        return Err(Refusal::InvalidInput(format!(
            "1 validation error detected: Value '{w}' at 'changeBatch.changes.1.member.resourceRecordSet.weight' failed to satisfy constraint: Member must have value less than or equal to 255"
        )));
    }
    match (&s.set_identifier, s.weight) {
        (Some(_), None) => Err(Refusal::InvalidInput(format!(
            "Invalid request: Missing field 'Weight' in {change}"
        ))),
        (None, Some(_)) => Err(Refusal::InvalidInput(format!(
            "Invalid request: Missing field 'SetIdentifier' in {change}"
        ))),
        _ => Ok(()),
    }
}

/// One change against the records as the batch has left them so far.
fn apply_one(zone: &str, records: &mut Vec<RecordSet>, r: &Requested) -> Result<(), String> {
    let s = &r.set;
    if !in_zone(&s.name, zone) {
        return Err(format!(
            "RRSet with DNS name {} is not permitted in zone {zone}",
            s.name
        ));
    }
    let existing = records.iter().position(|x| x.same_set(s));
    match r.action.as_str() {
        "DELETE" => match existing {
            Some(i) if records[i] == *s => {
                records.remove(i);
                Ok(())
            }
            Some(_) => Err(format!(
                "Tried to delete resource record set {} but the values provided do not match the current values",
                s.describe()
            )),
            None => Err(format!(
                "Tried to delete resource record set {} but it was not found",
                s.describe()
            )),
        },
        action => {
            if action == "CREATE" && existing.is_some() {
                return Err(format!(
                    "Tried to create resource record set {} but it already exists",
                    s.describe()
                ));
            }
            // Weighted and simple record sets of one name and type do not mix.
            let weighted = s.set_identifier.is_some();
            if records.iter().any(|x| {
                x.name == s.name && x.kind == s.kind && x.set_identifier.is_some() != weighted
            }) {
                return Err(format!(
                    "RRSet with DNS name {}, type {} cannot be created as {} set exists with the same name and type",
                    s.name,
                    s.kind,
                    if weighted {
                        "a non-weighted"
                    } else {
                        "a weighted"
                    }
                ));
            }
            if (s.kind == "CNAME"
                && records
                    .iter()
                    .any(|x| x.name == s.name && x.kind != "CNAME"))
                || (s.kind != "CNAME"
                    && records
                        .iter()
                        .any(|x| x.name == s.name && x.kind == "CNAME"))
            {
                return Err(format!(
                    "RRSet of type {} with DNS name {} is not permitted because a conflicting RRSet of type {} with the same DNS name already exists in zone {zone}",
                    s.kind,
                    s.name,
                    if s.kind == "CNAME" {
                        "other than CNAME"
                    } else {
                        "CNAME"
                    }
                ));
            }
            match existing {
                Some(i) => records[i] = s.clone(),
                None => records.push(s.clone()),
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
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
}
