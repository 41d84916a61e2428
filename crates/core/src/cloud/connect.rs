//! Connecting to a cluster: AWS through the standard credential chain (profile, region,
//! environment, IRSA, SSO…), the cluster from EKS `DescribeCluster`, and a Kubernetes client
//! that is guaranteed to talk to that cluster's API server and no other.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use base64::Engine;
use serde::Serialize;

use super::eks::{EksError, eks_error};
use super::kubeclient::{self, KubeClientError, TokenSource};
use crate::types::Version;

/// Which cluster to connect to, and how.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub cluster: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Use this kubeconfig context instead of building the client from EKS. It is still
    /// checked against EKS.
    pub kube_context: Option<String>,
}

/// The cluster as EKS describes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub name: String,
    pub region: String,
    pub arn: String,
    pub version: Version,
    pub platform_version: Option<String>,
    pub status: String,
    /// `health.issues` of DescribeCluster, as `CODE: message (resources)`.
    pub health_issues: Vec<String>,
    pub endpoint: String,
    #[serde(skip)]
    pub ca_pem: String,
    /// The control plane's subnets (`resourcesVpcConfig.subnetIds`).
    #[serde(skip)]
    pub subnet_ids: Vec<String>,
}

/// A cause kept whole under a sentence of its own.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Where the profile the tool was asked to use came from, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileFrom {
    /// `--profile`
    Flag,
    /// `AWS_PROFILE`
    Environment,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "no AWS region: pass `--region`, set it in the workflow's `spec.cluster.region`, or set `AWS_REGION`"
    )]
    NoRegion,
    #[error("`{0}` is not an AWS region")]
    BadRegion(String),
    #[error("{} names AWS profile `{profile}`, which is not in the AWS configuration files", match from { ProfileFrom::Flag => "`--profile`", ProfileFrom::Environment => "`AWS_PROFILE`" })]
    NoProfile {
        profile: String,
        from: ProfileFrom,
        /// The profiles the files define, for the hint.
        known: Vec<String>,
    },
    #[error(
        "cannot read the AWS configuration files: {}",
        crate::errors::chain(source)
    )]
    ProfileFiles {
        #[source]
        source: aws_config::profile::ProfileFileLoadError,
    },
    #[error("{}", crate::errors::credentials(source))]
    Credentials {
        #[source]
        source: aws_credential_types::provider::error::CredentialsError,
    },
    #[error("EKS has no cluster `{cluster}` in {region}")]
    ClusterNotFound {
        cluster: String,
        region: String,
        known: Vec<String>,
    },
    #[error(transparent)]
    Eks(#[from] EksError),
    #[error("cluster `{cluster}` has no API endpoint or certificate yet (status {status})")]
    NotReady { cluster: String, status: String },
    #[error("EKS reports version `{0}`, which is not MAJOR.MINOR")]
    Version(String),
    #[error(transparent)]
    Client(#[from] KubeClientError),
    #[error("cannot use kubeconfig context `{context}`: {}", crate::errors::chain(source.as_ref()))]
    Kubeconfig {
        context: String,
        #[source]
        source: Cause,
    },
    #[error(
        "kubeconfig context `{context}` points at `{server}`, but EKS says cluster `{cluster}` is at `{endpoint}`"
    )]
    WrongEndpoint {
        context: String,
        server: String,
        cluster: String,
        endpoint: String,
    },
    #[error(
        "kubeconfig context `{context}` trusts a different certificate authority than EKS reports for cluster `{cluster}`"
    )]
    WrongCa { context: String, cluster: String },
}

