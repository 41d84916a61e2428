//! The Route 53 calls a blue/green switch makes: find the hosted zone, read the weighted record
//! sets of one name, move their weights in one change batch, and wait until the change is
//! `INSYNC`. Route 53 applies a batch whole or not at all, so moving every weight in one batch is
//! the atomic switch (and switch back) the product promises.
//!
//! A set whose weight changes is deleted exactly as it was read and created again with its new
//! weight, in the same batch, rather than upserted: if the set changed since it was read (a
//! replayed step, a person's edit), Route 53 refuses the batch instead of applying it twice.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};

use crate::types::HumanDuration;

/// Why a Route 53 step could not do what it set out to.
#[derive(Debug, thiserror::Error)]
pub enum Route53Error {
    /// A call failed: Route 53's code and message in one line, the SDK error as the cause.
    #[error("Route 53 `{operation}` failed: {message}")]
    Call {
        operation: &'static str,
        /// `InvalidChangeBatch`, `NoSuchHostedZone`, `Throttling`, …
        code: Option<String>,
        message: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("no public hosted zone `{zone}` in this account")]
    NoZone { zone: String },
    #[error("{count} public hosted zones are named `{zone}`; name the zone's id instead")]
    ManyZones { zone: String, count: usize },
    #[error("the weighted record `{set}` of `{name}` is {what}, which the tool does not move")]
    Unsupported {
        name: String,
        set: String,
        what: &'static str,
    },
    #[error("a record of `{name}` has a value Route 53 cannot take: {why}")]
    Invalid { name: String, why: String },
    #[error("Route 53 accepted a change of `{name}` without saying its id")]
    NoChangeId { name: String },
    #[error("Route 53 change `{id}` was still `PENDING` after {waited}")]
    NotInSync { id: String, waited: HumanDuration },
}

impl Route53Error {
    /// Route 53's error code, when a call failed with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Route53Error::Call { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

fn call_error<
    E: aws_sdk_route53::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
>(
    operation: &'static str,
    e: aws_sdk_route53::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Route53Error {
    let failure = crate::errors::aws("Route 53", operation, &e);
    Route53Error::Call {
        operation,
        code: failure.code,
        message: failure.message,
        source: Box::new(e),
    }
}

/// One weighted record set of a name and type, as Route 53 keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    pub set_identifier: String,
    pub weight: i64,
    pub ttl: i64,
    pub values: Vec<String>,
}

/// `name` as Route 53 answers it: lower case, fully qualified.
pub fn fqdn(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// The id (`Z…`, without `/hostedzone/`) of the one public hosted zone named `zone`. A private
/// zone of the same name (split-horizon DNS) answers only inside its VPCs: it is not the one
/// users reach, and never the one switched.
pub async fn zone_id(r53: &aws_sdk_route53::Client, zone: &str) -> Result<String, Route53Error> {
    let wanted = fqdn(zone);
    // Zones come in name order from `wanted` on: those named so are first.
    let found = r53
        .list_hosted_zones_by_name()
        .dns_name(&wanted)
        .max_items(100)
        .send()
        .await
        .map_err(|e| call_error("ListHostedZonesByName", e))?;
    let public: Vec<&str> = found
        .hosted_zones()
        .iter()
        .filter(|z| fqdn(z.name()) == wanted)
        .filter(|z| z.config().is_none_or(|c| !c.private_zone()))
        .map(|z| z.id().trim_start_matches("/hostedzone/"))
        .collect();
    match public.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Route53Error::NoZone { zone: wanted }),
        many => Err(Route53Error::ManyZones {
            zone: wanted,
            count: many.len(),
        }),
    }
}

