//! The structural check: walks the located YAML tree against the workflow's JSON Schema and
//! reports every unknown field, missing field, wrong type and invalid choice at once.
//!
//! Only the parts of JSON Schema that schemars emits for our types are understood: `$ref`,
//! `anyOf`/`oneOf` (as "one of these shapes"), `type`, `enum`, `const`, `properties`,
//! `required`, `additionalProperties`, `items`, and integer ranges. Patterns are left to
//! the validation of each value, which explains a bad duration or version better than a regex can.

use serde_json::{Map, Value as Json};

use super::diagnostic::Problem;
use super::node::{Node, Span, Value};

/// Checks `node` against the root `schema`; returns the problems in source order.
pub fn lint(node: &Node, schema: &Json) -> Vec<Problem> {
    lint_detailed(node, schema).problems
}

/// What the structural check found, with the unknown fields set apart: a file whose only
/// structural problems are unknown fields can still be checked further without them.
#[derive(Debug, Default)]
pub struct Linted {
    /// Every problem, in source order.
    pub problems: Vec<Problem>,
    /// The key and value of each unknown field.
    pub unknown_fields: Vec<(Span, Span)>,
    /// Whether any problem is something other than an unknown field.
    pub other_problems: bool,
}

/// [`lint`], keeping where the unknown fields are.
pub fn lint_detailed(node: &Node, schema: &Json) -> Linted {
    let mut linter = Linter {
        root: schema,
        problems: Vec::new(),
        unknown_fields: Vec::new(),
    };
    linter.check(node, schema, &Path::root());
    linter
        .problems
        .sort_by_key(|p| p.span.map_or(0, |s| s.offset));
    let other_problems = linter.problems.len() > linter.unknown_fields.len();
    Linted {
        problems: linter.problems,
        unknown_fields: linter.unknown_fields,
        other_problems,
    }
}

/// `text` with the unknown fields blanked out: each character of the key, the colon, the value
/// and a flow-mapping comma after it becomes a space, line breaks stay. Every other character
/// keeps its line and column, so problems found in the result point at the original text.
pub fn without_fields(text: &str, fields: &[(Span, Span)]) -> String {
    let mut blank = vec![false; text.len()];
    for (key, value) in fields {
        let start = key.offset.min(text.len());
        let mut end = (key.offset + key.len).max(value.offset + value.len);
        // The colon between the key and an empty value may lie past both spans.
        let after_key = (key.offset + key.len).min(text.len());
        if let Some(colon) = text[after_key..]
            .find(|c: char| c != ' ' && c != '\t')
            .filter(|i| text[after_key + i..].starts_with(':'))
        {
            end = end.max(after_key + colon + 1);
        }
        let end = end.min(text.len());
        // In a flow mapping, the comma that separated this entry from the next goes too.
        let mut stop = end;
        if let Some(i) = text[end..].find(|c: char| c != ' ' && c != '\t')
            && text[end + i..].starts_with(',')
        {
            stop = end + i + 1;
        }
        for b in blank.iter_mut().take(stop).skip(start) {
            *b = true;
        }
    }
    text.char_indices()
        .map(|(i, c)| {
            if blank[i] && c != '\n' && c != '\r' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Where in the document a node is, for messages: `spec.prepare[1].veleroBackup`.
#[derive(Clone)]
struct Path(String);

impl Path {
    fn root() -> Self {
        Path(String::new())
    }
    fn key(&self, key: &str) -> Path {
        if self.0.is_empty() {
            Path(key.to_string())
        } else {
            Path(format!("{}.{key}", self.0))
        }
    }
    fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }
    fn describe(&self) -> String {
        if self.0.is_empty() {
            "the top level".to_string()
        } else {
            format!("`{}`", self.0)
        }
    }
}

struct Linter<'s> {
    root: &'s Json,
    problems: Vec<Problem>,
    unknown_fields: Vec<(Span, Span)>,
}

/// The JSON types a schema allows, as listed in `type`.
fn allowed_types(schema: &Json) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Json::String(t) => Some(vec![t.as_str()]),
        Json::Array(ts) => Some(ts.iter().filter_map(Json::as_str).collect()),
        _ => None,
    }
}

