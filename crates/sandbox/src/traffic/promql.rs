//! The part of PromQL the sandbox's Prometheus stand-in evaluates: what an error-rate gate
//! asks (`sum by (…) (rate|increase(metric{…}[range]))`, a quotient of two, numbers, and a
//! plain selector for the latest value). Anything else is refused by name, so a query that
//! works against the sandbox means the same against a real Prometheus.
//!
//! `increase` is the last sample minus the first inside the range, and `rate` that divided by
//! the range in seconds: Prometheus extrapolates to the range's edges, which over the sandbox's
//! dense samples changes nothing a gate would notice. Counter resets are not handled: the
//! sandbox's counters only grow.

use std::collections::BTreeMap;
use std::time::Duration;

/// A series' identity: its labels, `__name__` included.
pub type Labels = BTreeMap<String, String>;

/// How long a plain selector looks back for its latest sample, as Prometheus's default.
const LOOKBACK: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    /// A plain selector: each series' latest sample within the lookback.
    Select(Selector),
    Range {
        func: Func,
        selector: Selector,
        range: Duration,
    },
    Sum {
        by: Option<Vec<String>>,
        inner: Box<Expr>,
    },
    Div(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Rate,
    Increase,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    /// For `=~` and `!~`: the value anchored at both ends, as Prometheus does.
    regex: Option<regex_lite::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl Matcher {
    fn matches(&self, labels: &Labels) -> bool {
        // A missing label matches as the empty string, as in Prometheus.
        let v = labels.get(&self.label).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => v == self.value,
            (MatchOp::NotEqual, _) => v != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(v),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(v),
            (_, None) => false,
        }
    }
}

impl Selector {
    pub fn matches(&self, labels: &Labels) -> bool {
        labels.get("__name__").map(String::as_str) == Some(self.metric.as_str())
            && self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// Why a query was not evaluated: Prometheus's `bad_data`, with a message naming the place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}

fn refuse<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        message: message.into(),
    })
}

const SUBSET: &str = "the sandbox evaluates numbers, selectors, `rate` and `increase` of a range selector, `sum [by (labels)] (…)` and `/`";

pub fn parse(query: &str) -> Result<Expr, ParseError> {
    let mut p = Parser {
        tokens: lex(query)?,
        at: 0,
    };
    let expr = p.quotient()?;
    match p.peek() {
        None => Ok(expr),
        Some(t) => refuse(format!("unexpected {} after the expression", t.describe())),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(f64),
    /// The text between `[` and `]`.
    Range(String),
    Punct(&'static str),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("`{s}`"),
            Token::Str(s) => format!("string \"{s}\""),
            Token::Number(n) => format!("number `{n}`"),
            Token::Range(r) => format!("range `[{r}]`"),
            Token::Punct(p) => format!("`{p}`"),
        }
    }
}

const PUNCTS: [&str; 13] = [
    "=~", "!~", "!=", "==", "(", ")", "{", "}", ",", "=", "/", "*", "+",
];

