//! JSON merge patches between two objects (`jsonpatch.CreateMergePatch`), which Velero uses both
//! to write status (`client.MergeFrom`) and to bring a live object back to its backed-up state
//! under `existingResourcePolicy: update`.

use serde_json::{Map, Value};

/// The RFC 7386 merge patch that turns `from` into `to`, or `None` when they are equal. Fields
/// `to` lacks become `null` (removed); arrays and scalars are replaced whole.
pub fn merge_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => {
            let mut patch = Map::new();
            for key in f.keys() {
                if !t.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            for (key, tv) in t {
                match f.get(key) {
                    None => {
                        patch.insert(key.clone(), tv.clone());
                    }
                    Some(fv) if fv != tv => {
                        let change = match (fv, tv) {
                            (Value::Object(_), Value::Object(_)) => merge_diff(fv, tv),
                            _ => Some(tv.clone()),
                        };
                        if let Some(c) = change {
                            patch.insert(key.clone(), c);
                        }
                    }
                    Some(_) => {}
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ => (from != to).then(|| to.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::store::merge_patch;
    use serde_json::json;

    #[test]
    fn diff_applied_gives_target() {
        let from = json!({"spec": {"replicas": 3, "template": {"metadata": {"annotations": {"broken": "true"}}, "spec": {"c": [1, 2]}}}, "x": 1});
        let to = json!({"spec": {"replicas": 2, "template": {"spec": {"c": [1]}}}, "y": {"z": 1}});
        let patch = merge_diff(&from, &to).unwrap_or_default();
        assert_eq!(patch["x"], Value::Null);
        assert_eq!(patch["spec"]["template"]["metadata"], Value::Null);
        let mut applied = from.clone();
        merge_patch(&mut applied, &patch);
        assert_eq!(applied, to);
        assert_eq!(merge_diff(&to, &to), None);
    }
}
