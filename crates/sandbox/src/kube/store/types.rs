//! The store's vocabulary: resource types, errors, changes and pages.

use std::sync::Arc;

use serde_json::Value;

/// A resource type the API serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// Empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Whether `/status` is a separate subresource (writes to the main resource keep `status`).
    pub status_subresource: bool,
    /// Discovery categories (`kubectl get karpenter`), besides the built-in `all`.
    pub categories: Vec<String>,
    /// A CRD's `additionalPrinterColumns`; empty for built-in kinds (the table printer knows
    /// them) and for CRDs without any (`Name` and `Age`).
    pub columns: Vec<PrinterColumn>,
}

/// One of a CRD's `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// `string`, `integer` or `date`.
    pub ty: String,
    /// 0 shows always, 1 only with `-o wide`.
    pub priority: u8,
    pub json_path: String,
}

impl PrinterColumn {
    pub fn new(name: &str, ty: &str, priority: u8, json_path: &str) -> Self {
        PrinterColumn {
            name: name.into(),
            ty: ty.into(),
            priority,
            json_path: json_path.into(),
        }
    }
}

impl ResourceType {
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            short_names: Vec::new(),
            status_subresource: false,
            categories: Vec::new(),
            columns: Vec::new(),
        }
    }

    pub fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn with_categories(mut self, categories: &[&str]) -> Self {
        self.categories = categories.iter().map(|s| s.to_string()).collect();
        self
    }

    pub fn with_columns(mut self, columns: Vec<PrinterColumn>) -> Self {
        self.columns = columns;
        self
    }

    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as Velero and RBAC name resources.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Why a store operation failed; maps onto Kubernetes `Status` reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: String, name: String },
    #[error("{kind} \"{name}\" already exists")]
    AlreadyExists { kind: String, name: String },
    #[error(
        "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict { kind: String, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
}

impl StoreError {
    /// The HTTP status and `reason` of the Kubernetes `Status` object.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            StoreError::NotFound { .. } => (404, "NotFound"),
            StoreError::AlreadyExists { .. } => (409, "AlreadyExists"),
            StoreError::Conflict { .. } => (409, "Conflict"),
            StoreError::Invalid(_) => (422, "Invalid"),
            StoreError::Gone { .. } => (410, "Expired"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn watch_type(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One change to one object, in global order.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: ChangeKind,
    pub resource: Arc<ResourceType>,
    pub object: Value,
}

impl Change {
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

/// One page of a paginated list.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub items: Vec<Value>,
    /// The store's resource version when the page was read.
    pub resource_version: u64,
    /// `(namespace, name)` of the last item, when more objects follow.
    pub continue_after: Option<(String, String)>,
    /// How many objects follow (only for unfiltered lists).
    pub remaining: Option<usize>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
}
