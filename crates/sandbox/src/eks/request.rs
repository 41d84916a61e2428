//! What a request carries besides its path: query strings with repeated keys, JSON bodies, and
//! the `maxResults`/`nextToken` pagination every list operation shares.

use base64::Engine;
use serde_json::Value;

use super::errors::EksError;

/// The query string, keeping repeated keys (`?types=a&types=b`) as restJson1 sends lists.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        Query(
            raw.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    /// The first value of a key.
    pub fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn max_results(&self) -> Result<Option<usize>, EksError> {
        self.one("maxResults").map(parse_max_results).transpose()
    }

    pub fn next_token(&self) -> Option<&str> {
        self.one("nextToken").filter(|t| !t.is_empty())
    }
}

fn parse_max_results(text: &str) -> Result<usize, EksError> {
    match text.parse::<i64>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n as usize),
        _ => Err(EksError::invalid_parameter(format!(
            "1 validation error detected: Value '{text}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100"
        ))),
    }
}

/// `maxResults` from a JSON body (ListInsights pages in its body, not its query).
pub fn body_max_results(body: &Value) -> Result<Option<usize>, EksError> {
    match body.get("maxResults") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_max_results(&v.to_string()).map(Some),
    }
}

/// A JSON request body; an empty body is an empty object, as SDKs send for no members.
pub fn parse_body(bytes: &[u8]) -> Result<Value, EksError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(EksError::invalid_parameter(
            "The request body must be a JSON object",
        )),
        Err(e) => Err(EksError::invalid_parameter(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

/// A string member of the body; a member of another type is a client error.
pub fn body_str<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, EksError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EksError::invalid_parameter(format!(
            "{key} must be a string"
        ))),
    }
}

/// A boolean member of the body (`force`); missing means false, as EKS reads it.
pub fn body_bool(body: &Value, key: &str) -> Result<bool, EksError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(EksError::invalid_parameter(format!(
            "{key} must be a boolean"
        ))),
    }
}

const TOKEN_PREFIX: &str = "sandbox-page:";

fn encode_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_PREFIX}{offset}"))
}

fn decode_token(token: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()
}

/// One page of `items`: at most `max` (default 100) from the offset in `token`, and the token of
/// the next page when there is one. Tokens are opaque to clients, as EKS's are.
pub fn page<T>(
    items: Vec<T>,
    max: Option<usize>,
    token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), EksError> {
    let start = match token {
        None => 0,
        Some(t) => decode_token(t)
            .filter(|o| *o <= items.len())
            .ok_or_else(|| EksError::invalid_parameter("The nextToken provided is invalid."))?,
    };
    let max = max.unwrap_or(100);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let end = start + page.len();
    Ok((page, (end < total).then(|| encode_token(end))))
}

/// Drops `null` members everywhere: EKS omits absent members rather than sending `null`, and
/// the AWS CLI would print them.
pub fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list() {
        let items: Vec<u32> = (0..5).collect();
        let (a, t) = page(items.clone(), Some(2), None).unwrap();
        assert_eq!(a, vec![0, 1]);
        let (b, t) = page(items.clone(), Some(2), t.as_deref()).unwrap();
        assert_eq!(b, vec![2, 3]);
        let (c, t) = page(items.clone(), Some(2), t.as_deref()).unwrap();
        assert_eq!((c, t), (vec![4], None));
        assert!(page(items, None, Some("garbage")).is_err());
    }

    #[test]
    fn repeated_query_keys_are_kept() {
        let q = Query::parse(Some("types=a&types=b%20c&maxResults=0"));
        assert_eq!(q.all("types"), vec!["a", "b c"]);
        assert!(q.max_results().is_err());
    }
}