fn node_matches_type(value: &Value, ty: &str) -> bool {
    match (ty, value) {
        // A typed string field accepts any plain scalar as its text (`target: 1.35`).
        ("string", Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_)) => true,
        ("integer", Value::Int(_)) => true,
        ("number", Value::Int(_) | Value::Float(_)) => true,
        ("boolean", Value::Bool(_)) => true,
        ("array", Value::Seq(_)) => true,
        ("object", Value::Map(_)) => true,
        ("null", Value::Null) => true,
        _ => false,
    }
}

fn type_word(ty: &str) -> &str {
    match ty {
        "string" => "a string",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "`true` or `false`",
        "array" => "a list",
        "object" => "a mapping",
        "null" => "nothing",
        other => other,
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, the most common
/// typo (`nmae` for `name`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

impl<'s> Linter<'s> {
    fn resolve(&self, schema: &'s Json) -> &'s Json {
        let mut current = schema;
        // Definitions never chain more than a few levels; the bound keeps a bad schema finite.
        for _ in 0..8 {
            let Some(reference) = current.get("$ref").and_then(Json::as_str) else {
                break;
            };
            let Some(target) = reference
                .strip_prefix("#/$defs/")
                .and_then(|name| self.root.get("$defs")?.get(name))
            else {
                break;
            };
            current = target;
        }
        current
    }

    /// The choices of a "one of these shapes" schema, or `None` for a plain schema. Schemas whose
    /// alternatives only list required keys (the step kinds) are not shape choices.
    fn alternatives(&self, schema: &'s Json) -> Option<Vec<&'s Json>> {
        let alts = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))?
            .as_array()?;
        if alts.iter().all(|a| {
            a.as_object()
                .is_some_and(|o| o.keys().all(|k| k == "required"))
        }) {
            return None;
        }
        Some(alts.iter().map(|a| self.resolve(a)).collect())
    }

    fn description(&self, schema: &'s Json) -> Option<&'s str> {
        schema
            .get("description")
            .or_else(|| self.resolve(schema).get("description"))
            .and_then(Json::as_str)
    }

    fn check(&mut self, node: &Node, schema: &'s Json, path: &Path) {
        let described = schema;
        let schema = self.resolve(schema);

        if let Some(alts) = self.alternatives(schema) {
            self.check_alternatives(node, described, &alts, path);
            return;
        }

        if let Some(types) = allowed_types(schema)
            && !types.iter().any(|t| node_matches_type(&node.value, t))
        {
            let expected: Vec<String> = types
                .iter()
                .filter(|t| **t != "null")
                .map(|t| type_word(t).to_string())
                .collect();
            let mut problem = Problem::new(format!(
                "{} should be {}, not {}",
                path.describe(),
                join_or(&expected),
                node.value.describe()
            ))
            .at(node.span)
            .label(format!("expected {}", join_or(&expected)));
            if let Some(help) = yaml11_boolean_help(&node.value, &types) {
                problem = problem.help(help);
            } else if let Some(d) = self.description(described) {
                problem = problem.help(first_sentence(d));
            }
            self.problems.push(problem);
            return;
        }

        if let Some(choices) = schema.get("enum").and_then(Json::as_array) {
            let names: Vec<&str> = choices.iter().filter_map(Json::as_str).collect();
            self.check_choice(node, &names, path);
            return;
        }

        match &node.value {
            Value::Map(entries)
                if schema.get("properties").is_some()
                    || schema.get("additionalProperties").is_some() =>
            {
                self.check_object(node, entries, schema, path);
            }
            Value::Seq(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, item_schema, &path.index(i));
                    }
                }
            }
            Value::Int(i) => self.check_range(node, *i, schema, path),
            _ => {}
        }
    }

    fn check_choice(&mut self, node: &Node, names: &[&str], path: &Path) {
        let text = scalar_text(&node.value);
        if text.as_deref().is_some_and(|t| names.contains(&t)) {
            return;
        }
        let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        let found = text.map_or_else(|| node.value.describe().to_string(), |t| format!("`{t}`"));
        // Long lists make an unreadable label; they go to the help line instead.
        let label = if names.len() > 6 {
            "not a valid choice".to_string()
        } else {
            format!("expected {}", join_or(&quoted))
        };
        let mut problem = Problem::new(format!(
            "{found} is not a valid choice for {}",
            path.describe()
        ))
        .at(node.span)
        .label(label);
        let suggestion = scalar_text(&node.value)
            .and_then(|t| did_you_mean(&t, names.iter().copied()).map(str::to_string));
        problem = match suggestion {
            Some(s) => problem.help(format!("did you mean `{s}`?")),
            None => problem.help(format!("use one of {}", join_or(&quoted))),
        };
        self.problems.push(problem);
    }

    fn check_alternatives(
        &mut self,
        node: &Node,
        described: &'s Json,
        alts: &[&'s Json],
        path: &Path,
    ) {
        if matches!(node.value, Value::Null)
            && alts
                .iter()
                .any(|a| allowed_types(a).is_some_and(|t| t.contains(&"null")))
        {
            return;
        }
        // Unit-enum variants with docs come out as `oneOf` of `const`s.
        let consts: Vec<&str> = alts
            .iter()
            .filter_map(|a| a.get("const").and_then(Json::as_str))
            .collect();
        if consts.len() == alts.len() {
            self.check_choice(node, &consts, path);
            return;
        }
        let fitting: Vec<&'s Json> = alts
            .iter()
            .copied()
            .filter(|a| {
                allowed_types(a).is_none_or(|t| t.iter().any(|t| node_matches_type(&node.value, t)))
            })
            .collect();
        match fitting.as_slice() {
            [only] => self.check(node, only, path),
            [] => {
                let expected: Vec<String> = alts
                    .iter()
                    .filter_map(|a| allowed_types(a))
                    .flatten()
                    .filter(|t| *t != "null")
                    .map(|t| type_word(t).to_string())
                    .collect();
                let mut problem = Problem::new(format!(
                    "{} should be {}, not {}",
                    path.describe(),
                    join_or(&expected),
                    node.value.describe()
                ))
                .at(node.span)
                .label(format!("expected {}", join_or(&expected)));
                if let Some(d) = self.description(described) {
                    problem = problem.help(first_sentence(d));
                }
                self.problems.push(problem);
            }
            // Several shapes fit the node's kind: the typed pass decides.
            _ => {}
        }
    }

    fn check_range(&mut self, node: &Node, value: i128, schema: &Json, path: &Path) {
        let minimum = schema.get("minimum").and_then(Json::as_i64).map(i128::from);
        let maximum = schema
            .get("maximum")
            .and_then(Json::as_i64)
            .map(i128::from)
            .or_else(|| match schema.get("format").and_then(Json::as_str) {
                Some("uint8") => Some(u8::MAX.into()),
                Some("uint16") => Some(u16::MAX.into()),
                Some("uint32") => Some(u32::MAX.into()),
                Some("int32") => Some(i32::MAX.into()),
                _ => None,
            });
        if let Some(min) = minimum.filter(|m| value < *m) {
            self.problems.push(
                Problem::new(format!(
                    "{} must be at least {min}, not {value}",
                    path.describe()
                ))
                .at(node.span)
                .label("too small"),
            );
        } else if let Some(max) = maximum.filter(|m| value > *m) {
            self.problems.push(
                Problem::new(format!(
                    "{} must be at most {max}, not {value}",
                    path.describe()
                ))
                .at(node.span)
                .label("too large"),
            );
        }
    }

    fn check_object(
        &mut self,
        node: &Node,
        entries: &[(Node, Node)],
        schema: &'s Json,
        path: &Path,
    ) {
        static EMPTY: std::sync::OnceLock<Map<String, Json>> = std::sync::OnceLock::new();
        let properties = schema
            .get("properties")
            .and_then(Json::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        let additional = schema.get("additionalProperties");
        let known: Vec<&str> = properties.keys().map(String::as_str).collect();

        for (key_node, value_node) in entries {
            let Some(key) = key_node.as_key() else {
                self.problems.push(
                    Problem::new(format!("keys in {} must be plain names", path.describe()))
                        .at(key_node.span)
                        .label("not a name")
                        .help("write the key as plain text, such as `name:`"),
                );
                continue;
            };
            if let Some(field_schema) = properties.get(&key) {
                self.check(value_node, field_schema, &path.key(&key));
                continue;
            }
            match additional {
                Some(Json::Bool(false)) => {
                    self.unknown_field(&key, key_node, &known, path);
                    self.unknown_fields.push((key_node.span, value_node.span));
                }
                Some(value_schema @ Json::Object(_)) => {
                    self.check(value_node, value_schema, &path.key(&key))
                }
                _ => {}
            }
        }

        if let Some(required) = schema.get("required").and_then(Json::as_array) {
            for name in required.iter().filter_map(Json::as_str) {
                if entries
                    .iter()
                    .any(|(k, _)| k.as_key().as_deref() == Some(name))
                {
                    continue;
                }
                let mut problem = Problem::new(format!("{} is missing `{name}`", path.describe()))
                    .at(node.span)
                    .label(format!("`{name}` is required here"));
                let what = properties
                    .get(name)
                    .and_then(|s| self.description(s))
                    .map(first_sentence);
                problem = problem.help(match what {
                    Some(d) => format!("add `{name}:`: {d}"),
                    None => format!("add `{name}:`"),
                });
                self.problems.push(problem);
            }
        }
    }

    fn unknown_field(&mut self, key: &str, key_node: &Node, known: &[&str], path: &Path) {
        let suggestion = did_you_mean(key, known.iter().copied());
        let listing: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the fields here are {}", join_or(&listing)),
        };
        self.problems.push(
            Problem::new(format!("unknown field `{key}` in {}", path.describe()))
                .at(key_node.span)
                .label("unknown field")
                .help(help),
        );
    }
}

/// YAML 1.1 spellings of booleans are plain strings in YAML 1.2; say so instead of just
/// "expected a boolean".
fn yaml11_boolean_help(value: &Value, types: &[&str]) -> Option<String> {
    let Value::Str(s) = value else { return None };
    if !types.contains(&"boolean") {
        return None;
    }
    let meant = match s.to_ascii_lowercase().as_str() {
        "yes" | "y" | "on" => "true",
        "no" | "n" | "off" => "false",
        "true" => "true",
        "false" => "false",
        _ => return None,
    };
    Some(format!(
        "booleans are written `true` or `false`; write `{meant}` instead of `{s}`"
    ))
}

/// The first sentence of a schema description, for a compact `help:` line.
fn first_sentence(description: &str) -> String {
    let text = description
        .split("\n\n")
        .next()
        .unwrap_or(description)
        .replace('\n', " ");
    match text.find(". ") {
        Some(end) => text[..=end].trim().to_string(),
        None => text.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let fields = ["retries", "timeout", "ttl"];
        assert_eq!(did_you_mean("retires", fields), Some("retries"));
        assert_eq!(did_you_mean("Timeout", fields), Some("timeout"));
        assert_eq!(did_you_mean("colour", fields), None);
        assert_eq!(did_you_mean("nmae", ["name", "id"]), Some("name"));
    }
}
