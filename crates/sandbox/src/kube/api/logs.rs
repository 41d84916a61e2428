//! The `log` subresource of pods (`kubectl logs`): plain text, as the kubelet streams it through
//! the API server. The sandbox runs no containers, so a container's log is a few lines it makes
//! up from the pod — the container, its image and command, its node — and, once the container
//! has ended, its exit code. The same pod always gives the same lines.
//!
//! The API server's checks are kept: a pod with several containers needs `container`, a name
//! it does not have is refused, `tailLines` and `limitBytes` are validated, and a pod not yet on
//! a node has an empty log. `follow` returns what is there and ends; `sinceSeconds` and
//! `sinceTime` are accepted and ignored (every line is older than any window).

use axum::http::{Method, StatusCode};
use serde_json::Value;

use super::status::{ApiError, ApiResult, Cause, bytes_response};
use super::validate::store_err;
use super::{Api, Request};
use crate::kube::store::ResourceType;

/// Whether a path's subresource is a pod's log.
pub fn is_log(rt: &ResourceType, subresource: Option<&str>) -> bool {
    rt.group.is_empty() && rt.plural == "pods" && subresource == Some("log")
}

pub fn serve(
    api: &Api,
    req: &Request,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> ApiResult {
    if req.method != Method::GET {
        return Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({} pods/log)",
            req.method
        )));
    }
    let tail = number(req, name, "tailLines", 0)?;
    let limit = number(req, name, "limitBytes", 1)?;
    let pod = api.world.store.get(rt, ns, name).map_err(store_err(rt))?;
    let container = container(&pod, name, req.query.non_empty("container"))?;
    let text = match lines(&pod, name, &container, req.query.flag("previous"))? {
        None => String::new(),
        Some(lines) => {
            let stamp = req
                .query
                .flag("timestamps")
                .then(|| started_at(&pod, &container));
            let mut lines: Vec<String> = lines
                .into_iter()
                .map(|l| match &stamp {
                    Some(at) => format!("{at} {l}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            if let Some(n) = tail {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                lines = lines.split_off(lines.len().saturating_sub(n));
            }
            lines.concat()
        }
    };
    let mut bytes = text.into_bytes();
    if let Some(n) = limit {
        bytes.truncate(usize::try_from(n).unwrap_or(usize::MAX));
    }
    Ok(bytes_response(StatusCode::OK, "text/plain", bytes))
}

/// An integer parameter of `PodLogOptions`: malformed is a bad request, below `min` invalid.
fn number(req: &Request, pod: &str, field: &str, min: i64) -> Result<Option<i64>, ApiError> {
    let Some(text) = req.query.non_empty(field) else {
        return Ok(None);
    };
    let n: i64 = text.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "couldn't parse {field} {text:?}: strconv.ParseInt: parsing {text:?}: invalid syntax"
        ))
    })?;
    if n < min {
        let detail = if min == 0 {
            format!("Invalid value: {n}: must be greater than or equal to 0")
        } else {
            format!("Invalid value: {n}: must be greater than 0")
        };
        return Err(ApiError::Invalid {
            kind: "PodLogOptions".into(),
            group: String::new(),
            name: pod.to_string(),
            message: format!("PodLogOptions \"{pod}\" is invalid: {field}: {detail}"),
            causes: vec![Cause {
                reason: "FieldValueInvalid",
                message: detail,
                field: field.to_string(),
            }],
        });
    }
    Ok(Some(n))
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod.pointer(&format!("/spec/{list}"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `LogLocation`'s choice of container: the one named, or the only one.
fn container(pod: &Value, name: &str, wanted: Option<&str>) -> Result<String, ApiError> {
    let containers = names(pod, "containers");
    let init = names(pod, "initContainers");
    match wanted {
        Some(c) if containers.iter().chain(init.iter()).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None if containers.is_empty() => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {name}"
        ))),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::BadRequest(message))
        }
    }
}

