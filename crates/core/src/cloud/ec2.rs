//! The EC2 call the tool makes: `DescribeSubnets`, for the free IPv4 addresses in the subnets
//! EKS names for the cluster and its node groups. Errors keep EC2's code and message.

use serde::Serialize;

/// A failed EC2 call: the operation, EC2's code and message in one line, the SDK error as
/// the cause.
#[derive(Debug, thiserror::Error)]
#[error("EC2 `{operation}` failed: {message}")]
pub struct Ec2Error {
    pub operation: &'static str,
    /// EC2's error code (`InvalidSubnetID.NotFound`, `UnauthorizedOperation`, …).
    pub code: Option<String>,
    pub message: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

fn ec2_error<
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
>(
    operation: &'static str,
    e: aws_sdk_ec2::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Ec2Error {
    let failure = crate::errors::aws("EC2", operation, &e);
    Ec2Error {
        operation,
        code: failure.code,
        message: failure.message,
        source: Box::new(e),
    }
}

/// A subnet as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetInfo {
    pub id: String,
    pub availability_zone: String,
    /// `availableIpAddressCount`.
    pub free_ips: i64,
}

/// Describes the named subnets (all pages). Subnets EC2 does not report are simply absent:
/// the caller compares with what it asked for.
pub async fn subnets(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
) -> Result<Vec<SubnetInfo>, Ec2Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // Filtering by `subnet-id` rather than naming `SubnetIds` lets a deleted subnet be
    // missing from the answer instead of failing the whole call, and allows paging.
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("subnet-id")
        .set_values(Some(ids.to_vec()))
        .build();
    let mut out = Vec::new();
    let mut pages = ec2
        .describe_subnets()
        .filters(filter)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ec2_error("DescribeSubnets", e))?;
        for s in page.subnets() {
            out.push(SubnetInfo {
                id: s.subnet_id().unwrap_or_default().to_string(),
                availability_zone: s.availability_zone().unwrap_or_default().to_string(),
                free_ips: i64::from(s.available_ip_address_count().unwrap_or(0)),
            });
        }
    }
    Ok(out)
}
