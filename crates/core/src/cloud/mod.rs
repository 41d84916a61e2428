//! Thin clients for the services the tool talks to, and the authentication they share.
//!
//! `token` makes the bearer token Amazon EKS accepts, so the tool can build its Kubernetes
//! client from EKS itself (endpoint and CA from `DescribeCluster`) without a kubeconfig.

pub mod connect;
pub mod ec2;
pub mod eks;
pub mod eks_create;
pub mod green_copy;
pub mod insights;
pub mod jobs;
pub mod karpenter;
pub mod karpenter_budget;
pub mod kubeclient;
pub mod list;
pub mod metrics;
pub mod nodes;
pub mod route53;
pub mod token;
