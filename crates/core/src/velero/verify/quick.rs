//! The item check's second pass: the walk of [`Reader::read`](super::Reader::read), taken over
//! the tokens [`tokens::index`](super::tokens::index) found instead of over every byte.
//! Strings were checked in the first pass, so a string is one token (its opening quote) and the
//! bytes after it are never looked at, except for the few keys and values the head is made of.
//!
//! It answers only when the answer is simple: a well-formed item whose four fields hold no
//! escapes. Anything else (malformed JSON, a wrong shape, a duplicate field, an escaped key at
//! the top level) returns `None` and the precise walk reads the item again, to say what is
//! wrong and where, or to decode the escapes exactly as it always has.

use std::borrow::Cow;

use super::{Field, Head, MAX_DEPTH, Next, Walk, close, open};

/// What may end a number or a literal: whitespace, a structural character, a quote, or the
/// end of the item.
fn ends_run(item: &[u8], at: usize) -> bool {
    matches!(
        item.get(at),
        None | Some(b' ' | b'\t' | b'\n' | b'\r' | b'{' | b'}' | b'[' | b']' | b':' | b',' | b'"')
    )
}

/// The run of other bytes at `at` is exactly one number or literal, read as the walk reads it.
fn scalar(item: &[u8], at: usize) -> Option<()> {
    let mut w = Walk { b: item, i: at };
    match item.get(at)? {
        b't' => w.literal(b"true"),
        b'f' => w.literal(b"false"),
        b'n' => w.literal(b"null"),
        b'-' | b'0'..=b'9' => w.number(),
        _ => return None,
    }
    .ok()?;
    ends_run(item, w.i).then_some(())
}

/// The bytes of the string whose opening quote is at `open`; `None` if it holds an escape (its
/// end is then not simply the next quote, and its text is not its bytes).
fn plain(item: &[u8], open: usize) -> Option<&[u8]> {
    let rest = item.get(open + 1..)?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest.get(end) == Some(&b'"')).then(|| rest.get(..end).unwrap_or_default())
}

/// The head of `item`, whose tokens are `tokens`, when the item is well-formed and simple (see
/// the module's documentation); `None` to ask the precise walk.
pub(super) fn head<'a>(item: &'a [u8], tokens: &[u32], stack: &mut Vec<bool>) -> Option<Head<'a>> {
    let mut at = tokens.iter().map(|&t| t as usize);
    let mut head = Head::default();
    let mut seen = 0u8;
    let mut in_metadata = false;
    stack.clear();
    if item.get(at.next()?) != Some(&b'{') {
        return None;
    }
    stack.push(true);
    let mut next = Next::ObjectStart;
    loop {
        next = match next {
            Next::ObjectStart | Next::Key => {
                let open = at.next()?;
                match item.get(open)? {
                    b'}' if matches!(next, Next::ObjectStart) => {
                        close(stack, &mut in_metadata);
                        Next::AfterValue
                    }
                    b'"' => {
                        let depth = stack.len();
                        let field = if depth == 1 || (depth == 2 && in_metadata) {
                            match (depth == 1, plain(item, open)?) {
                                (true, b"apiVersion") => Field::ApiVersion,
                                (true, b"kind") => Field::Kind,
                                (true, b"metadata") => Field::Metadata,
                                (false, b"name") => Field::Name,
                                (false, b"namespace") => Field::Namespace,
                                _ => Field::Other,
                            }
                        } else {
                            Field::Other
                        };
                        if field != Field::Other {
                            if seen & field.bit() != 0 {
                                return None;
                            }
                            seen |= field.bit();
                        }
                        if item.get(at.next()?) != Some(&b':') {
                            return None;
                        }
                        Next::Value(field)
                    }
                    _ => return None,
                }
            }
            Next::Value(field) => {
                let start = at.next()?;
                let c = *item.get(start)?;
                let wants_string = !matches!(field, Field::Other | Field::Metadata);
                match c {
                    b'"' if field != Field::Metadata => {
                        if wants_string {
                            let text = std::str::from_utf8(plain(item, start)?).ok();
                            let text = Some(Cow::Borrowed(text?));
                            match field {
                                Field::ApiVersion => head.api_version = text,
                                Field::Kind => head.kind = text,
                                Field::Name => head.name = text,
                                Field::Namespace => head.namespace = text,
                                Field::Metadata | Field::Other => {}
                            }
                        }
                        Next::AfterValue
                    }
                    b'n' => {
                        scalar(item, start)?;
                        Next::AfterValue
                    }
                    b'{' | b'[' if !wants_string => {
                        if (field == Field::Metadata && c == b'[') || stack.len() >= MAX_DEPTH {
                            return None;
                        }
                        open(stack, &mut in_metadata, field, c);
                        if c == b'{' {
                            Next::ObjectStart
                        } else {
                            // `[` then `]` is an empty array; anything else is its first value.
                            let mut ahead = at.clone();
                            if ahead.next().and_then(|p| item.get(p)) == Some(&b']') {
                                at = ahead;
                                stack.pop();
                                Next::AfterValue
                            } else {
                                Next::Value(Field::Other)
                            }
                        }
                    }
                    b't' | b'f' | b'-' | b'0'..=b'9' if field == Field::Other => {
                        scalar(item, start)?;
                        Next::AfterValue
                    }
                    _ => return None,
                }
            }
            Next::AfterValue => {
                let Some(&object) = stack.last() else {
                    // Nothing may follow the item.
                    return at.next().is_none().then_some(head);
                };
                match (item.get(at.next()?)?, object) {
                    (b',', true) => Next::Key,
                    (b',', false) => Next::Value(Field::Other),
                    (b'}', true) | (b']', false) => {
                        close(stack, &mut in_metadata);
                        Next::AfterValue
                    }
                    _ => return None,
                }
            }
        };
    }
}
