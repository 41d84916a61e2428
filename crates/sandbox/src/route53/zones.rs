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

use super::history::History;

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
    history: History,
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
                history: History::default(),
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

    /// The record sets of `name` and `kind` that resolvers answer now (see `history`).
    pub fn effective(&self, name: &str, kind: &str, speed: f64) -> Vec<RecordSet> {
        let name = fqdn(name);
        let kind = kind.to_ascii_uppercase();
        let inner = lock(&self.inner);
        if let Some(sets) = inner.history.visible(&name, &kind, speed) {
            return sets;
        }
        inner
            .zones
            .iter()
            .flat_map(|z| &z.records)
            .filter(|r| r.name == name && r.kind == kind)
            .cloned()
            .collect()
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
        let before = std::mem::replace(&mut zone.records, records);
        let after = zone.records.clone();
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
        inner
            .history
            .record(&before, &after, batch, change.insync_at);
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
mod tests;
