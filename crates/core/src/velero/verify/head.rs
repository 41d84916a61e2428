//! The four fields verification reads of every item — `apiVersion`, `kind`, `metadata.name` and
//! `metadata.namespace` — found in one pass that also proves the whole item is well-formed JSON
//! (RFC 8259, UTF-8), without building a tree or deserializing anything else.
//!
//! This replaced `serde_json::from_slice` into a borrowed struct: a full verification parses
//! gigabytes of items, and most of their bytes sit inside strings (base64 data, configuration
//! text, annotations holding JSON). Strings are therefore scanned 16 and 64 bytes at a time
//! (SSE2) for the only bytes that end the fast path inside them (`"`, `\`, control characters),
//! noting on the way whether any byte was non-ASCII so that only such strings are checked as
//! UTF-8; the structure around them is walked with an explicit stack, so no item can exhaust
//! the thread's stack.
//!
//! That walk is now the precise path. [`Reader::read`] first tries two faster passes over bit
//! masks and tokens ([`tokens`], then `quick`), which answer only for well-formed items whose
//! four fields need no decoding; everything else, and every error message, is the walk's.
//!
//! It is stricter than the struct it replaced where Kubernetes is: the item must be an object,
//! `metadata` an object, and the four fields strings (or `null`); invalid UTF-8 anywhere is
//! refused, as the API server refuses it.

use std::borrow::Cow;

use super::scan::scan;
use super::tokens;
use grammar::{Field, Next, close, open};

/// Nesting deeper than this is refused (Go's `encoding/json`, which the API server uses, stops
/// at 10,000 too); it also bounds the stack's memory for a hostile item.
pub const MAX_DEPTH: usize = 10_000;

/// What an item says about itself.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Head<'a> {
    pub api_version: Option<Cow<'a, str>>,
    pub kind: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub namespace: Option<Cow<'a, str>>,
}

/// Why an item is not well-formed, and where (1-based line and byte column, as `serde_json`
/// counts them).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} at line {line} column {column}")]
pub struct Malformed {
    pub what: Cow<'static, str>,
    /// Not JSON at all, as opposed to JSON of the wrong shape (a field of the wrong type, a
    /// duplicate field, an item that is not an object).
    pub syntax: bool,
    pub line: usize,
    pub column: usize,
}

/// A reusable stack and token index, so reading hundreds of thousands of items allocates them
/// once.
#[derive(Default)]
pub struct Reader {
    /// One entry per open container: `true` for an object, `false` for an array.
    stack: Vec<bool>,
    /// Scratch space for the positions of the current item's tokens (see [`tokens::index`]).
    tokens: Vec<u32>,
}

/// A string's bytes between its quotes, and whether they hold escapes.
struct Span {
    start: usize,
    end: usize,
    escaped: bool,
}