fn lex(query: &str) -> Result<Vec<Token>, ParseError> {
    let chars: Vec<char> = query.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            tokens.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            match text.parse() {
                Ok(n) => tokens.push(Token::Number(n)),
                Err(_) => return refuse(format!("`{text}` is not a number")),
            }
        } else if c == '"' || c == '\'' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return refuse("a string is not closed"),
                    Some(&q) if q == c => break,
                    Some('\\') => {
                        match chars.get(i + 1) {
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some(&e) => value.push(e),
                            None => return refuse("a string is not closed"),
                        }
                        i += 1;
                    }
                    Some(&ch) => value.push(ch),
                }
                i += 1;
            }
            i += 1;
            tokens.push(Token::Str(value));
        } else if c == '[' {
            let Some(len) = chars[i + 1..].iter().position(|&c| c == ']') else {
                return refuse("a range `[` is not closed");
            };
            tokens.push(Token::Range(chars[i + 1..i + 1 + len].iter().collect()));
            i += len + 2;
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(p) = PUNCTS.iter().find(|p| rest.starts_with(**p)) else {
                return refuse(format!("unexpected character `{c}`"));
            };
            tokens.push(Token::Punct(p));
            i += p.len();
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn eat(&mut self, punct: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Punct(p)) if *p == punct);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, punct: &str) -> Result<(), ParseError> {
        if self.eat(punct) {
            return Ok(());
        }
        match self.peek() {
            Some(t) => refuse(format!("expected `{punct}`, found {}", t.describe())),
            None => refuse(format!("expected `{punct}` before the end of the query")),
        }
    }

    fn quotient(&mut self) -> Result<Expr, ParseError> {
        let mut left = self.term()?;
        loop {
            match self.peek() {
                Some(Token::Punct("/")) => {
                    self.at += 1;
                    left = Expr::Div(Box::new(left), Box::new(self.term()?));
                }
                Some(Token::Punct(op @ ("*" | "+" | "=="))) => {
                    return refuse(format!("operator `{op}`: {SUBSET}"));
                }
                _ => return Ok(left),
            }
        }
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        match self.next() {
            Some(Token::Number(n)) => Ok(Expr::Number(n)),
            Some(Token::Punct("(")) => {
                let inner = self.quotient()?;
                self.expect(")")?;
                Ok(inner)
            }
            Some(Token::Ident(name)) if name == "sum" => self.sum(),
            Some(Token::Ident(name)) if name == "rate" || name == "increase" => {
                let func = if name == "rate" {
                    Func::Rate
                } else {
                    Func::Increase
                };
                self.expect("(")?;
                let selector = self.selector()?;
                let range = match self.next() {
                    Some(Token::Range(text)) => duration(&text)?,
                    _ => {
                        return refuse(format!(
                            "`{name}` takes a range selector such as `metric[5m]`"
                        ));
                    }
                };
                self.expect(")")?;
                Ok(Expr::Range {
                    func,
                    selector,
                    range,
                })
            }
            Some(Token::Ident(name)) if self.peek() == Some(&Token::Punct("(")) => {
                refuse(format!("function or aggregation `{name}`: {SUBSET}"))
            }
            Some(Token::Ident(name)) => {
                self.at -= 1;
                let selector = self.selector()?;
                if let Some(Token::Range(_)) = self.peek() {
                    return refuse(format!(
                        "a range selector of `{name}` outside `rate` or `increase` is a matrix; the sandbox answers instant vectors only"
                    ));
                }
                Ok(Expr::Select(selector))
            }
            Some(Token::Punct("{")) => {
                refuse("a selector without a metric name: the sandbox needs `metric{…}`")
            }
            Some(t) => refuse(format!("unexpected {}", t.describe())),
            None => refuse("the query is empty or ends early"),
        }
    }

    fn sum(&mut self) -> Result<Expr, ParseError> {
        let mut by = self.grouping()?;
        self.expect("(")?;
        let inner = self.quotient()?;
        self.expect(")")?;
        if by.is_none() {
            by = self.grouping()?;
        }
        Ok(Expr::Sum {
            by,
            inner: Box::new(inner),
        })
    }

    fn grouping(&mut self) -> Result<Option<Vec<String>>, ParseError> {
        match self.peek() {
            Some(Token::Ident(w)) if w == "by" => {}
            Some(Token::Ident(w)) if w == "without" => {
                return refuse(format!("`without`: {SUBSET}"));
            }
            _ => return Ok(None),
        }
        self.at += 1;
        self.expect("(")?;
        let mut labels = Vec::new();
        loop {
            match self.next() {
                Some(Token::Punct(")")) => break,
                Some(Token::Ident(l)) => {
                    labels.push(l);
                    if !self.eat(",") {
                        self.expect(")")?;
                        break;
                    }
                }
                Some(t) => return refuse(format!("expected a label name, found {}", t.describe())),
                None => return refuse("a `by (…)` list is not closed"),
            }
        }
        Ok(Some(labels))
    }

    fn selector(&mut self) -> Result<Selector, ParseError> {
        let metric = match self.next() {
            Some(Token::Ident(m)) => m,
            Some(t) => return refuse(format!("expected a metric name, found {}", t.describe())),
            None => return refuse("expected a metric name before the end of the query"),
        };
        let mut matchers = Vec::new();
        if self.eat("{") {
            loop {
                let label = match self.next() {
                    Some(Token::Punct("}")) => break,
                    Some(Token::Ident(l)) => l,
                    Some(t) => {
                        return refuse(format!("expected a label name, found {}", t.describe()));
                    }
                    None => return refuse("a `{` is not closed"),
                };
                let op = match self.next() {
                    Some(Token::Punct("=")) => MatchOp::Equal,
                    Some(Token::Punct("!=")) => MatchOp::NotEqual,
                    Some(Token::Punct("=~")) => MatchOp::Regex,
                    Some(Token::Punct("!~")) => MatchOp::NotRegex,
                    _ => {
                        return refuse(format!("expected `=`, `!=`, `=~` or `!~` after `{label}`"));
                    }
                };
                let value = match self.next() {
                    Some(Token::Str(v)) => v,
                    _ => return refuse(format!("expected a quoted value for `{label}`")),
                };
                let regex = match op {
                    MatchOp::Regex | MatchOp::NotRegex => {
                        match regex_lite::Regex::new(&format!("^(?:{value})$")) {
                            Ok(re) => Some(re),
                            Err(e) => {
                                return refuse(format!(
                                    "`{value}` is not a regular expression: {e}"
                                ));
                            }
                        }
                    }
                    _ => None,
                };
                matchers.push(Matcher {
                    label,
                    op,
                    value,
                    regex,
                });
                if !self.eat(",") {
                    self.expect("}")?;
                    break;
                }
            }
        }
        Ok(Selector { metric, matchers })
    }
}