/// The weighted sets of `name` and `kind` (`CNAME`, `A`, …), in Route 53's order. Simple
/// records of the name are not returned: they are not weighted.
pub async fn weighted(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    kind: &str,
) -> Result<Vec<Weighted>, Route53Error> {
    let (name, kind) = (fqdn(name), RrType::from(kind.to_ascii_uppercase().as_str()));
    let mut out = Vec::new();
    let (mut start_name, mut start_id) = (Some(name.clone()), None::<String>);
    while let Some(from) = start_name.take() {
        let page = r53
            .list_resource_record_sets()
            .hosted_zone_id(zone_id)
            .start_record_name(from)
            .start_record_type(kind.clone())
            .set_start_record_identifier(start_id.take())
            .send()
            .await
            .map_err(|e| call_error("ListResourceRecordSets", e))?;
        let mut past = false;
        for set in page.resource_record_sets() {
            if fqdn(set.name()) != name || set.r#type() != &kind {
                past = true;
                break;
            }
            if let (Some(id), Some(_)) = (set.set_identifier(), set.weight()) {
                // An alias or a health check would be lost by a delete and create of what is
                // read here: refuse rather than move such a set wrongly.
                let what = if set.alias_target().is_some() {
                    Some("an alias")
                } else if set.health_check_id().is_some() {
                    Some("tied to a health check")
                } else {
                    None
                };
                if let Some(what) = what {
                    return Err(Route53Error::Unsupported {
                        name: name.clone(),
                        set: id.to_string(),
                        what,
                    });
                }
            }
            if let (Some(id), Some(weight)) = (set.set_identifier(), set.weight()) {
                out.push(Weighted {
                    set_identifier: id.to_string(),
                    weight,
                    ttl: set.ttl().unwrap_or(0),
                    values: set
                        .resource_records()
                        .iter()
                        .map(|r| r.value().to_string())
                        .collect(),
                });
            }
        }
        // The next page starts at another type: past the sets of this one.
        let same_type = page.next_record_type().is_some_and(|t| t == &kind);
        if !past && page.is_truncated() && same_type {
            start_name = page.next_record_name().map(str::to_string);
            start_id = page.next_record_identifier().map(str::to_string);
        }
    }
    Ok(out)
}

fn record_set(name: &str, kind: &RrType, w: &Weighted) -> Result<ResourceRecordSet, Route53Error> {
    let invalid = |e: aws_sdk_route53::error::BuildError| Route53Error::Invalid {
        name: name.to_string(),
        why: e.to_string(),
    };
    let records = w
        .values
        .iter()
        .map(|v| ResourceRecord::builder().value(v).build().map_err(invalid))
        .collect::<Result<Vec<_>, _>>()?;
    ResourceRecordSet::builder()
        .name(name)
        .r#type(kind.clone())
        .set_identifier(&w.set_identifier)
        .weight(w.weight)
        .ttl(w.ttl)
        .set_resource_records(Some(records))
        .build()
        .map_err(invalid)
}

/// The changes that take `current` to `desired`: nothing for a set already as desired; the exact
/// current set deleted and the desired one created for a set that differs; a create for a set
/// that does not exist yet. Sets of `current` that `desired` does not name stay as they are.
pub fn changes(current: &[Weighted], desired: &[Weighted]) -> Vec<(ChangeAction, Weighted)> {
    let mut out = Vec::new();
    for d in desired {
        match current
            .iter()
            .find(|c| c.set_identifier == d.set_identifier)
        {
            Some(c) if c == d => {}
            Some(c) => {
                out.push((ChangeAction::Delete, c.clone()));
                out.push((ChangeAction::Create, d.clone()));
            }
            None => out.push((ChangeAction::Create, d.clone())),
        }
    }
    out
}

/// Moves the weighted sets of `name` from `current` (as read) to `desired` in one change
/// batch. Returns the change id (without `/change/`), or `None` when every set already is as
/// desired and nothing was sent.
pub async fn move_weights(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    kind: &str,
    current: &[Weighted],
    desired: &[Weighted],
    comment: &str,
) -> Result<Option<String>, Route53Error> {
    let todo = changes(current, desired);
    if todo.is_empty() {
        return Ok(None);
    }
    send(r53, zone_id, name, kind, &todo, comment)
        .await
        .map(Some)
}

