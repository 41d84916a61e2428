//! Label and field selectors, as Kubernetes parses them from `labelSelector=` and
//! `fieldSelector=`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Both selectors of a request. The default matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(pub String);

/// Splits on commas that are not inside parentheses (`a in (x,y),b=c`).
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn set_values(s: &str) -> Result<Vec<String>, SelectorError> {
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError(s.to_string()))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_requirement(part: &str, set_based: bool) -> Result<Requirement, SelectorError> {
    let bad = || SelectorError(part.to_string());
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(Requirement::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(Requirement::Eq(k.trim().into(), v.trim().into()));
    }
    if !set_based {
        return Err(bad());
    }
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(k.trim().into()));
    }
    if let Some((k, rest)) = part.split_once(" notin ") {
        return Ok(Requirement::NotIn(k.trim().into(), set_values(rest)?));
    }
    if let Some((k, rest)) = part.split_once(" in ") {
        return Ok(Requirement::In(k.trim().into(), set_values(rest)?));
    }
    if part.contains(' ') || part.contains('(') {
        return Err(bad());
    }
    Ok(Requirement::Exists(part.trim().into()))
}

impl Selector {
    pub fn parse(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Self, SelectorError> {
        let labels = label_selector
            .map(|s| {
                split_top(s)
                    .into_iter()
                    .map(|p| parse_requirement(p, true))
                    .collect()
            })
            .transpose()?
            .unwrap_or_default();
        let fields = field_selector
            .map(|s| {
                split_top(s)
                    .into_iter()
                    .map(|p| parse_requirement(p, false))
                    .collect()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Selector { labels, fields })
    }

    /// A selector on labels only, for in-process callers.
    pub fn labels(selector: &str) -> Result<Self, SelectorError> {
        Selector::parse(Some(selector), None)
    }

    /// The fields the field selector tests, so a server can refuse fields it does not index.
    pub fn field_keys(&self) -> Vec<&str> {
        self.fields
            .iter()
            .map(|r| match r {
                Requirement::Eq(k, _)
                | Requirement::NotEq(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k.as_str(),
            })
            .collect()
    }

    /// Adds `metadata.name=<name>`: a watch on a named path watches that object only.
    pub fn with_name(mut self, name: &str) -> Self {
        self.fields
            .push(Requirement::Eq("metadata.name".into(), name.to_string()));
        self
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let field = |path: &str| -> Option<String> {
            let pointer = format!("/{}", path.replace('.', "/"));
            match obj.pointer(&pointer)? {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }
        };
        self.labels.iter().all(|r| check(r, &label))
            && self.fields.iter().all(|r| check(r, &|k: &str| field(k)))
    }
}

fn check<'a, S: AsRef<str>>(r: &'a Requirement, get: &dyn Fn(&'a str) -> Option<S>) -> bool {
    match r {
        Requirement::Eq(k, v) => get(k).is_some_and(|x| x.as_ref() == v),
        // As in Kubernetes, `!=` also matches objects without the key.
        Requirement::NotEq(k, v) => get(k).is_none_or(|x| x.as_ref() != v),
        Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x.as_ref())),
        Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x.as_ref())),
        Requirement::Exists(k) => get(k).is_some(),
        Requirement::NotExists(k) => get(k).is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_and_field_selectors() {
        let obj = json!({"metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web", "tier": "front"}}, "status": {"phase": "Running"}});
        let yes = |l: Option<&str>, f: Option<&str>| Selector::parse(l, f).unwrap().matches(&obj);
        assert!(yes(Some("app=web"), None));
        assert!(yes(Some("app=web,tier in (front, back)"), None));
        assert!(!yes(Some("app=web,tier notin (front)"), None));
        assert!(yes(Some("app,!missing"), None));
        assert!(yes(Some("missing!=x"), None));
        assert!(yes(None, Some("metadata.name=web,status.phase=Running")));
        assert!(!yes(None, Some("metadata.namespace=other")));
        assert!(Selector::parse(None, Some("metadata.name")).is_err());
        assert!(Selector::parse(Some("a in x"), None).is_err());
    }
}