impl ConnectError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConnectError::ClusterNotFound { known, .. } if !known.is_empty() => Some(format!("clusters in this region: {}", known.join(", "))),
            ConnectError::ClusterNotFound { .. } => Some("check `--cluster` and `--region`; `aws eks list-clusters` shows what the credentials can see".into()),
            ConnectError::WrongEndpoint { .. } | ConnectError::WrongCa { .. } => Some("the tool refuses to act on a cluster other than the one named; drop `--kube-context` to build the client from EKS".into()),
            ConnectError::Eks(_) => Some("check the AWS credentials (`aws sts get-caller-identity`) and the region".into()),
            ConnectError::NoProfile { known, from, .. } => {
                let fix = match from {
                    ProfileFrom::Flag => "pass a profile that exists",
                    ProfileFrom::Environment => "set `AWS_PROFILE` to a profile that exists, or unset it",
                };
                Some(if known.is_empty() {
                    format!("{fix}; `aws configure --profile NAME` creates one (`AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` say where the files are)")
                } else {
                    let names: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                    format!("{fix}: {}", names.join(", "))
                })
            }
            ConnectError::BadRegion(_) => Some(format!("{}, in `--region`, the workflow's `spec.cluster.region`, `AWS_REGION` or the profile", crate::types::names::REGION_RULE)),
            ConnectError::ProfileFiles { .. } => Some("fix the file, or point `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE` at good ones".into()),
            ConnectError::Credentials { source } if !source_is_transient(source) => Some("pass `--profile`, set `AWS_PROFILE`, or set `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; `aws sts get-caller-identity` shows what the AWS CLI finds".into()),
            _ => None,
        }
    }

    /// Whether the error is in what the tool was given (a name, a profile, missing
    /// credentials: exit 2) rather than in the environment answering (exit 3).
    pub fn is_usage(&self) -> bool {
        match self {
            ConnectError::NoRegion
            | ConnectError::BadRegion(_)
            | ConnectError::NoProfile { .. }
            | ConnectError::ProfileFiles { .. }
            | ConnectError::ClusterNotFound { .. } => true,
            ConnectError::Credentials { source } => !source_is_transient(source),
            _ => false,
        }
    }
}

/// A credentials provider that timed out or failed to answer may work on the next try; one
/// that found nothing, or a bad configuration, will not.
fn source_is_transient(e: &aws_credential_types::provider::error::CredentialsError) -> bool {
    use aws_credential_types::provider::error::CredentialsError as C;
    matches!(e, C::ProviderTimedOut(_) | C::ProviderError(_))
}

/// Checks that the profile the tool is asked to use (`--profile`, else `AWS_PROFILE`) is
/// defined, reading the shared files the way the SDK does. The AWS CLI refuses an unknown
/// profile; so does the tool, rather than falling back to whatever credentials the environment
/// holds and acting in another account. `default` may be absent, as for the AWS CLI.
pub async fn check_profile(profile: Option<&str>) -> Result<(), ConnectError> {
    let from_env = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let (name, from) = match (profile, from_env.as_deref()) {
        (Some(p), _) => (p, ProfileFrom::Flag),
        (None, Some(p)) => (p, ProfileFrom::Environment),
        (None, None) => return Ok(()),
    };
    if name == "default" {
        return Ok(());
    }
    // `ProfileFiles` is the name aws-config itself re-exports for the standard files (its
    // replacement lives in a crate the tool does not depend on).
    #[allow(deprecated)]
    let files = aws_config::profile::profile_file::ProfileFiles::default();
    let set = aws_config::profile::load(
        &aws_types::os_shim_internal::Fs::real(),
        &aws_types::os_shim_internal::Env::real(),
        &files,
        None,
    )
    .await
    .map_err(|source| ConnectError::ProfileFiles { source })?;
    if set.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<String> = set.profiles().map(str::to_string).collect();
    known.sort();
    Err(ConnectError::NoProfile {
        profile: name.to_string(),
        from,
        known,
    })
}

/// Loads the AWS configuration the way the AWS CLI does, with explicit overrides first, and
/// makes sure it yields credentials before any call is made: a missing profile or missing
/// credentials are one sentence here, not an SDK error from the first request.
pub async fn load_sdk(
    region: Option<&str>,
    profile: Option<&str>,
) -> Result<SdkConfig, ConnectError> {
    check_profile(profile).await?;
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
        // As with the AWS CLI, a named profile wins over credentials in the environment.
        loader = loader.credentials_provider(
            aws_config::profile::ProfileFileCredentialsProvider::builder()
                .profile_name(p)
                .build(),
        );
    }
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    // Long runs meet throttling; the SDK's standard mode backs off between attempts.
    loader = loader.retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5));
    let sdk = loader.load().await;
    let Some(region) = sdk.region() else {
        return Err(ConnectError::NoRegion);
    };
    // A region that is not a region code would reach the SDK's endpoint rules as a malformed
    // request; it may come from `--region`, the workflow, `AWS_REGION` or the profile.
    if crate::types::names::aws_region(region.as_ref()).is_err() {
        return Err(ConnectError::BadRegion(region.to_string()));
    }
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = sdk.credentials_provider() else {
        return Err(ConnectError::Credentials {
            source: aws_credential_types::provider::error::CredentialsError::not_loaded_no_source(),
        });
    };
    provider
        .provide_credentials()
        .await
        .map_err(|source| ConnectError::Credentials { source })?;
    Ok(sdk)
}