/// Sets the weighted sets of `name` to `sets` in one change batch of UPSERTs, whatever they are
/// now: the switch back, which must win over anything that moved the weights meanwhile, and is
/// harmless to repeat. Returns the change id (without `/change/`).
pub async fn upsert_weights(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    kind: &str,
    sets: &[Weighted],
    comment: &str,
) -> Result<String, Route53Error> {
    send(
        r53,
        zone_id,
        name,
        kind,
        &each(ChangeAction::Upsert, sets),
        comment,
    )
    .await
}

/// Deletes weighted sets of `name` exactly as read, in one change batch (retiring blue's set
/// once it has no weight). Returns the change id, or `None` when `sets` is empty.
pub async fn delete_sets(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    kind: &str,
    sets: &[Weighted],
    comment: &str,
) -> Result<Option<String>, Route53Error> {
    if sets.is_empty() {
        return Ok(None);
    }
    send(
        r53,
        zone_id,
        name,
        kind,
        &each(ChangeAction::Delete, sets),
        comment,
    )
    .await
    .map(Some)
}

/// `action` on every set.
fn each(action: ChangeAction, sets: &[Weighted]) -> Vec<(ChangeAction, Weighted)> {
    sets.iter().map(|s| (action.clone(), s.clone())).collect()
}

/// Sends one change batch and returns its change id.
async fn send(
    r53: &aws_sdk_route53::Client,
    zone_id: &str,
    name: &str,
    kind: &str,
    todo: &[(ChangeAction, Weighted)],
    comment: &str,
) -> Result<String, Route53Error> {
    let (name, kind) = (fqdn(name), RrType::from(kind.to_ascii_uppercase().as_str()));
    let mut batch = Vec::with_capacity(todo.len());
    for (action, set) in todo {
        let change = Change::builder()
            .action(action.clone())
            .resource_record_set(record_set(&name, &kind, set)?)
            .build()
            .map_err(|e| Route53Error::Invalid {
                name: name.clone(),
                why: e.to_string(),
            })?;
        batch.push(change);
    }
    let batch = ChangeBatch::builder()
        .comment(comment)
        .set_changes(Some(batch))
        .build()
        .map_err(|e| Route53Error::Invalid {
            name: name.clone(),
            why: e.to_string(),
        })?;
    let sent = r53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| call_error("ChangeResourceRecordSets", e))?;
    sent.change_info()
        .map(|i| i.id().trim_start_matches("/change/").to_string())
        .ok_or(Route53Error::NoChangeId { name })
}

/// Waits until change `id` is `INSYNC`: every Route 53 name server answers with it. Looks every
/// `interval`, for at most `timeout`.
pub async fn wait_insync(
    r53: &aws_sdk_route53::Client,
    id: &str,
    interval: Duration,
    timeout: Duration,
) -> Result<(), Route53Error> {
    let started = Instant::now();
    loop {
        let got = r53
            .get_change()
            .id(id)
            .send()
            .await
            .map_err(|e| call_error("GetChange", e))?;
        if got.change_info().map(|i| i.status()) == Some(&ChangeStatus::Insync) {
            return Ok(());
        }
        if started.elapsed() + interval > timeout {
            return Err(Route53Error::NotInSync {
                id: id.to_string(),
                waited: HumanDuration(Duration::from_secs(started.elapsed().as_secs())),
            });
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str, weight: i64) -> Weighted {
        Weighted {
            set_identifier: id.into(),
            weight,
            ttl: 60,
            values: vec![format!("{id}.elb.example.net")],
        }
    }

    #[test]
    fn only_sets_that_differ_are_replaced_and_new_ones_created() {
        let current = [w("blue", 100)];
        let desired = [w("blue", 90), w("green", 10)];
        let got: Vec<(String, String, i64)> = changes(&current, &desired)
            .into_iter()
            .map(|(a, s)| (a.as_str().to_string(), s.set_identifier, s.weight))
            .collect();
        assert_eq!(
            got,
            [
                ("DELETE".to_string(), "blue".to_string(), 100),
                ("CREATE".to_string(), "blue".to_string(), 90),
                ("CREATE".to_string(), "green".to_string(), 10),
            ]
        );
        assert!(changes(&desired, &desired).is_empty());
        assert_eq!(fqdn("App.Example.com"), "app.example.com.");
    }
}
