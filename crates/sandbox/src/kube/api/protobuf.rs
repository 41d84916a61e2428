//! Decoding the Kubernetes protobuf encoding of the objects `kubectl create <kind>` and
//! `kubectl run` send.
//!
//! kubectl's typed clients write built-in objects as `application/vnd.kubernetes.protobuf`:
//! the magic `k8s\0`, then a `runtime.Unknown` message holding the `TypeMeta` and the object's
//! own protobuf bytes. Real servers decode every built-in type; the sandbox carries the field
//! tables (numbers from Kubernetes' `generated.proto`) of the kinds kubectl's generators create —
//! Namespace, ConfigMap, Secret, ServiceAccount, Service, Pod, Deployment, Job, CronJob — for the
//! fields those generators set. Unknown fields are skipped; other kinds are refused with 415.
//!
//! Proto2 writes unset scalar fields as zero values, so zeros, empty strings and empty messages
//! are dropped, as Go's `omitempty` JSON would drop them; the few pointer fields whose zero is
//! meaningful (`replicas: 0`) are kept.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::proto_schema::{Card, F, T, kind_schema};
use super::status::ApiError;

#[derive(Debug, thiserror::Error)]
#[error("malformed protobuf body")]
struct Malformed;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// One wire-format field value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(Malformed)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Malformed)
    }

    fn next(&mut self) -> Result<Option<(u32, Wire<'a>)>, Malformed> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let num = u32::try_from(tag >> 3).map_err(|_| Malformed)?;
        let wire = match tag & 7 {
            0 => Wire::Varint(self.varint()?),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Malformed)?;
                let end = self.pos.checked_add(len).ok_or(Malformed)?;
                let bytes = self.buf.get(self.pos..end).ok_or(Malformed)?;
                self.pos = end;
                Wire::Bytes(bytes)
            }
            1 => self.skip(8)?,
            5 => self.skip(4)?,
            _ => return Err(Malformed),
        };
        Ok(Some((num, wire)))
    }

    fn skip(&mut self, n: usize) -> Result<Wire<'a>, Malformed> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        if end > self.buf.len() {
            return Err(Malformed);
        }
        self.pos = end;
        Ok(Wire::Fixed)
    }
}

fn fields(buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, Malformed> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Vec::new();
    while let Some(f) = r.next()? {
        out.push(f);
    }
    Ok(out)
}

fn string(w: &Wire<'_>) -> Result<String, Malformed> {
    match w {
        Wire::Bytes(b) => String::from_utf8(b.to_vec()).map_err(|_| Malformed),
        _ => Err(Malformed),
    }
}

fn bytes<'a>(w: &Wire<'a>) -> Result<&'a [u8], Malformed> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err(Malformed),
    }
}

fn map_entry(w: &Wire<'_>, value: T, depth: u32) -> Result<(String, Value), Malformed> {
    let (mut k, mut v) = (String::new(), Value::Null);
    for (num, f) in fields(bytes(w)?)? {
        match num {
            1 => k = string(&f)?,
            2 => v = scalar(&f, value, depth)?,
            _ => {}
        }
    }
    Ok((k, v))
}

fn scalar(w: &Wire<'_>, ty: T, depth: u32) -> Result<Value, Malformed> {
    Ok(match ty {
        T::Str => json!(string(w)?),
        T::Bytes => json!(base64::engine::general_purpose::STANDARD.encode(bytes(w)?)),
        // Negative int32s are sign-extended to 64 bits on the wire.
        T::Int => match w {
            Wire::Varint(v) => json!(*v as i64),
            _ => return Err(Malformed),
        },
        T::Bool => match w {
            Wire::Varint(v) => json!(*v != 0),
            _ => return Err(Malformed),
        },
        T::Msg(schema) => Value::Object(message(bytes(w)?, schema, depth + 1)?),
        T::Time => {
            let (mut secs, mut nanos) = (0i64, 0u32);
            for (num, f) in fields(bytes(w)?)? {
                match (num, f) {
                    (1, Wire::Varint(v)) => secs = v as i64,
                    (2, Wire::Varint(v)) => nanos = u32::try_from(v).unwrap_or(0),
                    _ => {}
                }
            }
            if secs == 0 && nanos == 0 {
                Value::Null
            } else {
                chrono::DateTime::from_timestamp(secs, nanos)
                    .map(|t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
                    .unwrap_or(Value::Null)
            }
        }
        T::IntOrStr => {
            let (mut is_str, mut int, mut s) = (false, 0i64, String::new());
            for (num, f) in fields(bytes(w)?)? {
                match (num, &f) {
                    (1, Wire::Varint(v)) => is_str = *v == 1,
                    (2, Wire::Varint(v)) => int = *v as i64,
                    (3, _) => s = string(&f)?,
                    _ => {}
                }
            }
            if is_str { json!(s) } else { json!(int) }
        }
        // Maps are handled by the caller, entry by entry; a Quantity is `{string: 1}`.
        T::MapStr | T::MapBytes | T::MapQty => Value::Null,
    })
}

fn quantity(w: &Wire<'_>) -> Result<Value, Malformed> {
    for (num, f) in fields(bytes(w)?)? {
        if num == 1 {
            return Ok(json!(string(&f)?));
        }
    }
    Ok(Value::Null)
}

/// Whether a decoded value is Go's zero value, which proto2 writes for unset fields.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Bool(b) => !b,
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
    }
}