/// All EKS cluster names visible to the credentials, for prompts and hints.
pub async fn list_clusters(eks: &aws_sdk_eks::Client) -> Result<Vec<String>, ConnectError> {
    let mut names = Vec::new();
    let mut pages = eks.list_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| eks_error("ListClusters", e))?;
        names.extend(page.clusters().iter().cloned());
    }
    Ok(names)
}

pub async fn describe_cluster(
    eks: &aws_sdk_eks::Client,
    name: &str,
    region: &str,
) -> Result<ClusterInfo, ConnectError> {
    let out = match eks.describe_cluster().name(name).send().await {
        Ok(o) => o,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            let known = list_clusters(eks).await.unwrap_or_default();
            return Err(ConnectError::ClusterNotFound {
                cluster: name.into(),
                region: region.into(),
                known,
            });
        }
        Err(e) => return Err(eks_error("DescribeCluster", e).into()),
    };
    let c = out
        .cluster()
        .ok_or_else(|| EksError::answer("DescribeCluster", "the response has no cluster"))?;
    let status = c
        .status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default();
    let version_text = c.version().unwrap_or_default();
    let version: Version = version_text
        .parse()
        .map_err(|_| ConnectError::Version(version_text.to_string()))?;
    let endpoint = c.endpoint().unwrap_or_default().to_string();
    let ca_b64 = c
        .certificate_authority()
        .and_then(|ca| ca.data())
        .unwrap_or_default();
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca_b64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    if endpoint.is_empty() || ca_pem.is_empty() {
        return Err(ConnectError::NotReady {
            cluster: name.into(),
            status,
        });
    }
    Ok(ClusterInfo {
        name: name.to_string(),
        region: region.to_string(),
        arn: c.arn().unwrap_or_default().to_string(),
        version,
        platform_version: c.platform_version().map(str::to_string),
        status,
        health_issues: c
            .health()
            .map(|h| {
                h.issues()
                    .iter()
                    .map(|i| {
                        let mut text = format!(
                            "{}: {}",
                            i.code().map(|c| c.as_str()).unwrap_or("Unknown"),
                            i.message().unwrap_or("")
                        );
                        if !i.resource_ids().is_empty() {
                            text.push_str(&format!(" ({})", i.resource_ids().join(", ")));
                        }
                        text
                    })
                    .collect()
            })
            .unwrap_or_default(),
        endpoint,
        ca_pem,
        subnet_ids: c
            .resources_vpc_config()
            .map(|v| v.subnet_ids().to_vec())
            .unwrap_or_default(),
    })
}

/// A live connection: AWS clients, the cluster, and a Kubernetes client bound to it.
pub struct Connection {
    pub sdk: SdkConfig,
    pub eks: aws_sdk_eks::Client,
    /// From the same configuration as `eks`; `AWS_ENDPOINT_URL_EC2` points it elsewhere, as
    /// `AWS_ENDPOINT_URL_EKS` does for EKS.
    pub ec2: aws_sdk_ec2::Client,
    /// From the same configuration; `AWS_ENDPOINT_URL_ROUTE_53` points it elsewhere.
    pub route53: aws_sdk_route53::Client,
    pub cluster: ClusterInfo,
    pub kube: kube::Client,
    _refresher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(r) = &self._refresher {
            r.abort();
        }
    }
}

fn normalize_url(url: &str) -> String {
    let lower = url.trim().trim_end_matches('/').to_ascii_lowercase();
    match lower.strip_prefix("https://") {
        Some(rest) if !rest.contains(':') => format!("https://{rest}:443"),
        _ => lower,
    }
}

fn normalize_pem(pem: &str) -> String {
    pem.split_whitespace().collect()
}

