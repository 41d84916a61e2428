//! The scrubber against credentials shaped as the real clients make them: an EKS token and its
//! presigned URL from `get_token`, SigV4 headers, STS and credential-process responses, and
//! whole events formatted by `tracing-subscriber` in both formats.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;

use super::*;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str =
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDt3Zt8lXeW1vNkYEXAMPLE==";
const SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

fn credentials() -> Credentials {
    Credentials::new(
        ACCESS_KEY,
        SECRET_KEY,
        Some(SESSION_TOKEN.into()),
        None,
        "test",
    )
}

fn eks_token() -> String {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    eks_upgrade_core::cloud::token::get_token(&credentials(), "us-east-1", "demo", at)
        .expect("a token")
        .as_str()
        .to_string()
}

/// Nothing of a credential is left: no part of the signature, the token or the keys.
#[track_caller]
fn assert_clean(text: &str) {
    let token = eks_token();
    for secret in [
        SECRET_KEY,
        SESSION_TOKEN,
        SIGNATURE,
        &token["k8s-aws-v1.".len()..][..20],
        "EXAMPLEKEY",
        "wEaCXVzLWVhc3Qt",
    ] {
        assert!(!text.contains(secret), "`{secret}` left in:\n{text}");
    }
}

#[test]
fn every_rule_compiles() {
    assert_eq!(COMPILED.len(), RULES.len());
}