struct Walk<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Walk<'a> {
    fn fail(&self, what: impl Into<Cow<'static, str>>) -> Malformed {
        self.failure(what, true)
    }

    /// JSON that is well-formed so far but not an item's shape.
    fn misfit(&self, what: impl Into<Cow<'static, str>>) -> Malformed {
        self.failure(what, false)
    }

    fn failure(&self, what: impl Into<Cow<'static, str>>, syntax: bool) -> Malformed {
        let at = self.i.min(self.b.len());
        let before = self.b.get(..at).unwrap_or_default();
        let line = 1 + before.iter().filter(|c| **c == b'\n').count();
        let column = at
            - before
                .iter()
                .rposition(|c| *c == b'\n')
                .map_or(0, |p| p + 1)
            + 1;
        Malformed {
            what: what.into(),
            syntax,
            line,
            column,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    /// After the opening quote: the string's span, the closing quote consumed.
    fn string(&mut self) -> Result<Span, Malformed> {
        let start = self.i;
        let mut escaped = false;
        let mut wide = false;
        loop {
            self.i = scan(self.b, self.i, &mut wide);
            match self.peek() {
                None => return Err(self.fail("EOF while parsing a string")),
                Some(b'"') => {
                    let end = self.i;
                    self.i += 1;
                    if wide && std::str::from_utf8(&self.b[start..end]).is_err() {
                        self.i = start;
                        return Err(self.fail("invalid UTF-8 in a string"));
                    }
                    return Ok(Span {
                        start,
                        end,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.i += 1;
                    self.escape()?;
                }
                Some(_) => {
                    return Err(self
                        .fail("control character (\\u0000-\\u001F) found while parsing a string"));
                }
            }
        }
    }

    /// After a backslash.
    fn escape(&mut self) -> Result<(), Malformed> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                self.i += 1;
                Ok(())
            }
            Some(b'u') => {
                self.i += 1;
                for _ in 0..4 {
                    match self.peek() {
                        Some(c) if c.is_ascii_hexdigit() => self.i += 1,
                        Some(_) => return Err(self.fail("invalid \\u escape")),
                        None => return Err(self.fail("EOF while parsing a string")),
                    }
                }
                Ok(())
            }
            Some(_) => Err(self.fail("invalid escape")),
            None => Err(self.fail("EOF while parsing a string")),
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - from
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Result<(), Malformed> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.fail("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(self.fail("invalid number"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Malformed> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(self.fail("expected value"))
        }
    }

    /// A string's text: borrowed when it has no escapes.
    fn text(&self, span: &Span) -> Result<Cow<'a, str>, Malformed> {
        let raw = &self.b[span.start..span.end];
        if !span.escaped {
            return std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| self.fail("invalid UTF-8 in a string"));
        }
        // Escapes in these few fields are rare; serde_json decodes them exactly as before,
        // lone surrogates included.
        serde_json::from_slice::<String>(&self.b[span.start - 1..=span.end])
            .map(Cow::Owned)
            .map_err(|e| {
                // serde_json's own position is within the string; the walk's is the item's.
                let e = e.to_string();
                let what = e.split(" at line ").next().unwrap_or_default();
                self.fail(format!("invalid string: {what}"))
            })
    }

    /// A key's field, by where the walk is: only the top level's and `metadata`'s keys count.
    fn field(&self, span: &Span, depth: usize, in_metadata: bool) -> Result<Field, Malformed> {
        let top = depth == 1;
        let meta = depth == 2 && in_metadata;
        if !top && !meta {
            return Ok(Field::Other);
        }
        let key = if span.escaped {
            self.text(span)?
        } else {
            Cow::Borrowed(std::str::from_utf8(&self.b[span.start..span.end]).unwrap_or(""))
        };
        Ok(match (top, key.as_ref()) {
            (true, "apiVersion") => Field::ApiVersion,
            (true, "kind") => Field::Kind,
            (true, "metadata") => Field::Metadata,
            (false, "name") => Field::Name,
            (false, "namespace") => Field::Namespace,
            _ => Field::Other,
        })
    }
}