/// A Prometheus duration: one or more `<number><unit>` with units `ms s m h d w y`.
pub fn duration(text: &str) -> Result<Duration, ParseError> {
    let bad = || ParseError {
        message: format!("`{text}` is not a duration such as `30s`, `5m` or `1h30m`"),
    };
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() || rest.contains(':') {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = [
            ("ms", 1u64),
            ("s", 1000),
            ("m", 60_000),
            ("h", 3_600_000),
            ("d", 86_400_000),
            ("w", 604_800_000),
            ("y", 31_536_000_000),
        ]
        .iter()
        .find(|(u, _)| rest.starts_with(u))
        .map(|(u, ms)| (*ms, u.len()))
        .ok_or_else(bad)?;
        total += Duration::from_millis(n.saturating_mul(unit));
        rest = &rest[len..];
    }
    Ok(total)
}

/// What a query evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vec<(Labels, f64)>),
}

/// Where samples come from: every series the selector matches, with its samples
/// `(unix seconds, value)` oldest first.
pub trait Samples {
    fn select(&self, selector: &Selector) -> Vec<(Labels, Vec<(f64, f64)>)>;
}

pub fn eval(expr: &Expr, at: f64, source: &dyn Samples) -> Value {
    match expr {
        Expr::Number(n) => Value::Scalar(*n),
        Expr::Select(selector) => {
            let from = at - LOOKBACK.as_secs_f64();
            let mut out = Vec::new();
            for (labels, samples) in source.select(selector) {
                if let Some((_, v)) = samples.iter().rev().find(|(t, _)| *t <= at && *t > from) {
                    out.push((labels, *v));
                }
            }
            Value::Vector(out)
        }
        Expr::Range {
            func,
            selector,
            range,
        } => {
            let from = at - range.as_secs_f64();
            let mut out = Vec::new();
            for (mut labels, samples) in source.select(selector) {
                let inside: Vec<f64> = samples
                    .iter()
                    .filter(|(t, _)| *t > from && *t <= at)
                    .map(|(_, v)| *v)
                    .collect();
                // Like Prometheus: fewer than two samples give no result, not zero.
                let [first, .., last] = inside.as_slice() else {
                    continue;
                };
                let increase = last - first;
                labels.remove("__name__");
                let value = match func {
                    Func::Increase => increase,
                    Func::Rate => increase / range.as_secs_f64(),
                };
                out.push((labels, value));
            }
            Value::Vector(out)
        }
        Expr::Sum { by, inner } => match eval(inner, at, source) {
            Value::Scalar(s) => Value::Scalar(s),
            Value::Vector(v) => {
                let mut groups: BTreeMap<Labels, f64> = BTreeMap::new();
                for (labels, value) in v {
                    let key: Labels = match by {
                        Some(names) => labels
                            .into_iter()
                            .filter(|(k, _)| names.contains(k))
                            .collect(),
                        None => Labels::new(),
                    };
                    *groups.entry(key).or_default() += value;
                }
                Value::Vector(groups.into_iter().collect())
            }
        },
        Expr::Div(l, r) => match (eval(l, at, source), eval(r, at, source)) {
            (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(a / b),
            (Value::Vector(v), Value::Scalar(b)) => Value::Vector(
                v.into_iter()
                    .map(|(l, a)| (without_name(l), a / b))
                    .collect(),
            ),
            (Value::Scalar(a), Value::Vector(v)) => Value::Vector(
                v.into_iter()
                    .map(|(l, b)| (without_name(l), a / b))
                    .collect(),
            ),
            // One-to-one matching on the whole label set (the metric name aside).
            (Value::Vector(left), Value::Vector(right)) => {
                let right: BTreeMap<Labels, f64> = right
                    .into_iter()
                    .map(|(l, v)| (without_name(l), v))
                    .collect();
                Value::Vector(
                    left.into_iter()
                        .filter_map(|(l, a)| {
                            let l = without_name(l);
                            right.get(&l).map(|b| (l, a / b))
                        })
                        .collect(),
                )
            }
        },
    }
}

fn without_name(mut labels: Labels) -> Labels {
    labels.remove("__name__");
    labels
}

/// A sample value as Prometheus writes it in JSON: a string, `NaN` and `±Inf` spelled out.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests;
