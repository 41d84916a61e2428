//! `meta.k8s.io/v1` Table responses: what `kubectl get` asks for (`Accept:
//! application/json;as=Table;v=v1;g=meta.k8s.io`) to print the columns a real cluster prints
//! (`READY`, `STATUS`, `VERSION`, …) instead of only `NAME` and `AGE`.
//!
//! Columns are those of the API server's printers for the kinds the sandbox populates, and a
//! CRD's `additionalPrinterColumns` where the sandbox gives a type some (Karpenter's); other
//! kinds get `Name` and `Age`, as CRDs without printer columns do. Rows carry the object as `includeObject` asks: metadata only
//! by default, the whole object with `Object`, nothing with `None`.

use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::path::Query;
use crate::kube::store::ResourceType;

/// Whether the client prefers a v1 Table over plain JSON: the first media range the server can
/// produce decides, as in the API server's content negotiation.
pub fn wanted(headers: &HeaderMap) -> bool {
    let Some(accept) = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        let has = |p: &str| params.iter().any(|x| x.eq_ignore_ascii_case(p));
        if media == "application/json" && has("as=Table") {
            if has("v=v1") && has("g=meta.k8s.io") {
                return true;
            }
            continue; // another Table version: not served, try the next range
        }
        if params.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        if matches!(media, "application/json" | "*/*" | "application/*") {
            return false;
        }
    }
    false
}

fn col(name: &str, ty: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({ "name": name, "type": ty, "format": format, "description": "", "priority": priority })
}

fn columns(rt: &ResourceType) -> Vec<Value> {
    let s = |n: &str| col(n, "string", 0);
    let i = |n: &str| col(n, "integer", 0);
    let wide = |n: &str| col(n, "string", 1);
    let mut c = vec![s("Name")];
    if !rt.columns.is_empty() {
        c.extend(rt.columns.iter().map(|p| col(&p.name, &p.ty, p.priority)));
        return c;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => c.extend([
            s("Ready"),
            s("Status"),
            i("Restarts"),
            s("Age"),
            wide("IP"),
            wide("Node"),
        ]),
        ("", "Node") => c.extend([
            s("Status"),
            s("Roles"),
            s("Age"),
            s("Version"),
            wide("Internal-IP"),
            wide("OS-Image"),
            wide("Container-Runtime"),
        ]),
        ("", "Namespace") => c.extend([s("Status"), s("Age")]),
        ("", "ConfigMap") => c.extend([i("Data"), s("Age")]),
        ("", "Secret") => c.extend([s("Type"), i("Data"), s("Age")]),
        ("", "Service") => c.extend([
            s("Type"),
            s("Cluster-IP"),
            s("External-IP"),
            s("Port(s)"),
            s("Age"),
        ]),
        ("apps", "Deployment") => c.extend([
            s("Ready"),
            i("Up-to-date"),
            i("Available"),
            s("Age"),
            wide("Containers"),
            wide("Images"),
        ]),
        ("apps", "StatefulSet") => {
            c.extend([s("Ready"), s("Age"), wide("Containers"), wide("Images")])
        }
        ("apps", "DaemonSet") => c.extend([
            i("Desired"),
            i("Current"),
            i("Ready"),
            i("Up-to-date"),
            i("Available"),
            s("Age"),
        ]),
        ("apps", "ReplicaSet") => c.extend([i("Desired"), i("Current"), i("Ready"), s("Age")]),
        ("policy", "PodDisruptionBudget") => c.extend([
            s("Min Available"),
            s("Max Unavailable"),
            i("Allowed Disruptions"),
            s("Age"),
        ]),
        _ => c.push(s("Age")),
    }
    c
}

/// `kubectl`'s human durations: `45s`, `3m12s`, `4h`, `2d3h`, `400d`, `3y20d`.
pub fn human_age(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let secs = secs.max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        if secs % 60 == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{}s", secs % 60)
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        if m % 60 == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{}m", m % 60)
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        if h % 24 == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{}h", h % 24)
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else if d < 365 * 8 {
        format!("{}y{}d", d / 365, d % 365)
    } else {
        format!("{}y", d / 365)
    }
}

