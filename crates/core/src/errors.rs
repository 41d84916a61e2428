//! Errors from the AWS SDK and from kube as one-line sentences for people.
//!
//! Neither library's `Display` is fit to show: `DisplayErrorContext` ends with the `Debug` dump of
//! the whole error, an SDK service error's chain ends in `Error { code: …, message: … }`, kube
//! prints `ApiError: … (ErrorResponse { … })`, and a missing-credentials error spans six lines.
//! Every place that turns such an error into text goes through this module, which says what
//! happened in the service's own words (its error code and message) and leaves the rest (the
//! request id, the HTTP status, the whole `Debug` chain) to the debug log (`-v`, `RUST_LOG`).

use std::error::Error;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_eks::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

/// What an AWS call's failure says, taken apart: the sentence for people, and the code and
/// request id for callers that react to a kind of refusal, for logs and for AWS support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    pub message: String,
    pub code: Option<String>,
    pub request_id: Option<String>,
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
}

/// Takes an SDK error apart. The sentence is one line and never holds `Debug` output; the
/// error itself goes to the debug log with its code and request id.
pub fn aws<E>(service: &str, operation: &str, e: &SdkError<E, Response>) -> AwsFailure
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let (code, request_id) = match e {
        SdkError::ServiceError(s) => (
            s.err().code().map(str::to_string),
            request_id(s.err().meta().extra("aws_request_id"), s.raw()),
        ),
        _ => (None, None),
    };
    let message = match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message().filter(|m| !m.trim().is_empty())) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => match status {
                    Some(st) => format!("{code} (HTTP {st})"),
                    None => code.to_string(),
                },
                // A HEAD request's error has no body to name it: the status is all there is.
                (None, _) => match status {
                    Some(st) => format!("HTTP {st}{}", status_words(st)),
                    None => "the service answered with an error".to_string(),
                },
            }
        }
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(d) => {
            let cause = d
                .as_connector_error()
                .and_then(|c| c.source())
                .map(chain)
                .filter(|c| !c.is_empty());
            match (d.is_timeout(), cause) {
                (_, Some(c)) if credentials_in(d.as_connector_error()) => c,
                (true, Some(c)) => format!("the connection timed out: {c}"),
                (true, None) => "the connection timed out".to_string(),
                (false, Some(c)) if d.is_io() => format!("cannot reach the service: {c}"),
                (false, Some(c)) => c,
                (false, None) => "the request could not be sent".to_string(),
            }
        }
        SdkError::ResponseError(_) => match Error::source(e) {
            Some(s) => format!("the response could not be read: {}", chain(s)),
            None => "the response could not be read".to_string(),
        },
        SdkError::ConstructionFailure(_) => match Error::source(e) {
            Some(s) => format!("the request could not be built: {}", chain(s)),
            None => "the request could not be built".to_string(),
        },
        _ => one_line(&e.to_string()),
    };
    let message = one_line(&message);
    tracing::info!(
        target: "eks_upgrade_core::errors",
        service,
        operation,
        code = code.as_deref().unwrap_or(""),
        request_id = request_id.as_deref().unwrap_or(""),
        status = status.unwrap_or(0),
        "{service} `{operation}` failed: {message}"
    );
    tracing::debug!(target: "eks_upgrade_core::errors", error = ?e, "the SDK's error");
    AwsFailure {
        message,
        code,
        request_id,
        status,
    }
}

/// The request id of a service error: from its metadata, or the response headers (S3 sends
/// `x-amz-request-id`, the JSON services `x-amzn-requestid`).
fn request_id(from_meta: Option<&str>, raw: &Response) -> Option<String> {
    from_meta
        .or_else(|| raw.headers().get("x-amz-request-id"))
        .or_else(|| raw.headers().get("x-amzn-requestid"))
        .map(str::to_string)
}

fn status_words(status: u16) -> &'static str {
    match status {
        301 => " (moved permanently: the bucket is in another region)",
        400 => " (bad request)",
        403 => " (access denied)",
        404 => " (not found)",
        500 => " (internal error)",
        503 => " (service unavailable)",
        _ => "",
    }
}

