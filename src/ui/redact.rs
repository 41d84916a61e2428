//! Keeps credentials out of debug logs. Every line the `tracing` subscriber writes passes through
//! [`Redacting`], which scrubs the formatted text just before it reaches stderr. Scrubbing the
//! finished line, rather than the fields of each event, means no layer, formatter or library
//! `Debug` impl can bypass it: whatever a dependency decides to print, the writer sees it last.
//!
//! What is scrubbed: EKS bearer tokens (`k8s-aws-v1.…`), SigV4 `Authorization` headers and
//! signatures, presigned-URL parameters (`X-Amz-Signature`, `X-Amz-Credential`,
//! `X-Amz-Security-Token`), fields named like secret keys or session tokens, `Bearer` values,
//! webhook URLs of the well-known chat services, and every literal value registered with
//! [`add_secret`] (the AWS secret key from the environment, the workflow's webhook URLs).
//!
//! The replacements never contain quotes or backslashes and the patterns never consume them, so
//! a JSON line stays JSON after scrubbing.

use std::io::Write;
use std::sync::{LazyLock, RwLock};

use regex_lite::Regex;
use tracing_subscriber::fmt::MakeWriter;

/// What a scrubbed value is replaced with.
pub const REDACTED: &str = "<redacted>";

/// Literal values shorter than this are not registered: replacing them everywhere would mangle
/// ordinary text, and nothing this short is a credential.
const MIN_SECRET_LEN: usize = 8;

/// A pattern and its replacement, tried only when the line contains one of its needles (lower
/// case), so that most lines cost a few substring searches and no regex at all.
struct Rule {
    needles: &'static [&'static str],
    regex: Regex,
    replacement: &'static str,
}

/// `(needles, pattern, replacement)`. A quoted value stops at the quote that ends it, at the
/// backslash of an escaped quote (JSON), or at the line end: the replacement keeps both ends.
const RULES: &[(&[&str], &str, &str)] = &[
    // The EKS bearer token: base64url of a presigned STS URL.
    (
        &["k8s-aws-v1."],
        r"(?i)k8s-aws-v1\.[a-z0-9_\-]+=*",
        "k8s-aws-v1.<redacted>",
    ),
    // Presigned-URL parameters, plain or percent-encoded (`%3D`), up to the next `&` or `%26`.
    (
        &["x-amz-"],
        r#"(?i)(x-amz-(?:signature|credential|security-token))(=|%3d)(?:[^&\s"'\\<>%]|%[013-9a-f][0-9a-f]|%2[0-57-9a-f])+"#,
        "$1$2<redacted>",
    ),
    // SigV4 `Authorization` parts wherever they appear.
    (
        &["signature="],
        r"(?i)\b(signature=)[0-9a-f]{16,}",
        "$1<redacted>",
    ),
    (
        &["credential="],
        r#"(?i)\b(credential=)[^,&\s"'\\<>]+"#,
        "$1<redacted>",
    ),
    // A header or field named `authorization`: its whole value when quoted, else up to a comma
    // (SigV4's `Signature=` after the comma is caught above). A value already redacted by the
    // SDK (`** redacted (length=N) **`) is left alone.
    (
        &["authorization"],
        r#"(?i)((?:proxy-)?authorization\\?["']?\s*[:=]\s*\\?["'])[^"'\\\r\n]+"#,
        "$1<redacted>",
    ),
    (
        &["authorization"],
        r#"(?i)((?:proxy-)?authorization\\?["']?\s*[:=]\s*)[^"'\\\s*,<][^"'\\\r\n,]*"#,
        "$1<redacted>",
    ),
    (
        &["bearer"],
        r"(?i)\b(bearer\s+)[a-z0-9\-._~+/]+=*",
        "$1<redacted>",
    ),
    // Fields and headers named like credentials, in Rust `Debug`, JSON, query strings or env
    // form. `*` is excluded so that an already-redacted `** redacted **` stays as it is.
    (
        &["secret", "token"],
        r#"(?i)((?:aws_?)?secret_?access_?key|(?:aws_?)?session_?token|(?:aws_?)?security_?token|x-amz-security-token|secret_?key|access_?token|refresh_?token|client_?secret)(\\?["']?\s*[:=]\s*\\?["']?)[^\s"'\\,&}<>*]+"#,
        "$1$2<redacted>",
    ),
    // STS and SSO responses in XML.
    (
        &["<secretaccesskey>"],
        r"(?i)(<SecretAccessKey>)[^<]*",
        "$1<redacted>",
    ),
    (
        &["<sessiontoken>"],
        r"(?i)(<SessionToken>)[^<]*",
        "$1<redacted>",
    ),
    // Webhook URLs of chat services carry their secret in the path.
    (
        &[
            "hooks.slack",
            "webhook.office",
            "outlook.office",
            "discord",
            "logic.azure",
            "chat.googleapis",
        ],
        r#"(?i)(https?://(?:hooks\.slack\.com|[a-z0-9.\-]*webhook\.office\.com|outlook\.office(?:365)?\.com|(?:[a-z0-9\-]+\.)?discord(?:app)?\.com|[a-z0-9.\-]*\.logic\.azure\.com|chat\.googleapis\.com))/[^\s"'\\<>]*"#,
        "$1/<redacted>",
    ),
    // A Slack webhook path on its own (a client logging host and path separately).
    (
        &["/services/t"],
        r"(?i)/services/T[a-z0-9]+/B[a-z0-9]+/[a-z0-9]+",
        "/services/<redacted>",
    ),
];

