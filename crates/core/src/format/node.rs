//! A YAML document as a tree of located nodes.
//!
//! The structural check ([`super::lint`]) walks this tree rather than the typed structs because
//! serde stops at the first mismatch, and a workflow author deserves every problem in one go.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// Byte range of a node in its source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub fn new(offset: usize, len: usize) -> Self {
        Span { offset, len }
    }
}

impl From<Span> for miette::SourceSpan {
    fn from(s: Span) -> Self {
        (s.offset, s.len).into()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

impl Value {
    /// How the value is described in "expected X, found Y" messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self, Value::Seq(_) | Value::Map(_))
    }
}

impl Node {
    /// The key as text, for mapping keys that are plain scalars.
    pub fn as_key(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_key().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Maps serde-saphyr's line/column locations to byte offsets in the source.
pub struct LineIndex<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, line_starts }
    }

    /// Byte offset of a 1-based line and 1-based character column, clamped to the text.
    pub fn offset(&self, line: u64, column: u64) -> usize {
        let Some(&start) = usize::try_from(line.saturating_sub(1))
            .ok()
            .and_then(|l| self.line_starts.get(l))
        else {
            return self.text.len();
        };
        let line_text = &self.text[start..];
        let chars = usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX);
        start
            + line_text
                .char_indices()
                .nth(chars)
                .map_or(line_text.len(), |(i, _)| i)
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let end = offset.min(self.text.len());
        let column = self
            .text
            .get(start..end)
            .map_or(1, |s| s.chars().count() + 1);
        (line, column)
    }

    /// The span of a located value. Scalars are measured in the text so that the caret covers
    /// the whole value; collections get a one-character span at their first token.
    pub fn span(&self, loc: &serde_saphyr::Location, scalar: bool) -> Span {
        let offset = self.offset(loc.line(), loc.column());
        let len = if scalar {
            let chars = usize::try_from(loc.span().len()).unwrap_or(0);
            self.text[offset.min(self.text.len())..]
                .char_indices()
                .nth(chars)
                .map_or(self.text.len() - offset.min(self.text.len()), |(i, _)| i)
        } else {
            0
        };
        Span::new(
            offset,
            len.max(1)
                .min(self.text.len().saturating_sub(offset).max(1)),
        )
    }
}

/// The raw, not-yet-located form of a node as serde-saphyr hands it over.
struct RawNode(serde_saphyr::Spanned<RawValue>);

enum RawValue {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(RawNode, RawNode)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_saphyr::Spanned::<RawValue>::deserialize(d).map(RawNode)
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawValue, E> {
        Ok(RawValue::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<RawValue, E> {
        i128::try_from(v)
            .map(RawValue::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<RawNode>()? {
            items.push(item);
        }
        Ok(RawValue::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<RawNode>()? {
            let value = map.next_value::<RawNode>()?;
            entries.push((key, value));
        }
        Ok(RawValue::Map(entries))
    }
}

impl RawNode {
    fn locate(self, index: &LineIndex) -> Node {
        let scalar = !matches!(self.0.value, RawValue::Seq(_) | RawValue::Map(_));
        let span = index.span(&self.0.referenced, scalar);
        let value = match self.0.value {
            RawValue::Null => Value::Null,
            RawValue::Bool(b) => Value::Bool(b),
            RawValue::Int(i) => Value::Int(i),
            RawValue::Float(f) => Value::Float(f),
            RawValue::Str(s) => Value::Str(s),
            RawValue::Seq(items) => {
                Value::Seq(items.into_iter().map(|n| n.locate(index)).collect())
            }
            RawValue::Map(entries) => Value::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.locate(index), v.locate(index)))
                    .collect(),
            ),
        };
        Node { value, span }
    }
}

/// Parses `text` into a located tree under the given parser options.
pub fn parse(text: &str, options: serde_saphyr::Options) -> Result<Node, serde_saphyr::Error> {
    let raw: RawNode = serde_saphyr::from_str_with_options(text, options)?;
    Ok(raw.locate(&LineIndex::new(text)))
}
