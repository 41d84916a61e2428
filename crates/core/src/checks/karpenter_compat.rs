//! Karpenter's Kubernetes compatibility: which Kubernetes minor versions a Karpenter release
//! supports, from the table Karpenter publishes (`karpenter_versions.yaml`, embedded), so a
//! pre-flight check can refuse an upgrade that would take the control plane past what the
//! installed Karpenter controller supports.

use std::sync::OnceLock;

use serde::Deserialize;

/// A `major.minor` version.
pub type Minor = (u32, u32);

/// What the table says about one Karpenter release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The release supports Kubernetes `min` through `max`.
    Known { min: Minor, max: Minor },
    /// The release is newer than every row: the newest row's `max` is a guess to show as
    /// information, not a fact to refuse on.
    NewerThanTable { max: Minor },
    /// Not in the table and not newer than its newest row: older than the first row, or a
    /// minor version the table skips.
    OlderThanTable,
}

/// The embedded table failed to load: a defect of the build, which a unit test rules out, but
/// reported to the caller rather than panicking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the built-in Karpenter compatibility table is malformed: {0}")]
pub struct TableError(String);

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub karpenter: Minor,
    /// Set for an `X.Y.Z+` row: it covers patch `Z` and later of `X.Y`.
    pub from_patch: Option<u32>,
    pub min: Minor,
    pub max: Minor,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRow {
    karpenter: String,
    min_kubernetes: String,
    max_kubernetes: String,
}

const TABLE_TEXT: &str = include_str!("karpenter_versions.yaml");

static TABLE: OnceLock<Result<Vec<Row>, TableError>> = OnceLock::new();

/// The embedded table, parsed on first use.
pub fn table() -> Result<&'static [Row], TableError> {
    TABLE
        .get_or_init(|| parse_table(TABLE_TEXT))
        .as_deref()
        .map_err(Clone::clone)
}

/// The Kubernetes versions Karpenter `version` supports.
pub fn support(version: (u32, u32, u32)) -> Result<Support, TableError> {
    Ok(support_in(table()?, version))
}

/// The most specific row wins: `1.0.5+` over `1.0` for 1.0.7.
fn support_in(rows: &[Row], (major, minor, patch): (u32, u32, u32)) -> Support {
    let best = rows
        .iter()
        .filter(|r| r.karpenter == (major, minor) && r.from_patch.is_none_or(|p| p <= patch))
        .max_by_key(|r| r.from_patch);
    if let Some(r) = best {
        return Support::Known {
            min: r.min,
            max: r.max,
        };
    }
    match rows.iter().max_by_key(|r| (r.karpenter, r.from_patch)) {
        Some(newest) if (major, minor) > newest.karpenter => {
            Support::NewerThanTable { max: newest.max }
        }
        _ => Support::OlderThanTable,
    }
}

/// The version in a Karpenter image tag: `1.6.2`, `v1.6.2`, `1.6.2@sha256:…`, or a whole image
/// reference such as `public.ecr.aws/karpenter/controller:1.6.2@sha256:…`.
pub fn parse_version(image_tag: &str) -> Option<(u32, u32, u32)> {
    let tag = image_tag.split('@').next()?;
    // After the digest is gone, a `:` can only separate the repository from the tag (a registry
    // port is followed by a `/`, which then fails to parse as a version).
    let tag = tag.rsplit_once(':').map_or(tag, |(_, t)| t);
    let tag = tag.strip_prefix('v').unwrap_or(tag);
    match numbers(tag).as_deref() {
        Some(&[major, minor, patch]) => Some((major, minor, patch)),
        _ => None,
    }
}

/// The dot-separated numbers of a version; `u32::from_str` alone would take a leading `+`.
fn numbers(text: &str) -> Option<Vec<u32>> {
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
    };
    text.split('.').map(|s| number(s).flatten()).collect()
}