fn message(buf: &[u8], schema: &[F], depth: u32) -> Result<Map<String, Value>, Malformed> {
    if depth > 32 {
        return Err(Malformed);
    }
    let mut out = Map::new();
    for (num, w) in fields(buf)? {
        let Some(F(_, name, ty, card)) = schema.iter().find(|f| f.0 == num).copied() else {
            continue;
        };
        match ty {
            T::MapStr | T::MapBytes | T::MapQty => {
                let (k, v) = match ty {
                    T::MapQty => {
                        let mut key = String::new();
                        let mut val = Value::Null;
                        for (n, f) in fields(bytes(&w)?)? {
                            match n {
                                1 => key = string(&f)?,
                                2 => val = quantity(&f)?,
                                _ => {}
                            }
                        }
                        (key, val)
                    }
                    T::MapBytes => map_entry(&w, T::Bytes, depth)?,
                    _ => map_entry(&w, T::Str, depth)?,
                };
                let entry = out.entry(name).or_insert_with(|| json!({}));
                if let Some(m) = entry.as_object_mut() {
                    m.insert(k, v);
                }
            }
            _ => {
                let v = scalar(&w, ty, depth)?;
                match card {
                    Card::Rep => {
                        let entry = out.entry(name).or_insert_with(|| json!([]));
                        if let Some(a) = entry.as_array_mut() {
                            a.push(v);
                        }
                    }
                    Card::Ptr if !v.is_null() => {
                        out.insert(name.to_string(), v);
                    }
                    _ if !is_zero(&v) => {
                        out.insert(name.to_string(), v);
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

/// Decodes a `application/vnd.kubernetes.protobuf` body into the object's JSON.
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let bad = |_| {
        ApiError::BadRequest("the request body is not a valid Kubernetes protobuf object".into())
    };
    let envelope = body
        .strip_prefix(b"k8s\0".as_slice())
        .ok_or_else(|| bad(Malformed))?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), None);
    for (num, w) in fields(envelope).map_err(bad)? {
        match num {
            1 => {
                for (n, f) in fields(bytes(&w).map_err(bad)?).map_err(bad)? {
                    match n {
                        1 => api_version = string(&f).map_err(bad)?,
                        2 => kind = string(&f).map_err(bad)?,
                        _ => {}
                    }
                }
            }
            2 => raw = Some(bytes(&w).map_err(bad)?),
            _ => {}
        }
    }
    let schema = kind_schema(&api_version, &kind).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "the sandbox decodes protobuf only for the kinds `kubectl create` makes; send {api_version} {kind} as application/json"
        ))
    })?;
    let mut obj = message(raw.unwrap_or_default(), &schema, 0).map_err(bad)?;
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies kubectl 1.33 sent for `create ns foo`, `create secret generic s1 -n shop
    /// --from-literal=a=b --type=Opaque` and `create service clusterip svc1 -n shop --tcp=80:8080`.
    const NS: &str = "6b3873000a0f0a02763112094e616d657370616365121b0a130a03666f6f12001a0022002a0032003800420012001a020a001a002200";
    const SECRET: &str = "6b3873000a0c0a027631120653656372657412280a160a02733112001a0473686f7022002a0032003800420012060a01611201621a064f70617175651a002200";
    const SVC: &str = "6b3873000a0d0a02763112075365727669636512700a250a047376633112001a0473686f7022002a003200380042005a0b0a0361707012047376633112430a1b0a0738302d38303830120354435018502207080010903f1a002800120b0a036170701204737663311a002209436c757374657249503a00420052005a00600068001a020a001a002200";

    fn decode_hex(h: &str) -> Value {
        decode(&hex::decode(h).unwrap()).unwrap()
    }

    #[test]
    fn decodes_kubectl_create_bodies() {
        assert_eq!(
            decode_hex(NS),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "foo"}})
        );
        assert_eq!(
            decode_hex(SECRET),
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "s1", "namespace": "shop"}, "data": {"a": "Yg=="}})
        );
        assert_eq!(
            decode_hex(SVC),
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "svc1", "namespace": "shop", "labels": {"app": "svc1"}},
                "spec": {"type": "ClusterIP", "selector": {"app": "svc1"},
                    "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}]}})
        );
    }

    #[test]
    fn refuses_garbage_and_unknown_kinds() {
        assert!(decode(b"").is_err());
        assert!(decode(b"k8s\0\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01").is_err());
        let mut truncated = hex::decode(SVC).unwrap();
        truncated.truncate(60);
        assert!(decode(&truncated).is_err());
        // TypeMeta {v1, Binding}, no raw object.
        let binding = b"k8s\0\x0a\x0d\x0a\x02v1\x12\x07Binding";
        assert!(matches!(
            decode(binding),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
