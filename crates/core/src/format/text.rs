//! Values that need interpretation (durations, versions, times) kept as the text people wrote,
//! so that a bad value is reported with its location and a fix rather than as a bare serde
//! error. Each has its own JSON Schema, which editors use to complete and check files.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

text_type!(
    /// A human duration such as `90s`, `30m`, `12h` or `1h30m`.
    DurationText,
    json_schema!({
        "type": "string",
        "description": "A duration: whole numbers with units ms, s, m, h, d, such as `90s`, `30m` or `1h30m`.",
        "pattern": "^\\s*([0-9]+(ms|s|m|h|d))+\\s*$"
    })
);

text_type!(
    /// A Kubernetes `MAJOR.MINOR` version such as `1.33`.
    VersionText,
    json_schema!({
        "type": "string",
        "description": "A Kubernetes version as MAJOR.MINOR, such as \"1.33\". Quote it: an unquoted 1.30 is a number.",
        "pattern": "^[0-9]+\\.[0-9]+$"
    })
);

text_type!(
    /// The version to upgrade to: `next`, `latest`, or a `MAJOR.MINOR` version.
    TargetText,
    json_schema!({
        "type": "string",
        "description": "The version to end at: \"next\" (one minor version up), \"latest\" (the newest version EKS offers) or a MAJOR.MINOR version such as \"1.35\".",
        "pattern": "^(next|latest|[0-9]+\\.[0-9]+)$"
    })
);

text_type!(
    /// A 24-hour wall-clock time, `HH:MM`.
    TimeText,
    json_schema!({
        "type": "string",
        "description": "A 24-hour time as HH:MM, such as \"02:00\".",
        "pattern": "^([01]?[0-9]|2[0-3]):[0-5][0-9]$"
    })
);

text_type!(
    /// A day of the week.
    DayText,
    json_schema!({
        "type": "string",
        "description": "A day of the week: Mon, Tue, Wed, Thu, Fri, Sat or Sun (full names also work).",
        "enum": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                 "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    })
);

text_type!(
    /// The id of an earlier step.
    StepRef,
    json_schema!({
        "type": "string",
        "description": "The id of an earlier step of the workflow."
    })
);

text_type!(
    /// A percentage such as `1%` or `0.5%`.
    PercentText,
    json_schema!({
        "type": "string",
        "description": "A percentage between 0% and 100%, such as `1%` or `0.5%`.",
        "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%\\s*$"
    })
);