fn age(obj: &Value) -> String {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| human_age((chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn int(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a str> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

fn containers(obj: &Value, field: &str) -> String {
    obj.pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get(field).and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// A CRD's printer column's cell: dates as ages, absent values empty.
fn custom_cell(column: &crate::kube::store::PrinterColumn, o: &Value) -> Value {
    match super::jsonpath::find(o, &column.json_path) {
        Some(Value::String(t)) if column.ty == "date" => json!(
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| human_age(
                    (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds()
                ))
                .unwrap_or_else(|_| "<invalid>".into())
        ),
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => v.clone(),
        Some(v) => json!(v.to_string()),
        None => Value::Null,
    }
}

fn cells(rt: &ResourceType, o: &Value) -> Vec<Value> {
    let name = json!(text(o, "/metadata/name"));
    if !rt.columns.is_empty() {
        let mut row = vec![name];
        row.extend(rt.columns.iter().map(|c| custom_cell(c, o)));
        return row;
    }
    let rest: Vec<Value> = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let statuses = o
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array);
            let total = o
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses.map_or(0, |s| s.iter().filter(|c| c["ready"] == true).count());
            let restarts: i64 =
                statuses.map_or(0, |s| s.iter().map(|c| int(c, "/restartCount")).sum());
            let waiting = statuses.and_then(|s| {
                s.iter()
                    .find_map(|c| c.pointer("/state/waiting/reason").and_then(Value::as_str))
            });
            let status = waiting.unwrap_or_else(|| text(o, "/status/phase"));
            vec![
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts),
                json!(age(o)),
                json!(or_none(text(o, "/status/podIP").into())),
                json!(or_none(text(o, "/spec/nodeName").into())),
            ]
        }
        ("", "Node") => {
            let mut status = match condition(o, "Ready") {
                Some("True") => "Ready".to_string(),
                Some(_) => "NotReady".to_string(),
                None => "Unknown".to_string(),
            };
            if o.pointer("/spec/unschedulable") == Some(&json!(true)) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<&str> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                        .collect()
                })
                .unwrap_or_default();
            let ip = o
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                .and_then(|x| x.get("address").and_then(Value::as_str))
                .unwrap_or("<none>");
            vec![
                json!(status),
                json!(or_none(roles.join(","))),
                json!(age(o)),
                json!(text(o, "/status/nodeInfo/kubeletVersion")),
                json!(ip),
                json!(text(o, "/status/nodeInfo/osImage")),
                json!(text(o, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        ("", "Namespace") => vec![json!(text(o, "/status/phase")), json!(age(o))],
        ("", "ConfigMap") => {
            let n = ["data", "binaryData"]
                .iter()
                .filter_map(|f| o.get(*f).and_then(Value::as_object))
                .map(|m| m.len())
                .sum::<usize>();
            vec![json!(n), json!(age(o))]
        }
        ("", "Secret") => vec![
            json!(text(o, "/type")),
            json!(
                o.get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            ),
            json!(age(o)),
        ],
        ("", "Service") => {
            let ports: Vec<String> = o
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map(|ps| {
                    ps.iter()
                        .map(|p| {
                            format!(
                                "{}/{}",
                                int(p, "/port"),
                                p.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ty = o
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            vec![
                json!(ty),
                json!(or_none(text(o, "/spec/clusterIP").into())),
                json!("<none>"),
                json!(or_none(ports.join(","))),
                json!(age(o)),
            ]
        }
        ("apps", "Deployment") => vec![
            json!(format!(
                "{}/{}",
                int(o, "/status/readyReplicas"),
                int(o, "/spec/replicas")
            )),
            json!(int(o, "/status/updatedReplicas")),
            json!(int(o, "/status/availableReplicas")),
            json!(age(o)),
            json!(containers(o, "name")),
            json!(containers(o, "image")),
        ],
        ("apps", "StatefulSet") => vec![
            json!(format!(
                "{}/{}",
                int(o, "/status/readyReplicas"),
                int(o, "/spec/replicas")
            )),
            json!(age(o)),
            json!(containers(o, "name")),
            json!(containers(o, "image")),
        ],
        ("apps", "DaemonSet") => vec![
            json!(int(o, "/status/desiredNumberScheduled")),
            json!(int(o, "/status/currentNumberScheduled")),
            json!(int(o, "/status/numberReady")),
            json!(int(o, "/status/updatedNumberScheduled")),
            json!(int(o, "/status/numberAvailable")),
            json!(age(o)),
        ],
        ("apps", "ReplicaSet") => vec![
            json!(int(o, "/spec/replicas")),
            json!(int(o, "/status/replicas")),
            json!(int(o, "/status/readyReplicas")),
            json!(age(o)),
        ],
        ("policy", "PodDisruptionBudget") => {
            let show = |p: &str| {
                o.pointer(p).map_or("N/A".to_string(), |v| {
                    v.as_str().map_or(v.to_string(), str::to_string)
                })
            };
            vec![
                json!(show("/spec/minAvailable")),
                json!(show("/spec/maxUnavailable")),
                json!(int(o, "/status/disruptionsAllowed")),
                json!(age(o)),
            ]
        }
        _ => vec![json!(age(o))],
    };
    std::iter::once(name).chain(rest).collect()
}

fn row(rt: &ResourceType, obj: &Value, query: &Query) -> Value {
    let mut row = json!({ "cells": cells(rt, obj) });
    match query.non_empty("includeObject") {
        Some("None") => {}
        Some("Object") => row["object"] = obj.clone(),
        _ => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        }
    }
    row
}

/// A Table of `objects`, with the list's metadata (`resourceVersion`, `continue`, …).
pub fn table(rt: &ResourceType, objects: &[Value], metadata: Value, query: &Query) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns(rt),
        "rows": objects.iter().map(|o| row(rt, o, query)).collect::<Vec<_>>(),
    })
}

/// A Table of one object, as a get or a watch event carries it.
pub fn single(rt: &ResourceType, obj: &Value, query: &Query) -> Value {
    let rv = obj
        .pointer("/metadata/resourceVersion")
        .cloned()
        .unwrap_or(Value::Null);
    table(
        rt,
        std::slice::from_ref(obj),
        json!({ "resourceVersion": rv }),
        query,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn negotiation() {
        let mut h = HeaderMap::new();
        assert!(!wanted(&h));
        h.insert("accept", HeaderValue::from_static("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(wanted(&h));
        h.insert(
            "accept",
            HeaderValue::from_static(
                "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
            ),
        );
        assert!(!wanted(&h));
        h.insert("accept", HeaderValue::from_static("application/json, */*"));
        assert!(!wanted(&h));
    }

    #[test]
    fn ages() {
        assert_eq!(human_age(5), "5s");
        assert_eq!(human_age(190), "3m10s");
        assert_eq!(human_age(3600 * 5 + 60), "5h1m");
        assert_eq!(human_age(86_400 * 3), "3d");
        assert_eq!(human_age(86_400 * 400), "400d");
        assert_eq!(human_age(86_400 * 800), "2y70d");
    }
}
