//! Checks every write shares: the body's media type and shape, `apiVersion`/`kind`, object
//! names, `dryRun`, and the mapping of store errors onto `Status`.

use serde_json::Value;

use super::Request;
use super::path::Query;
use super::status::{ApiError, Cause};
use crate::kube::store::{ResourceType, StoreError};

/// Maps a store error onto this resource's `Status`.
pub fn store_err(rt: &ResourceType) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| ApiError::store(e, &rt.group, &rt.plural)
}

/// `dryRun=All` (the only value Kubernetes defines).
pub fn dry_run(query: &Query) -> Result<bool, ApiError> {
    match query.non_empty("dryRun") {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "Invalid dryRun value: {other}: supported values are: All"
        ))),
    }
}

/// A JSON or YAML body, which must be an object.
pub fn parse_body(req: &Request) -> Result<Value, ApiError> {
    let ct = req.content_type();
    let value: Value = match ct {
        "" | "application/json" | "*/*" => serde_json::from_slice(&req.body).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not valid JSON: {e}"))
        })?,
        "application/yaml" | "application/apply-patch+yaml" => {
            // JSON is YAML too, and the JSON parser is the faster and stricter of the two.
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(_) => {
                    let text = std::str::from_utf8(&req.body).map_err(|_| {
                        ApiError::BadRequest("the request body is not UTF-8".into())
                    })?;
                    serde_saphyr::from_str(text).map_err(|e| {
                        ApiError::BadRequest(format!("the request body is not valid YAML: {e}"))
                    })?
                }
            }
        }
        "application/vnd.kubernetes.protobuf" => super::protobuf::decode(&req.body)?,
        other => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: application/json, application/yaml"
            )));
        }
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

/// `apiVersion` and `kind`, when the body names them, must be the URL's.
pub fn check_type(rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if let Some(v) = obj.get("apiVersion").and_then(Value::as_str)
        && v != rt.api_version()
    {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({v}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && k != rt.kind
    {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            rt.kind
        )));
    }
    Ok(())
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An `Invalid` (422) error on one field of an object.
pub fn invalid(rt: &ResourceType, name: &str, field: &str, detail: String) -> ApiError {
    let kind_group = if rt.group.is_empty() {
        rt.kind.clone()
    } else {
        format!("{}.{}", rt.kind, rt.group)
    };
    ApiError::Invalid {
        kind: rt.kind.clone(),
        group: rt.group.clone(),
        name: name.to_string(),
        message: format!("{kind_group} \"{name}\" is invalid: {field}: {detail}"),
        causes: vec![Cause {
            reason: if detail.starts_with("Required") {
                "FieldValueRequired"
            } else {
                "FieldValueInvalid"
            },
            message: detail,
            field: field.to_string(),
        }],
    }
}

/// Object names: DNS-1123 labels for namespaces and services, subdomains for everything else.
pub fn validate_name(rt: &ResourceType, name: &str) -> Result<(), ApiError> {
    let label_only = rt.group.is_empty() && matches!(rt.plural.as_str(), "namespaces" | "services");
    let ok = if label_only {
        is_label(name)
    } else {
        name.len() <= 253 && name.split('.').all(is_label)
    };
    if ok {
        return Ok(());
    }
    let rule = if label_only {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    } else {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    };
    Err(invalid(
        rt,
        name,
        "metadata.name",
        format!("Invalid value: \"{name}\": {rule}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cm = ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
        let ns = ResourceType::new("", "v1", "Namespace", "namespaces", false);
        assert!(validate_name(&cm, "a.b-c").is_ok());
        assert!(validate_name(&cm, "Bad_Name").is_err());
        assert!(validate_name(&ns, "a.b").is_err());
        assert!(validate_name(&cm, &"a".repeat(300)).is_err());
    }
}
