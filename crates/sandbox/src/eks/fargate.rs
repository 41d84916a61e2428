//! ListFargateProfiles: the cluster's Fargate profiles by name, paged as EKS pages them. The
//! profiles come from the scenario (`fargateProfiles`); a cluster made with CreateCluster has
//! none. Creating and deleting profiles is not emulated.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Call;
use super::errors::EksError;
use super::request::page;
use super::state::Eks;

pub fn list_fargate_profiles(eks: &Arc<Eks>, call: &Call) -> Result<Value, EksError> {
    call.cluster(eks)?;
    let names: Vec<String> = eks
        .world
        .scenario
        .spec
        .fargate_profiles
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    let (names, next) = page(names, call.query.max_results()?, call.query.next_token())?;
    Ok(json!({ "fargateProfileNames": names, "nextToken": next }))
}