fn parse_table(text: &str) -> Result<Vec<Row>, TableError> {
    let raw: Vec<RawRow> = serde_saphyr::from_str(text).map_err(|e| TableError(e.to_string()))?;
    let mut rows: Vec<Row> = Vec::with_capacity(raw.len());
    for r in &raw {
        let fail = |what: String| TableError(format!("row `{}`: {what}", r.karpenter));
        let minor = |field: &str, text: &str| match numbers(text).as_deref() {
            Some(&[major, minor]) => Ok((major, minor)),
            _ => Err(fail(format!(
                "`{field}` value `{text}` is not a version such as `1.30`"
            ))),
        };
        let (karpenter, from_patch) = match r.karpenter.strip_suffix('+').map(numbers) {
            Some(Some(v)) if v.len() == 3 => ((v[0], v[1]), Some(v[2])),
            Some(_) => return Err(fail("expected `X.Y` or `X.Y.Z+`".into())),
            None => (minor("karpenter", &r.karpenter)?, None),
        };
        let row = Row {
            karpenter,
            from_patch,
            min: minor("minKubernetes", &r.min_kubernetes)?,
            max: minor("maxKubernetes", &r.max_kubernetes)?,
        };
        if row.min > row.max {
            return Err(fail("`minKubernetes` is newer than `maxKubernetes`".into()));
        }
        if rows
            .last()
            .is_some_and(|p| (p.karpenter, p.from_patch) >= (karpenter, from_patch))
        {
            return Err(fail("rows must be in ascending order, each once".into()));
        }
        // A patch row alone would leave that minor's earlier patches out of the table.
        if from_patch.is_some()
            && !rows
                .iter()
                .any(|p| p.karpenter == karpenter && p.from_patch.is_none())
        {
            return Err(fail("an `X.Y.Z+` row needs an `X.Y` row before it".into()));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(TableError("the table has no rows".into()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(min: Minor, max: Minor) -> Support {
        Support::Known { min, max }
    }

    #[test]
    fn embedded_table_loads() {
        let rows = table().expect("the embedded table parses");
        assert_eq!(rows.len(), 33);
        assert_eq!(
            rows[0],
            Row {
                karpenter: (0, 21),
                from_patch: None,
                min: (1, 21),
                max: (1, 24)
            }
        );
    }

    #[test]
    fn boundaries() {
        let s = |v| support(v).expect("table");
        assert_eq!(s((0, 20, 9)), Support::OlderThanTable);
        assert_eq!(s((0, 36, 2)), known((1, 23), (1, 29)));
        assert_eq!(s((0, 37, 0)), known((1, 23), (1, 30)));
        assert_eq!(s((1, 0, 4)), known((1, 25), (1, 30)));
        assert_eq!(s((1, 0, 5)), known((1, 25), (1, 31)));
        assert_eq!(s((1, 0, 11)), known((1, 25), (1, 31)));
        assert_eq!(s((1, 4, 9)), known((1, 25), (1, 32)));
        assert_eq!(s((1, 5, 0)), known((1, 26), (1, 33)));
        assert_eq!(s((1, 6, 0)), known((1, 26), (1, 34)));
        assert_eq!(s((1, 12, 3)), known((1, 26), (1, 35)));
        assert_eq!(s((1, 14, 7)), known((1, 26), (1, 36)));
        assert_eq!(s((1, 15, 0)), Support::NewerThanTable { max: (1, 36) });
        assert_eq!(s((2, 0, 0)), Support::NewerThanTable { max: (1, 36) });
        assert_eq!(s((0, 38, 0)), Support::OlderThanTable, "no such release");
    }

    #[test]
    fn image_tags() {
        assert_eq!(parse_version("1.6.2"), Some((1, 6, 2)));
        assert_eq!(parse_version("v0.37.0"), Some((0, 37, 0)));
        assert_eq!(parse_version("1.6.2@sha256:0123abcd"), Some((1, 6, 2)));
        assert_eq!(
            parse_version("public.ecr.aws/karpenter/controller:1.6.2@sha256:0123"),
            Some((1, 6, 2))
        );
        for bad in [
            "",
            "1.6",
            "1.6.2.1",
            "1.6.x",
            "latest",
            "1.6.+2",
            "1.6.2-rc.1",
            "host:5000/karpenter/controller",
        ] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn malformed_tables_are_errors() {
        let row = |k: &str, min: &str, max: &str| {
            format!(
                "- {{ karpenter: \"{k}\", minKubernetes: \"{min}\", maxKubernetes: \"{max}\" }}\n"
            )
        };
        let err = |text: String| parse_table(&text).expect_err(&text).to_string();
        assert!(
            err(row("1.x", "1.25", "1.30"))
                .contains("row `1.x`: `karpenter` value `1.x` is not a version")
        );
        assert!(err(row("1.0", "1.25", "1.3o")).contains("`maxKubernetes` value `1.3o`"));
        assert!(err(row("1.0", "1.31", "1.30")).contains("newer than"));
        assert!(err(row("1.0.5+", "1.25", "1.31")).contains("needs an `X.Y` row"));
        assert!(
            err(row("1.1", "1.25", "1.31") + &row("1.0", "1.25", "1.30")).contains("ascending")
        );
        assert!(
            err(row("1.1", "1.25", "1.31") + &row("1.1", "1.25", "1.31")).contains("each once")
        );
        assert!(
            err("- { karpenter: \"1.0\", minKubernetes: \"1.25\" }".into()).contains("malformed")
        );
        assert!(err("[]".into()).contains("no rows"));
        assert_eq!(
            parse_table(&(row("1.0", "1.25", "1.30") + &row("1.0.5+", "1.25", "1.31")))
                .map(|r| r.len()),
            Ok(2)
        );
    }
}
