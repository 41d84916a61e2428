//! Route 53's REST-XML: the `ChangeResourceRecordSetsRequest` body read with quick-xml's serde
//! support, and the answers written as the API reference shows them, all in the
//! `https://route53.amazonaws.com/doc/2013-04-01/` namespace.

use serde::Deserialize;

use super::zones::{Change, RecordSet, Requested, Zone};
use crate::scenario::fqdn;
use crate::xml::escape;

pub const NAMESPACE: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeRequest {
    change_batch: ChangeBatch,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeBatch {
    #[serde(default)]
    comment: Option<String>,
    changes: Changes,
}

#[derive(Debug, Deserialize)]
struct Changes {
    #[serde(rename = "Change", default)]
    change: Vec<ChangeXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ChangeXml {
    action: String,
    resource_record_set: RecordXml,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordXml {
    name: String,
    #[serde(rename = "Type")]
    kind: String,
    #[serde(default)]
    set_identifier: Option<String>,
    #[serde(default)]
    weight: Option<u64>,
    #[serde(rename = "TTL", default)]
    ttl: Option<u64>,
    #[serde(default)]
    resource_records: Option<Records>,
}

#[derive(Debug, Deserialize)]
struct Records {
    #[serde(rename = "ResourceRecord", default)]
    record: Vec<ValueXml>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ValueXml {
    value: String,
}

/// The changes and comment of a `ChangeResourceRecordSetsRequest`, or why it cannot be read.
pub fn change_request(body: &[u8]) -> Result<(Vec<Requested>, Option<String>), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_string())?;
    let request: ChangeRequest = quick_xml::de::from_str(text).map_err(|e| e.to_string())?;
    let batch = request.change_batch;
    let changes = batch
        .changes
        .change
        .into_iter()
        .map(|c| {
            let r = c.resource_record_set;
            Requested {
                action: c.action,
                set: RecordSet {
                    name: fqdn(&r.name),
                    kind: r.kind.to_ascii_uppercase(),
                    set_identifier: r.set_identifier,
                    weight: r.weight,
                    ttl: r.ttl,
                    values: r
                        .resource_records
                        .map(|rs| rs.record.into_iter().map(|v| v.value).collect())
                        .unwrap_or_default(),
                },
            }
        })
        .collect();
    Ok((changes, batch.comment))
}

fn document(root: &str, inner: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NAMESPACE}\">{inner}</{root}>"
    )
}

/// The standard error envelope; `Sender` for the caller's errors (4xx), `Receiver` for Route
/// 53's own (5xx).
pub fn error(status: u16, code: &str, message: &str, request_id: &str) -> String {
    document(
        "ErrorResponse",
        &format!(
            "<Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId>",
            if status >= 500 { "Receiver" } else { "Sender" },
            escape(code),
            escape(message),
            escape(request_id)
        ),
    )
}

fn change_info(c: &Change) -> String {
    format!(
        "<ChangeInfo><Id>/change/{}</Id><Status>{}</Status><SubmittedAt>{}</SubmittedAt>{}</ChangeInfo>",
        c.id,
        c.status(),
        c.submitted.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
        c.comment
            .as_ref()
            .map(|t| format!("<Comment>{}</Comment>", escape(t)))
            .unwrap_or_default()
    )
}

pub fn change_response(root: &str, c: &Change) -> String {
    document(root, &change_info(c))
}

fn hosted_zone(z: &Zone) -> String {
    format!(
        "<HostedZone><Id>/hostedzone/{}</Id><Name>{}</Name><CallerReference>{}</CallerReference><Config><PrivateZone>false</PrivateZone></Config><ResourceRecordSetCount>{}</ResourceRecordSetCount></HostedZone>",
        z.id,
        escape(&z.name),
        escape(&z.caller_reference),
        z.records.len()
    )
}