#[test]
fn an_eks_token_is_redacted_bare_and_as_a_bearer_header() {
    let token = eks_token();
    let bare = scrub(&format!("using token {token} for demo"));
    assert_eq!(bare, "using token k8s-aws-v1.<redacted> for demo");
    let header = scrub(&format!(
        r#"headers: {{"authorization": "Bearer {token}", "accept": "application/json"}}"#
    ));
    assert_clean(&header);
    assert!(
        header.contains(r#""accept": "application/json""#),
        "{header}"
    );
    // The decoded form is the presigned STS URL.
    let url = eks_upgrade_core::cloud::token::decode(&token).expect("decodes");
    let url = scrub(&url);
    assert!(url.contains("X-Amz-Signature=<redacted>"), "{url}");
    assert!(url.contains("X-Amz-Credential=<redacted>"), "{url}");
    assert!(url.contains("X-Amz-Security-Token=<redacted>"), "{url}");
    assert!(url.contains("X-Amz-Date=20260101T000000Z&"), "{url}");
    assert!(!url.contains("<redacted><redacted>"), "{url}");
    assert_eq!(scrub(&url), url, "scrubbing twice changes nothing");
    assert_clean(&url);
}

/// The presigned STS URL inside the token, as a client would log it, bare and percent-encoded
/// whole (a URL passed as a query value). (The SDK's own presigning is not called here: the IAM
/// test reads every S3 call in `src/` as one the tool makes.)
#[test]
fn a_presigned_url_keeps_its_shape_but_not_its_credentials() {
    let uri = eks_upgrade_core::cloud::token::decode(&eks_token()).expect("decodes");
    let signature = uri
        .split("X-Amz-Signature=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .unwrap_or_default()
        .to_string();
    assert_eq!(signature.len(), 64, "{uri}");
    let text = scrub(&format!("GET {uri} -> 200"));
    assert!(!text.contains(&signature), "{text}");
    assert!(!text.contains(ACCESS_KEY), "{text}");
    assert_clean(&text);
    assert!(text.starts_with("GET https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&"));
    assert!(text.ends_with(" -> 200"), "{text}");
    let encoded = scrub(&form_encode(&uri));
    assert!(!encoded.contains(&signature), "{encoded}");
    assert!(!encoded.contains(ACCESS_KEY), "{encoded}");
    assert!(!encoded.contains("IQoJb3JpZ2luX2Vj"), "{encoded}");
    assert!(
        encoded.contains("X-Amz-Signature%3D<redacted>"),
        "{encoded}"
    );
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn sigv4_headers_are_redacted_and_other_headers_kept() {
    let line = format!(
        r#"request=Request {{ method: POST, uri: https://eks.us-east-1.amazonaws.com/clusters/demo/updates, headers: {{"content-type": "application/json", "x-amz-date": "20260101T000000Z", "authorization": "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/eks/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature={SIGNATURE}", "x-amz-security-token": "{SESSION_TOKEN}", "amz-sdk-request": "attempt=1; max=3"}} }}"#
    );
    let out = scrub(&line);
    assert_clean(&out);
    assert!(!out.contains(ACCESS_KEY), "{out}");
    for kept in [
        r#""x-amz-date": "20260101T000000Z""#,
        r#""amz-sdk-request": "attempt=1; max=3""#,
        "uri: https://eks.us-east-1.amazonaws.com/clusters/demo/updates",
    ] {
        assert!(out.contains(kept), "`{kept}` lost from:\n{out}");
    }
    // The SDK's own redaction, unquoted, keeps the list around it intact.
    let sdk = r#"headers: {"authorization": ** redacted (length=243) **, "amz-sdk-request": "attempt=1; max=3"}"#;
    assert_eq!(scrub(sdk), sdk);
    // A field displayed without quotes, as `tracing`'s text format writes `%value`.
    let field = scrub(&format!(
        "signed authorization=AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/eks/aws4_request, SignedHeaders=host, Signature={SIGNATURE} next=1"
    ));
    assert_eq!(
        field,
        "signed authorization=<redacted>, SignedHeaders=host, Signature=<redacted> next=1"
    );
    // The same parts outside a header, as a signing library might log them.
    let signing = scrub(&format!(
        "Credential={ACCESS_KEY}/20260101/us-east-1/s3/aws4_request, Signature={SIGNATURE}"
    ));
    assert_eq!(
        signing, "Credential=<redacted>, Signature=<redacted>",
        "{signing}"
    );
}

#[test]
fn credentials_in_responses_files_and_environments_are_redacted() {
    let sts = format!(
        "<AssumeRoleResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>{SECRET_KEY}</SecretAccessKey><SessionToken>{SESSION_TOKEN}</SessionToken><Expiration>2026-01-01T01:00:00Z</Expiration></Credentials></AssumeRoleResult>"
    );
    let process = format!(
        r#"{{"Version":1,"AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"{SECRET_KEY}","SessionToken":"{SESSION_TOKEN}"}}"#
    );
    let env = format!("AWS_SECRET_ACCESS_KEY={SECRET_KEY} AWS_SESSION_TOKEN={SESSION_TOKEN}");
    let profile =
        format!("aws_secret_access_key = {SECRET_KEY}\naws_session_token = {SESSION_TOKEN}");
    for text in [sts, process.clone(), env, profile] {
        let out = scrub(&text);
        assert_clean(&out);
    }
    let process = scrub(&process);
    assert!(
        serde_json::from_str::<serde_json::Value>(&process).is_ok(),
        "{process}"
    );
    // The SDK's own redaction is left as it is.
    let debug = format!("{:?}", credentials());
    assert_eq!(scrub(&debug), debug);
}

#[test]
fn webhook_urls_of_chat_services_and_registered_urls_are_redacted() {
    for url in [
        "https://hooks.slack.com/services/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",
        "https://contoso.webhook.office.com/webhookb2/7f3c1e2a-0000-4000-8000-1234@5678/IncomingWebhook/abcdef0123/9876",
        "https://discord.com/api/webhooks/123456789012345678/aBcDeFgHiJkLmNoPqRsTuVwXyZ",
    ] {
        let out = scrub(&format!("POST {url} failed"));
        assert!(!out.contains(&url[30..]), "{out}");
        assert!(out.ends_with("/<redacted> failed"), "{out}");
    }
    // A Slack path logged apart from its host.
    assert_eq!(
        scrub("path=/services/T0123ABCD/B0456EFGH/Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2"),
        "path=/services/<redacted>"
    );
    // Any other webhook: by value, whole or as a path.
    add_secret_url("http://127.0.0.1:4040/hooks/only-we-know-this-path-3f9a");
    let out = scrub(
        "starting new connection: http://127.0.0.1:4040/hooks/only-we-know-this-path-3f9a; uri=/hooks/only-we-know-this-path-3f9a",
    );
    assert!(!out.contains("only-we-know"), "{out}");
    assert!(out.contains("starting new connection: "), "{out}");
    // A registered credential, also in the forms JSON and a signed query string give it.
    add_secret("Fwo/registered+token\"quoted");
    assert_eq!(
        scrub(
            r#"a=Fwo/registered+token"quoted b="Fwo/registered+token\"quoted" c=Fwo%2Fregistered%2Btoken%22quoted"#
        ),
        r#"a=<redacted> b="<redacted>" c=<redacted>"#
    );
    // Short values are not registered: they would mangle ordinary text.
    add_secret("demo");
    assert_eq!(scrub("cluster demo"), "cluster demo");
}

#[test]
fn ordinary_lines_pass_unchanged() {
    for line in [
        "2026-01-01T00:00:00.000Z DEBUG invoke{service=EKS operation=DescribeCluster}: aws_smithy_runtime::client::orchestrator: retry strategy has OKed initial request",
        r#"{"timestamp":"2026-01-01T00:00:00Z","level":"DEBUG","message":"requesting","target":"kube_client::client::builder","span":{"http.method":"GET","http.url":"https://127.0.0.1:6443/api/v1/nodes?limit=500","name":"HTTP"}}"#,
        "x-amz-request-id: 4442587FB7D0A2F9, x-amz-expires=60, the token expired, authorization failed",
        "secret `velero-credentials` exists in namespace `velero`",
    ] {
        assert_eq!(scrub(line), line);
    }
}

/// A buffer standing in for stderr.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Sink;
    fn make_writer(&'a self) -> Sink {
        self.clone()
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().map(|b| b.clone()).unwrap_or_default()).into()
    }
}

/// The tests that install a subscriber of their own take turns: running at the same time on
/// their own threads, one's register and drop can leave a callsite's cached interest (aws_sigv4's
/// TRACE events among them) worked out without the other's subscriber, and an event is lost now
/// and then. `emit_events` also works the interest out afresh once its subscriber is in place.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Emits, through a real subscriber, what the libraries emit: an `http::Request` with its
/// headers by `Debug`, and a span field holding a token.
fn emit_events() {
    tracing::callsite::rebuild_interest_cache();
    let token = eks_token();
    let request = http::Request::builder()
        .method("GET")
        .uri("https://127.0.0.1:6443/api/v1/namespaces/shop/pods")
        .header("authorization", format!("Bearer {token}"))
        .header("x-amz-security-token", SESSION_TOKEN)
        .body(())
        .expect("request");
    let span = tracing::debug_span!("HTTP", http.url = %request.uri(), token = %token);
    let _guard = span.enter();
    tracing::trace!(request = ?request, "transmitting request");
    tracing::debug!(
        authorization = %format!("AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/us-east-1/eks/aws4_request, SignedHeaders=host, Signature={SIGNATURE}"),
        "signed"
    );
    tracing::debug!("secret_access_key={SECRET_KEY}\nsession_token: \"{SESSION_TOKEN}\"");
}

#[test]
fn json_events_stay_one_json_object_per_line() {
    let _turn = one_at_a_time();
    // `tracing` caches each callsite's interest process-wide; another test of this binary that
    // signs (and so first hits aws_sigv4's callsites) on its own thread with no subscriber can
    // race this one's, and aws_sigv4's event is then dropped (about 1 run in 200 here). What is
    // tested is what reaches the writer, so a run that missed it is repeated, a few times at
    // most; every run's output is checked for leaks.
    let mut text = String::new();
    for _ in 0..5 {
        let sink = Sink::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(Redacting::new(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, emit_events);
        text = sink.text();
        assert_clean(&text);
        if text.contains("aws_sigv4") {
            break;
        }
    }
    // Ours, and `aws_sigv4`'s own trace of signing the token (its canonical request holds the
    // session token).
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3, "{text}");
    assert!(text.contains("aws_sigv4"), "{text}");
    for line in lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["message"].is_string(), "{line}");
    }
    assert!(text.contains("k8s-aws-v1.<redacted>"), "{text}");
    assert!(text.contains("/api/v1/namespaces/shop/pods"), "{text}");
}

#[test]
fn text_events_are_redacted_too() {
    let _turn = one_at_a_time();
    let sink = Sink::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(Redacting::new(sink.clone()))
        .finish();
    tracing::subscriber::with_default(subscriber, emit_events);
    let text = sink.text();
    assert_clean(&text);
    assert!(text.contains("transmitting request"), "{text}");
    assert!(text.contains("/api/v1/namespaces/shop/pods"), "{text}");
}
