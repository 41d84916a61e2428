//! A Kubernetes client built from EKS itself: the endpoint and CA `DescribeCluster` returns, and
//! a bearer token presigned from the caller's AWS credentials, renewed before it expires. No
//! kubeconfig is involved, so the client cannot point at the wrong cluster.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use http::HeaderValue;
use http::header::AUTHORIZATION;
use kube::client::{Body, ClientBuilder};

use super::token::{self, EksToken};

#[derive(Debug, thiserror::Error)]
pub enum KubeClientError {
    #[error("the cluster's endpoint `{0}` is not a valid URL")]
    Endpoint(String),
    #[error("the cluster's certificate authority is not valid PEM: {0}")]
    Certificate(String),
    #[error("cannot get AWS credentials for the Kubernetes token: {}", crate::errors::credentials(.0))]
    Credentials(#[source] aws_credential_types::provider::error::CredentialsError),
    #[error("cannot make the EKS token: {0}")]
    Token(#[from] token::TokenError),
    #[error("cannot build the Kubernetes client: {}", crate::errors::kube(.0))]
    Build(#[source] kube::Error),
}

/// The current token, and what is needed to make the next one.
struct TokenState {
    token: EksToken,
    credentials: Credentials,
}

/// Hands out a valid token, re-signing it when it nears expiry. Re-signing is local (no
/// network); only credentials that themselves expire need the provider again, which the
/// background refresher does.
pub struct TokenSource {
    state: Mutex<TokenState>,
    region: String,
    cluster: String,
    provider: SharedCredentialsProvider,
}

impl TokenSource {
    pub async fn new(
        provider: SharedCredentialsProvider,
        region: &str,
        cluster: &str,
    ) -> Result<Arc<TokenSource>, KubeClientError> {
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(KubeClientError::Credentials)?;
        let token = token::get_token(&credentials, region, cluster, SystemTime::now())?;
        Ok(Arc::new(TokenSource {
            state: Mutex::new(TokenState { token, credentials }),
            region: region.to_string(),
            cluster: cluster.to_string(),
            provider,
        }))
    }

    /// The bearer token to send now.
    pub fn current(&self) -> String {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = SystemTime::now();
        if state.token.needs_refresh(now)
            && let Ok(fresh) =
                token::get_token(&state.credentials, &self.region, &self.cluster, now)
        {
            state.token = fresh;
        }
        state.token.as_str().to_string()
    }

    /// Fetches credentials again (they may be temporary: IRSA, SSO, instance roles) and
    /// re-signs. Called periodically so a long wait never outlives its credentials.
    pub async fn refresh(&self) -> Result<(), KubeClientError> {
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(KubeClientError::Credentials)?;
        let token = token::get_token(&credentials, &self.region, &self.cluster, SystemTime::now())?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = TokenState { token, credentials };
        Ok(())
    }

    /// Renews credentials and token every `every` until the source is dropped elsewhere.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(source) = weak.upgrade() else { break };
                // A failed refresh keeps the current token; the next attempt may succeed.
                let _ = source.refresh().await;
            }
        })
    }
}

/// The DER certificates in a PEM bundle.
pub fn pem_to_der(pem: &str) -> Result<Vec<Vec<u8>>, KubeClientError> {
    use base64::Engine;
    let mut certs = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            current = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE") {
            let body = current
                .take()
                .ok_or_else(|| KubeClientError::Certificate("END without BEGIN".into()))?;
            certs.push(
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .map_err(|e| KubeClientError::Certificate(e.to_string()))?,
            );
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    if certs.is_empty() {
        return Err(KubeClientError::Certificate("no certificate found".into()));
    }
    Ok(certs)
}

/// A client for `endpoint`, trusting only `ca_pem`, authenticating with `tokens`.
pub fn build(
    endpoint: &str,
    ca_pem: &str,
    tokens: Arc<TokenSource>,
) -> Result<kube::Client, KubeClientError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| KubeClientError::Endpoint(endpoint.to_string()))?;
    let mut config = kube::Config::new(uri);
    config.root_cert = Some(pem_to_der(ca_pem)?);
    config.connect_timeout = Some(Duration::from_secs(15));
    // Watches hold a request open for minutes; the watch itself sets its server-side timeout.
    config.read_timeout = Some(Duration::from_secs(330));
    let builder = ClientBuilder::try_from(config).map_err(KubeClientError::Build)?;
    let auth = tower::util::MapRequestLayer::new(move |mut req: http::Request<Body>| {
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", tokens.current())) {
            let mut value = value;
            value.set_sensitive(true);
            req.headers_mut().insert(AUTHORIZATION, value);
        }
        req
    });
    Ok(builder.with_layer(&auth).build())
}
