//! A cluster's configuration as DescribeCluster reports it: for the scenario's cluster from the
//! scenario, for a created cluster from its CreateCluster request (what the caller asked for,
//! with EKS's defaults for what they left out).

use serde_json::{Map, Value, json};

use super::errors::EksError;
use super::request::body_str;
use crate::scenario::Scenario;
use crate::sim::names;

/// The members of `Cluster` a CreateCluster request decides.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub role_arn: String,
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub cluster_security_group_id: String,
    pub endpoint_public_access: bool,
    pub endpoint_private_access: bool,
    pub public_access_cidrs: Vec<String>,
    pub service_ipv4_cidr: String,
    pub ip_family: String,
    /// `logging`, in wire form.
    pub logging: Value,
    pub authentication_mode: String,
    pub support_type: String,
    pub tags: Map<String, Value>,
    /// `encryptionConfig`, in wire form, when asked for.
    pub encryption: Option<Value>,
}

fn all_logs_off() -> Value {
    json!({
        "clusterLogging": [{
            "types": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
            "enabled": false,
        }],
    })
}

impl ClusterConfig {
    /// The scenario's cluster's configuration.
    pub fn from_scenario(scenario: &Scenario) -> ClusterConfig {
        let spec = &scenario.spec;
        let name = &spec.cluster.name;
        let suffix = names::suffix(name, 8);
        let mut tags = Map::new();
        tags.insert(
            "eks-upgrade/sandbox".into(),
            json!(scenario.metadata.name.clone()),
        );
        ClusterConfig {
            role_arn: format!("arn:aws:iam::{}:role/{name}-cluster-role", spec.account),
            subnet_ids: scenario.cluster_subnet_ids(),
            security_group_ids: vec![format!("sg-0{suffix}01")],
            cluster_security_group_id: format!("sg-0{suffix}c1"),
            endpoint_public_access: true,
            endpoint_private_access: true,
            public_access_cidrs: vec!["0.0.0.0/0".into()],
            service_ipv4_cidr: "172.20.0.0/16".into(),
            ip_family: "ipv4".into(),
            logging: all_logs_off(),
            authentication_mode: "API_AND_CONFIG_MAP".into(),
            support_type: spec.cluster.support_type.clone(),
            tags,
            encryption: None,
        }
    }

    /// A created cluster's configuration from its CreateCluster body; `subnet_ids` are checked
    /// already. EKS's defaults fill what the body leaves out.
    pub fn from_request(
        name: &str,
        body: &Value,
        subnet_ids: Vec<String>,
    ) -> Result<ClusterConfig, EksError> {
        let bad = |m: String| EksError::invalid_parameter(m).cluster(name);
        let vpc = body.get("resourcesVpcConfig").unwrap_or(&Value::Null);
        let strings = |v: &Value, key: &str| -> Result<Option<Vec<String>>, EksError> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| bad(format!("{key} must be a list of strings")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                Some(_) => Err(bad(format!("{key} must be a list of strings"))),
            }
        };
        let flag = |key: &str, default: bool| -> Result<bool, EksError> {
            match vpc.get(key) {
                None | Some(Value::Null) => Ok(default),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(bad(format!("{key} must be a boolean"))),
            }
        };
        let security_group_ids = strings(vpc, "securityGroupIds")?.unwrap_or_default();
        let public = flag("endpointPublicAccess", true)?;
        let private = flag("endpointPrivateAccess", false)?;
        if !public && !private {
            return Err(bad(
                "Either endpointPublicAccess or endpointPrivateAccess must be enabled".into(),
            ));
        }
        let network = body.get("kubernetesNetworkConfig").unwrap_or(&Value::Null);
        let ip_family = body_str(network, "ipFamily")?.unwrap_or("ipv4").to_string();
        if !matches!(ip_family.as_str(), "ipv4" | "ipv6") {
            return Err(bad(format!("Invalid ipFamily: {ip_family}")));
        }
        let access = body.get("accessConfig").unwrap_or(&Value::Null);
        let authentication_mode = body_str(access, "authenticationMode")?
            .unwrap_or("API_AND_CONFIG_MAP")
            .to_string();
        if !matches!(
            authentication_mode.as_str(),
            "API" | "API_AND_CONFIG_MAP" | "CONFIG_MAP"
        ) {
            return Err(bad(format!(
                "Invalid authenticationMode: {authentication_mode}"
            )));
        }
        let policy = body.get("upgradePolicy").unwrap_or(&Value::Null);
        let support_type = body_str(policy, "supportType")?
            .unwrap_or("EXTENDED")
            .to_string();
        if !matches!(support_type.as_str(), "STANDARD" | "EXTENDED") {
            return Err(bad(format!("Invalid supportType: {support_type}")));
        }
        let tags = match body.get("tags") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(bad("tags must be a map of strings".into())),
        };
        let suffix = names::suffix(name, 8);
        Ok(ClusterConfig {
            role_arn: body_str(body, "roleArn")?.unwrap_or_default().to_string(),
            subnet_ids,
            security_group_ids,
            cluster_security_group_id: format!("sg-0{suffix}c1"),
            endpoint_public_access: public,
            endpoint_private_access: private,
            public_access_cidrs: strings(vpc, "publicAccessCidrs")?
                .unwrap_or_else(|| vec!["0.0.0.0/0".into()]),
            service_ipv4_cidr: body_str(network, "serviceIpv4Cidr")?
                .unwrap_or("172.20.0.0/16")
                .to_string(),
            ip_family,
            logging: body
                .get("logging")
                .filter(|l| !l.is_null())
                .cloned()
                .unwrap_or_else(all_logs_off),
            authentication_mode,
            support_type,
            tags,
            encryption: body
                .get("encryptionConfig")
                .filter(|e| !e.is_null())
                .cloned(),
        })
    }
}