/// Whether a credentials error is somewhere below `e`.
fn credentials_in(e: Option<&aws_smithy_runtime_api::client::result::ConnectorError>) -> bool {
    let mut next: Option<&(dyn Error + 'static)> = e.and_then(|c| c.source());
    while let Some(err) = next {
        if err.downcast_ref::<CredentialsError>().is_some() {
            return true;
        }
        next = err.source();
    }
    false
}

/// The one-line sentence of an SDK error, for callers that need nothing else.
pub fn sdk<E>(service: &str, operation: &str, e: &SdkError<E, Response>) -> String
where
    E: ProvideErrorMetadata + Error + Send + Sync + 'static,
{
    aws(service, operation, e).message
}

/// A credentials provider's failure, in words: the six-line "no credentials found in chain"
/// becomes one line.
pub fn credentials(e: &CredentialsError) -> String {
    match e {
        CredentialsError::CredentialsNotLoaded(_) => {
            "no AWS credentials were found (not in the environment, a profile, web identity, the container or instance metadata)".to_string()
        }
        CredentialsError::ProviderTimedOut(_) => one_line(&e.to_string()),
        CredentialsError::InvalidConfiguration(_)
        | CredentialsError::ProviderError(_)
        | CredentialsError::Unhandled(_) => match e.source() {
            Some(s) => format!("cannot load AWS credentials: {}", chain(s)),
            None => format!("cannot load AWS credentials: {e}"),
        },
        _ => one_line(&e.to_string()),
    }
}

/// A kube error in words. The API server's own message comes first, then its reason and
/// HTTP status (`backups.velero.io "b" not found (NotFound, HTTP 404)`).
pub fn kube(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let message = if status.message.trim().is_empty() {
                "the API server refused the request".to_string()
            } else {
                one_line(&status.message)
            };
            if status.reason.is_empty() {
                format!("{message} (HTTP {})", status.code)
            } else {
                format!("{message} ({}, HTTP {})", status.reason, status.code)
            }
        }
        other => {
            let mut text = one_line(&other.to_string());
            if let Some(s) = other.source() {
                let cause = chain(s);
                if !cause.is_empty() && !text.contains(&cause) {
                    text = format!("{text}: {cause}");
                }
            }
            text
        }
    }
}

/// Any error and its causes on one line, each cause once. The libraries whose `Display` cannot
/// be shown (kube, credentials) are put in words, also where an outer error embeds their text
/// (kube's watcher prints `failed to perform initial object list: ApiError: … (Status { … })`);
/// other causes are joined with `: ` unless the outer message already says them.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    chain_at(e, 0)
}

fn chain_at(e: &(dyn Error + 'static), depth: usize) -> String {
    if let Some(k) = e.downcast_ref::<kube::Error>() {
        return kube(k);
    }
    if let Some(c) = e.downcast_ref::<CredentialsError>() {
        return credentials(c);
    }
    let text = e.to_string();
    // Eight causes say more than anyone reads; a longer chain is a loop in the making.
    let Some(cause) = e.source().filter(|_| depth < 8) else {
        return one_line(&text);
    };
    let raw = cause.to_string();
    let words = chain_at(cause, depth + 1);
    if !raw.is_empty() && text.contains(&raw) {
        one_line(&text.replace(&raw, &words))
    } else if words.is_empty() || text.contains(&words) || raw.starts_with("Error {") {
        // SDK error metadata prints as a struct; the outer message already has its words.
        one_line(&text)
    } else {
        one_line(&format!("{text}: {words}"))
    }
}

/// Collapses line breaks and runs of spaces: a message is one line in a log.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;

    #[test]
    fn credentials_errors_are_one_line() {
        let e = CredentialsError::not_loaded("no credentials found in chain.\n  Environment: x");
        let text = credentials(&e);
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("no AWS credentials"), "{text}");
    }

    #[test]
    fn kube_api_errors_carry_no_debug() {
        let e = kube::Error::Api(Box::new(kube::core::Status {
            message: "backups.velero.io \"b\" not found".into(),
            reason: "NotFound".into(),
            code: 404,
            ..Default::default()
        }));
        assert_eq!(
            kube(&e),
            "backups.velero.io \"b\" not found (NotFound, HTTP 404)"
        );
        let boxed: Box<dyn Error + Send + Sync> = Box::new(e);
        let text = chain(boxed.as_ref());
        assert!(!text.contains("Status {"), "{text}");
    }

    #[test]
    fn one_line_collapses_whitespace() {
        assert_eq!(one_line(" a\n  b\tc "), "a b c");
    }
}
