//! The part of kubectl's JSONPath that CRD `additionalPrinterColumns` use: a chain of fields
//! (`.status.nodeName`), keys with escaped dots (`.metadata.labels.karpenter\.sh/nodepool`) and
//! one filter on a list (`.status.conditions[?(@.type=="Ready")].status`). A path that finds
//! nothing prints as an empty cell, as the API server's table printer does.

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    /// `[?(@.KEY=="VALUE")]`: the first element of a list whose `KEY` is `VALUE`.
    Filter {
        key: String,
        value: String,
    },
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.trim();
    while !rest.is_empty() {
        if let Some(filter) = rest.strip_prefix("[?(@.") {
            let end = filter.find(")]")?;
            let (key, value) = filter[..end].split_once("==")?;
            steps.push(Step::Filter {
                key: key.trim().to_string(),
                value: value.trim().trim_matches('"').to_string(),
            });
            rest = &filter[end + 2..];
            continue;
        }
        let field = rest.strip_prefix('.')?;
        let mut name = String::new();
        let mut chars = field.char_indices().peekable();
        let mut consumed = field.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        name.push(next);
                    }
                }
                '.' | '[' => {
                    consumed = i;
                    break;
                }
                _ => name.push(c),
            }
        }
        steps.push(Step::Field(name));
        rest = &field[consumed..];
    }
    Some(steps)
}

/// The value `path` points at in `obj`, if any.
pub fn find<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = obj;
    for step in parse(path)? {
        at = match step {
            Step::Field(name) => at.get(name.as_str())?,
            Step::Filter { key, value } => at
                .as_array()?
                .iter()
                .find(|x| x.get(key.as_str()).and_then(Value::as_str) == Some(value.as_str()))?,
        };
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printer_column_paths_find_fields_labels_and_conditions() {
        let obj = json!({
            "metadata": { "labels": { "karpenter.sh/nodepool": "default" } },
            "status": { "nodeName": "n1", "conditions": [
                { "type": "Launched", "status": "True" },
                { "type": "Ready", "status": "False" },
            ] },
        });
        assert_eq!(find(&obj, ".status.nodeName"), Some(&json!("n1")));
        assert_eq!(
            find(&obj, r".metadata.labels.karpenter\.sh/nodepool"),
            Some(&json!("default"))
        );
        assert_eq!(
            find(&obj, r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(&json!("False"))
        );
        assert_eq!(
            find(&obj, r#".status.conditions[?(@.type=="Drifted")].status"#),
            None
        );
        assert_eq!(find(&obj, ".spec.weight"), None);
        assert_eq!(find(&obj, "status"), None, "a path starts with a dot");
    }
}