pub async fn connect(target: &Target) -> Result<Connection, ConnectError> {
    let sdk = load_sdk(target.region.as_deref(), target.profile.as_deref()).await?;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or(ConnectError::NoRegion)?;
    let eks = aws_sdk_eks::Client::new(&sdk);
    let cluster = describe_cluster(&eks, &target.cluster, &region).await?;
    let (kube, refresher) = match &target.kube_context {
        None => {
            let provider = sdk.credentials_provider().ok_or_else(|| {
                KubeClientError::Credentials(
                    aws_credential_types::provider::error::CredentialsError::not_loaded_no_source(),
                )
            })?;
            let tokens = TokenSource::new(provider, &region, &cluster.name).await?;
            let refresher = tokens.spawn_refresher(Duration::from_secs(5 * 60));
            (
                kubeclient::build(&cluster.endpoint, &cluster.ca_pem, tokens)?,
                Some(refresher),
            )
        }
        Some(context) => (from_context(context, &cluster).await?, None),
    };
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let route53 = aws_sdk_route53::Client::new(&sdk);
    Ok(Connection {
        sdk,
        eks,
        ec2,
        route53,
        cluster,
        kube,
        _refresher: refresher,
    })
}

/// A connection to another cluster of the same account and region, such as the green cluster
/// of a blue/green run: the same AWS configuration and clients, the cluster's own endpoint and
/// CA from `DescribeCluster`, and its own token (EKS binds a token to one cluster's name).
/// `NotReady` until the cluster is `ACTIVE` (or `UPDATING`) with an endpoint and a certificate.
pub async fn sibling(conn: &Connection, name: &str) -> Result<Connection, ConnectError> {
    let cluster = describe_cluster(&conn.eks, name, &conn.cluster.region).await?;
    // A cluster being created may already show an endpoint that does not answer yet.
    if !matches!(cluster.status.as_str(), "ACTIVE" | "UPDATING") {
        return Err(ConnectError::NotReady {
            cluster: cluster.name,
            status: cluster.status,
        });
    }
    let provider = conn.sdk.credentials_provider().ok_or_else(|| {
        KubeClientError::Credentials(
            aws_credential_types::provider::error::CredentialsError::not_loaded_no_source(),
        )
    })?;
    let tokens = TokenSource::new(provider, &cluster.region, &cluster.name).await?;
    let refresher = tokens.spawn_refresher(Duration::from_secs(5 * 60));
    let kube = kubeclient::build(&cluster.endpoint, &cluster.ca_pem, tokens)?;
    Ok(Connection {
        sdk: conn.sdk.clone(),
        eks: conn.eks.clone(),
        ec2: conn.ec2.clone(),
        route53: conn.route53.clone(),
        cluster,
        kube,
        _refresher: Some(refresher),
    })
}

/// A client from a kubeconfig context, after proving that it points at the EKS cluster.
async fn from_context(context: &str, cluster: &ClusterInfo) -> Result<kube::Client, ConnectError> {
    let err = |source: Cause| ConnectError::Kubeconfig {
        context: context.to_string(),
        source,
    };
    let kubeconfig = kube::config::Kubeconfig::read().map_err(|e| err(e.into()))?;
    let named = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .ok_or_else(|| err("no such context".into()))?;
    let cluster_name = named
        .context
        .as_ref()
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let kc = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| err(format!("its cluster `{cluster_name}` is not defined").into()))?;
    let server = kc.server.clone().unwrap_or_default();
    if normalize_url(&server) != normalize_url(&cluster.endpoint) {
        return Err(ConnectError::WrongEndpoint {
            context: context.into(),
            server,
            cluster: cluster.name.clone(),
            endpoint: cluster.endpoint.clone(),
        });
    }
    let ca = match (&kc.certificate_authority_data, &kc.certificate_authority) {
        (Some(data), _) => base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok()),
        (None, Some(path)) => std::fs::read_to_string(path).ok(),
        (None, None) => None,
    };
    if ca.as_deref().map(normalize_pem) != Some(normalize_pem(&cluster.ca_pem)) {
        return Err(ConnectError::WrongCa {
            context: context.into(),
            cluster: cluster.name.clone(),
        });
    }
    let options = kube::config::KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| err(e.into()))?;
    kube::Client::try_from(config).map_err(|e| err(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_compare_after_normalizing() {
        assert_eq!(
            normalize_url("https://ABC.eks.amazonaws.com/"),
            normalize_url("https://abc.eks.amazonaws.com:443")
        );
        assert_ne!(
            normalize_url("https://127.0.0.1:6443"),
            normalize_url("https://127.0.0.1:6444")
        );
    }
}
