//! List: label and field selectors, `limit`/`continue` pagination with opaque continue tokens,
//! and `resourceVersion`/`resourceVersionMatch`.
//!
//! Each page is read from the store's ordered index starting after the last key of the previous
//! page, so paging through n objects costs O(n) overall, never O(n²).

use base64::Engine;
use serde_json::{Map, Value, json};

use super::path::Query;
use super::status::{ApiError, ApiResult, json_response};
use super::validate::invalid;
use super::{Api, Request, table};
use crate::kube::selector::Selector;
use crate::kube::store::{ResourceType, StoreError};

/// Field selectors the API server indexes: `metadata.name` and `metadata.namespace` everywhere,
/// plus a few per built-in type. Anything else is refused, so the tool cannot come to rely on a
/// selector a real cluster would reject.
fn field_supported(rt: &ResourceType, field: &str) -> bool {
    if matches!(field, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => matches!(
            field,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        ("", "nodes") => field == "spec.unschedulable",
        ("", "namespaces") => field == "status.phase",
        ("", "secrets") => field == "type",
        ("", "events") => {
            field.starts_with("involvedObject.")
                || matches!(field, "reason" | "reportingComponent" | "source" | "type")
        }
        ("apps", "replicasets") => field == "status.replicas",
        ("batch", "jobs") => field == "status.successful",
        _ => false,
    }
}

/// The label and field selectors of a list, watch or deletecollection.
pub fn selector(query: &Query, rt: &ResourceType) -> Result<Selector, ApiError> {
    let selector = Selector::parse(
        query.non_empty("labelSelector"),
        query.non_empty("fieldSelector"),
    )
    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(field) = selector
        .field_keys()
        .into_iter()
        .find(|f| !field_supported(rt, f))
    {
        return Err(ApiError::BadRequest(format!(
            "field label not supported: {field}"
        )));
    }
    Ok(selector)
}

/// A continue token: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\u0000"}`, the shape
/// the API server uses. Clients treat it as opaque.
fn encode_continue(rv: u64, key: &(String, String)) -> String {
    let start = if key.0.is_empty() {
        format!("{}\u{0}", key.1)
    } else {
        format!("{}/{}\u{0}", key.0, key.1)
    };
    let token = json!({ "v": "meta.k8s.io/v1", "rv": rv, "start": start });
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str, namespaced: bool) -> Result<(u64, (String, String)), ApiError> {
    let bad = |why: &str| ApiError::BadRequest(format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad("illegal base64 data"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad("not JSON"))?;
    if value.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("no resource version"))?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .map(|s| s.trim_end_matches('\u{0}'))
        .ok_or_else(|| bad("no start key"))?;
    let key = if namespaced {
        let (ns, name) = start
            .split_once('/')
            .ok_or_else(|| bad("malformed start key"))?;
        (ns.to_string(), name.to_string())
    } else {
        (String::new(), start.to_string())
    };
    Ok((rv, key))
}

/// The numeric `resourceVersion` of a list or watch; `None` for "" and "0" (any version).
pub fn parse_rv(query: &Query) -> Result<Option<u64>, ApiError> {
    match query.non_empty("resourceVersion") {
        None | Some("0") => Ok(None),
        Some(v) => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version \"{v}\""))),
    }
}

/// A version the store has not reached yet: the API server waits briefly, then answers 504.
pub fn too_large(requested: u64, current: u64) -> ApiError {
    ApiError::Timeout(format!(
        "Too large resource version: {requested}, current: {current}"
    ))
}

pub fn list(api: &Api, req: &Request, rt: &ResourceType, ns: Option<&str>) -> ApiResult {
    let query = &req.query;
    let store = &api.world.store;
    let selector = selector(query, rt)?;
    let limit = match query.non_empty("limit") {
        None => None,
        Some(l) => {
            let n: i64 = l
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid limit \"{l}\"")))?;
            usize::try_from(n).ok().filter(|n| *n > 0)
        }
    };
    let rv = parse_rv(query)?;
    let rv_match = query.non_empty("resourceVersionMatch");
    let cont = query.non_empty("continue");
    if cont.is_some() && rv.is_some() {
        return Err(ApiError::BadRequest(
            "specifying resource version is not allowed when using continue".into(),
        ));
    }
    match rv_match {
        None => {}
        Some(_) if cont.is_some() => {
            return Err(invalid(
                rt,
                "",
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden when continue is provided".into(),
            ));
        }
        Some(_) if query.non_empty("resourceVersion").is_none() => {
            return Err(invalid(
                rt,
                "",
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
                    .into(),
            ));
        }
        Some("Exact" | "NotOlderThan") => {}
        Some(other) => {
            return Err(invalid(
                rt,
                "",
                "resourceVersionMatch",
                format!(
                    "Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                ),
            ));
        }
    }
    let current = store.resource_version();
    if let Some(n) = rv {
        if n > current {
            return Err(too_large(n, current));
        }
        // The store keeps no old snapshots: an exact read of a compacted version is gone, a
        // newer one is answered with the current state.
        let compacted = store.compacted_resource_version();
        if rv_match == Some("Exact") && n < compacted {
            return Err(ApiError::store(
                StoreError::Gone {
                    requested: n,
                    oldest: compacted,
                },
                &rt.group,
                &rt.plural,
            ));
        }
    }
    let (list_rv, after) = match cont {
        Some(token) => {
            let (rv, key) = decode_continue(token, rt.namespaced)?;
            (Some(rv), Some(key))
        }
        None => (None, None),
    };
    let page = store.list_page(
        rt,
        ns,
        &selector,
        after.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        limit,
    );
    // Every page of one paginated list reports the version of its first page.
    let rv = list_rv.unwrap_or(page.resource_version);
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(key) = &page.continue_after {
        metadata.insert("continue".into(), json!(encode_continue(rv, key)));
        if let Some(n) = page.remaining {
            metadata.insert("remainingItemCount".into(), json!(n));
        }
    }
    if table::wanted(&req.headers) {
        let t = table::table(rt, &page.items, Value::Object(metadata), query);
        return Ok(json_response(200, &t));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": metadata,
            "items": page.items,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let key = ("shop".to_string(), "web-1".to_string());
        let t = encode_continue(42, &key);
        assert_eq!(decode_continue(&t, true).unwrap(), (42, key));
        let c = ("".to_string(), "node-a".to_string());
        let t = encode_continue(7, &c);
        assert_eq!(decode_continue(&t, false).unwrap(), (7, c));
        assert!(decode_continue("!!", true).is_err());
        assert!(decode_continue("e30=", true).is_err());
    }
}