impl Reader {
    /// Reads `item`'s head, or says why it is not a well-formed JSON object.
    pub fn read<'a>(&mut self, item: &'a [u8]) -> Result<Head<'a>, Malformed> {
        if let Some(head) = tokens::index(item, &mut self.tokens)
            .and_then(|found| quick::head(item, found, &mut self.stack))
        {
            return Ok(head);
        }
        self.walk(item)
    }

    /// The precise walk, byte by byte: what [`Reader::read`] falls back on, and what says why
    /// an item is refused.
    fn walk<'a>(&mut self, item: &'a [u8]) -> Result<Head<'a>, Malformed> {
        let mut w = Walk { b: item, i: 0 };
        let mut head = Head::default();
        let stack = &mut self.stack;
        stack.clear();
        // Tracked fields already seen (a duplicate is refused, as serde refused it).
        let mut seen = 0u8;
        let mut in_metadata = false;
        w.ws();
        match w.peek() {
            Some(b'{') => {}
            None => return Err(w.fail("EOF while parsing a value")),
            // Another JSON value is JSON of the wrong shape; anything else is not JSON.
            Some(b'[' | b'"' | b't' | b'f' | b'n' | b'-' | b'0'..=b'9') => {
                return Err(w.misfit("the item is not a JSON object"));
            }
            Some(_) => return Err(w.fail("expected value")),
        }
        w.i += 1;
        stack.push(true);
        let mut next = Next::ObjectStart;
        loop {
            next = match next {
                Next::ObjectStart => {
                    w.ws();
                    if w.peek() == Some(b'}') {
                        w.i += 1;
                        close(stack, &mut in_metadata);
                        Next::AfterValue
                    } else {
                        Next::Key
                    }
                }
                Next::Key => {
                    w.ws();
                    if w.peek() != Some(b'"') {
                        return Err(w.fail("expected a key (a string)"));
                    }
                    w.i += 1;
                    let span = w.string()?;
                    let field = w.field(&span, stack.len(), in_metadata)?;
                    if field != Field::Other {
                        if seen & field.bit() != 0 {
                            return Err(w.misfit(format!("duplicate field `{}`", field.label())));
                        }
                        seen |= field.bit();
                    }
                    w.ws();
                    if w.peek() != Some(b':') {
                        return Err(w.fail("expected `:`"));
                    }
                    w.i += 1;
                    Next::Value(field)
                }
                Next::Value(field) => {
                    w.ws();
                    let Some(c) = w.peek() else {
                        return Err(w.fail("EOF while parsing a value"));
                    };
                    let wants_string = !matches!(field, Field::Other | Field::Metadata);
                    let wrong = |w: &Walk, what: &str| {
                        w.misfit(format!("`{}` must be {what}", field.label()))
                    };
                    match c {
                        b'"' => {
                            if field == Field::Metadata {
                                return Err(wrong(&w, "an object"));
                            }
                            w.i += 1;
                            let span = w.string()?;
                            if wants_string {
                                let text = w.text(&span)?;
                                match field {
                                    Field::ApiVersion => head.api_version = Some(text),
                                    Field::Kind => head.kind = Some(text),
                                    Field::Name => head.name = Some(text),
                                    Field::Namespace => head.namespace = Some(text),
                                    Field::Metadata | Field::Other => {}
                                }
                            }
                            Next::AfterValue
                        }
                        b'n' => {
                            w.literal(b"null")?;
                            Next::AfterValue
                        }
                        _ if wants_string => return Err(wrong(&w, "a string")),
                        b'{' | b'[' => {
                            if field == Field::Metadata && c == b'[' {
                                return Err(wrong(&w, "an object"));
                            }
                            if stack.len() >= MAX_DEPTH {
                                return Err(
                                    w.fail(format!("nested deeper than {MAX_DEPTH} levels"))
                                );
                            }
                            w.i += 1;
                            open(stack, &mut in_metadata, field, c);
                            if c == b'{' {
                                Next::ObjectStart
                            } else {
                                w.ws();
                                if w.peek() == Some(b']') {
                                    w.i += 1;
                                    stack.pop();
                                    Next::AfterValue
                                } else {
                                    Next::Value(Field::Other)
                                }
                            }
                        }
                        _ if field == Field::Metadata => return Err(wrong(&w, "an object")),
                        b't' => {
                            w.literal(b"true")?;
                            Next::AfterValue
                        }
                        b'f' => {
                            w.literal(b"false")?;
                            Next::AfterValue
                        }
                        b'-' | b'0'..=b'9' => {
                            w.number()?;
                            Next::AfterValue
                        }
                        _ => return Err(w.fail("expected value")),
                    }
                }
                Next::AfterValue => {
                    w.ws();
                    let Some(&object) = stack.last() else {
                        if w.i < item.len() {
                            return Err(w.fail("trailing characters"));
                        }
                        return Ok(head);
                    };
                    match (w.peek(), object) {
                        (Some(b','), true) => {
                            w.i += 1;
                            Next::Key
                        }
                        (Some(b','), false) => {
                            w.i += 1;
                            Next::Value(Field::Other)
                        }
                        (Some(b'}'), true) | (Some(b']'), false) => {
                            w.i += 1;
                            close(stack, &mut in_metadata);
                            Next::AfterValue
                        }
                        (None, _) => return Err(w.fail("EOF while parsing an object or array")),
                        (_, true) => return Err(w.fail("expected `,` or `}`")),
                        (_, false) => return Err(w.fail("expected `,` or `]`")),
                    }
                }
            };
        }
    }
}

#[path = "grammar.rs"]
mod grammar;
#[path = "quick.rs"]
mod quick;

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;