static COMPILED: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    RULES
        .iter()
        // The patterns are constants checked by the unit tests; one that failed to compile
        // would be skipped rather than take the tool down.
        .filter_map(|(needles, pattern, replacement)| {
            Regex::new(pattern).ok().map(|regex| Rule {
                needles,
                regex,
                replacement,
            })
        })
        .collect()
});

/// Values known to be secret at run time, replaced wherever they appear.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers a value that must never be logged: a credential from the environment, a webhook
/// URL. Its JSON-escaped form is registered too, for the JSON log format, and its
/// percent-encoded form, as a session token appears in a signed query string.
pub fn add_secret(value: &str) {
    let value = value.trim();
    if value.len() < MIN_SECRET_LEN {
        return;
    }
    let escaped = serde_json::to_string(value).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    let encoded = eks_upgrade_core::cloud::token::uri_encode(value);
    if let Ok(mut secrets) = SECRETS.write() {
        for v in [value, escaped, &encoded] {
            if !secrets.iter().any(|s| s == v) {
                secrets.push(v.to_string());
            }
        }
        // Longest first, so that a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Registers a webhook URL: the whole URL, and its path and query on their own, since an HTTP
/// client may log those apart from the host.
pub fn add_secret_url(url: &str) {
    add_secret(url);
    if let Some((_, rest)) = url.split_once("://")
        && let Some(i) = rest.find('/')
    {
        add_secret(&rest[i..]);
    }
}

/// The line with every credential replaced by [`REDACTED`].
pub fn scrub(text: &str) -> String {
    let mut out = text.to_string();
    if let Ok(secrets) = SECRETS.read() {
        for s in secrets.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
    }
    let lower = out.to_ascii_lowercase();
    for rule in COMPILED.iter() {
        if rule.needles.iter().any(|n| lower.contains(n)) {
            out = rule.regex.replace_all(&out, rule.replacement).into_owned();
        }
    }
    out
}

/// A `MakeWriter` that scrubs each formatted event before handing it to `inner`.
#[derive(Debug, Clone)]
pub struct Redacting<M> {
    inner: M,
}

impl<M> Redacting<M> {
    pub fn new(inner: M) -> Self {
        Redacting { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = ScrubbingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter {
            buf: Vec::new(),
            inner: self.inner.make_writer(),
        }
    }
}

/// Collects one event's text; scrubs and writes it when dropped. The subscriber makes one writer
/// per event, so a line is never scrubbed in pieces a pattern could fall between.
pub struct ScrubbingWriter<W: Write> {
    buf: Vec<u8>,
    inner: W,
}

impl<W: Write> Write for ScrubbingWriter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    // Nothing leaves before the whole event is in: flushing part of it would let a secret
    // split across two writes through unscrubbed.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: Write> Drop for ScrubbingWriter<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let clean = scrub(&String::from_utf8_lossy(&self.buf));
        // One `write_all`, so that lines from other threads and the reporter do not interleave;
        // a closed stderr must not stop an upgrade.
        let _ = self.inner.write_all(clean.as_bytes());
        let _ = self.inner.flush();
    }
}

#[cfg(test)]
mod tests;
