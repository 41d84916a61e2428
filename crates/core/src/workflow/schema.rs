//! The JSON Schema of the workflow format, generated from [`super::raw`].

use super::raw::RawWorkflow;

/// The schema as JSON. It is also what the structural check validates against.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::SchemaGenerator::default().into_root_schema_for::<RawWorkflow>();
    schema.insert(
        "$id".into(),
        "https://github.com/eks-upgrade/eks-upgrade/workflows/schema.json".into(),
    );
    schema.to_value()
}

/// The schema as pretty-printed JSON with a trailing newline, as committed in
/// `workflows/schema.json`.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}