fn status_of<'a>(pod: &'a Value, container: &str) -> Option<&'a Value> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|l| {
            pod.pointer(&format!("/status/{l}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))
}

fn started_at(pod: &Value, container: &str) -> String {
    let status = status_of(pod, container);
    [
        "/state/running/startedAt",
        "/state/terminated/startedAt",
        "/lastState/terminated/startedAt",
    ]
    .iter()
    .find_map(|p| status.and_then(|s| s.pointer(p)).and_then(Value::as_str))
    .or_else(|| pod.pointer("/status/startTime").and_then(Value::as_str))
    .unwrap_or("1970-01-01T00:00:00Z")
    .replace('Z', ".000000000Z")
}

/// The container's lines: `None` for a pod on no node (an empty log), an error for a container
/// that has not started (or, with `previous`, has no earlier run).
fn lines(
    pod: &Value,
    name: &str,
    container: &str,
    previous: bool,
) -> Result<Option<Vec<String>>, ApiError> {
    if pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Ok(None);
    }
    let status = status_of(pod, container);
    let terminated = if previous {
        match status.and_then(|s| s.pointer("/lastState/terminated")) {
            Some(t) => Some(t),
            None => {
                return Err(ApiError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                )));
            }
        }
    } else {
        let state = status.and_then(|s| s.get("state"));
        let last = status.and_then(|s| s.pointer("/lastState/terminated"));
        if state.is_some_and(|s| s.get("running").is_some()) {
            None
        } else if let Some(t) = state.and_then(|s| s.get("terminated")) {
            Some(t)
        } else if last.is_some() {
            // Crash-looping: the log is the last run's.
            last
        } else {
            let reason = state
                .and_then(|s| s.pointer("/waiting/reason"))
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating");
            return Err(ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            )));
        }
    };
    let spec = ["containers", "initContainers"]
        .iter()
        .filter_map(|l| pod.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(container));
    let words = |field: &str| -> Vec<String> {
        spec.and_then(|c| c.get(field))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut command = words("command");
    command.extend(words("args"));
    let command = if command.is_empty() {
        "the image's entrypoint".to_string()
    } else {
        command.join(" ")
    };
    let image = spec
        .and_then(|c| c.get("image"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut out = vec![
        format!("[sandbox] container {container} of pod {namespace}/{name} on node {node}"),
        format!("[sandbox] image: {image}"),
        format!("[sandbox] command: {command}"),
        "[sandbox] the sandbox runs no containers: these lines stand in for the container's output"
            .to_string(),
    ];
    if let Some(t) = terminated {
        let code = t.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
        let reason = t
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or(if code == 0 { "Completed" } else { "Error" });
        out.push(format!("[sandbox] exited with code {code} ({reason})"));
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(state: Value) -> Value {
        json!({
            "metadata": { "name": "p", "namespace": "ns" },
            "spec": { "nodeName": "n1", "containers": [ { "name": "main", "image": "busybox:1.36", "command": ["sh", "-c"], "args": ["echo hi"] } ] },
            "status": { "containerStatuses": [ { "name": "main", "state": state } ] },
        })
    }

    #[test]
    fn a_finished_container_ends_with_its_exit_code() {
        let p = pod(json!({ "terminated": { "exitCode": 1, "reason": "Error" } }));
        let lines = lines(&p, "p", "main", false).expect("lines").expect("some");
        assert!(lines[1].contains("busybox:1.36"));
        assert!(lines[2].ends_with("sh -c echo hi"));
        assert_eq!(
            lines.last().map(String::as_str),
            Some("[sandbox] exited with code 1 (Error)")
        );
        let running = pod(json!({ "running": {} }));
        let lines = super::lines(&running, "p", "main", false)
            .expect("lines")
            .expect("some");
        assert!(!lines.iter().any(|l| l.contains("exited")));
    }

    #[test]
    fn the_container_must_be_named_when_there_are_several() {
        let mut p = pod(json!({ "running": {} }));
        assert_eq!(container(&p, "p", None).expect("the only one"), "main");
        p["spec"]["containers"] = json!([ { "name": "a" }, { "name": "b" } ]);
        p["spec"]["initContainers"] = json!([ { "name": "init" } ]);
        let e = container(&p, "p", None).expect_err("ambiguous");
        assert_eq!(
            e.to_string(),
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [init]"
        );
        assert_eq!(container(&p, "p", Some("init")).expect("init"), "init");
        assert_eq!(
            container(&p, "p", Some("c"))
                .expect_err("unknown")
                .to_string(),
            "container c is not valid for pod p"
        );
    }

    #[test]
    fn a_waiting_container_has_no_log_yet() {
        let p = pod(json!({ "waiting": { "reason": "ContainerCreating" } }));
        assert_eq!(
            lines(&p, "p", "main", false)
                .expect_err("waiting")
                .to_string(),
            "container \"main\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        let mut unscheduled = p.clone();
        unscheduled["spec"]["nodeName"] = Value::Null;
        assert_eq!(
            lines(&unscheduled, "p", "main", false).expect("empty"),
            None
        );
    }
}