pub fn get_hosted_zone(z: &Zone) -> String {
    let servers: String = z
        .name_servers
        .iter()
        .map(|n| format!("<NameServer>{n}</NameServer>"))
        .collect();
    document(
        "GetHostedZoneResponse",
        &format!(
            "{}<DelegationSet><NameServers>{servers}</NameServers></DelegationSet>",
            hosted_zone(z)
        ),
    )
}

/// `ListHostedZones` (`by_name: None`) or `ListHostedZonesByName` (the `DNSName` asked for).
pub fn list_hosted_zones(zones: &[Zone], max_items: usize, by_name: Option<&str>) -> String {
    let listed: String = zones.iter().map(hosted_zone).collect();
    match by_name {
        None => document(
            "ListHostedZonesResponse",
            &format!(
                "<HostedZones>{listed}</HostedZones><IsTruncated>false</IsTruncated><MaxItems>{max_items}</MaxItems>"
            ),
        ),
        Some(name) => document(
            "ListHostedZonesByNameResponse",
            &format!(
                "<HostedZones>{listed}</HostedZones>{}<IsTruncated>false</IsTruncated><MaxItems>{max_items}</MaxItems>",
                if name.is_empty() {
                    String::new()
                } else {
                    format!("<DNSName>{}</DNSName>", escape(name))
                }
            ),
        ),
    }
}

fn record_set(r: &RecordSet) -> String {
    let mut out = format!(
        "<ResourceRecordSet><Name>{}</Name><Type>{}</Type>",
        escape(&r.name),
        escape(&r.kind)
    );
    if let Some(id) = &r.set_identifier {
        out.push_str(&format!("<SetIdentifier>{}</SetIdentifier>", escape(id)));
    }
    if let Some(w) = r.weight {
        out.push_str(&format!("<Weight>{w}</Weight>"));
    }
    if let Some(ttl) = r.ttl {
        out.push_str(&format!("<TTL>{ttl}</TTL>"));
    }
    out.push_str("<ResourceRecords>");
    for v in &r.values {
        out.push_str(&format!(
            "<ResourceRecord><Value>{}</Value></ResourceRecord>",
            escape(v)
        ));
    }
    out.push_str("</ResourceRecords></ResourceRecordSet>");
    out
}

/// One page of record sets; `next` is the first one of the next page.
pub fn list_record_sets(page: &[RecordSet], next: Option<&RecordSet>, max_items: usize) -> String {
    let sets: String = page.iter().map(record_set).collect();
    let tail = match next {
        Some(n) => format!(
            "<IsTruncated>true</IsTruncated><NextRecordName>{}</NextRecordName><NextRecordType>{}</NextRecordType>{}",
            escape(&n.name),
            escape(&n.kind),
            n.set_identifier
                .as_ref()
                .map(|i| format!("<NextRecordIdentifier>{}</NextRecordIdentifier>", escape(i)))
                .unwrap_or_default()
        ),
        None => "<IsTruncated>false</IsTruncated>".to_string(),
    };
    document(
        "ListResourceRecordSetsResponse",
        &format!(
            "<ResourceRecordSets>{sets}</ResourceRecordSets>{tail}<MaxItems>{max_items}</MaxItems>"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_request_is_read_as_the_sdk_writes_it() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><ChangeBatch><Comment>move 10%</Comment><Changes><Change><Action>UPSERT</Action><ResourceRecordSet><Name>App.example.com</Name><Type>cname</Type><SetIdentifier>green</SetIdentifier><Weight>10</Weight><TTL>60</TTL><ResourceRecords><ResourceRecord><Value>green.elb.example.net</Value></ResourceRecord></ResourceRecords></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>"#;
        let (changes, comment) = change_request(body.as_bytes()).expect("read");
        assert_eq!(comment.as_deref(), Some("move 10%"));
        assert_eq!(changes.len(), 1);
        let set = &changes[0].set;
        assert_eq!(
            (set.name.as_str(), set.kind.as_str(), set.weight, set.ttl),
            ("app.example.com.", "CNAME", Some(10), Some(60))
        );
        assert_eq!(set.values, ["green.elb.example.net"]);
        assert!(change_request(b"<nope/>").is_err());
    }
}
