//! URL paths of the Kubernetes API, and the query parameters requests carry.

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/`: the list of root paths.
    Root,
    Version,
    /// `/healthz`, `/livez`, `/readyz`, and their `/<check>` sub-paths.
    Health,
    Metrics,
    OpenApiV3Index,
    /// `/openapi/v3/<api/v1 | apis/G/V>`.
    OpenApiV3(String),
    OpenApiV2,
    /// `/api`: the core group's versions.
    CoreVersions,
    /// `/apis`: every other group.
    Groups,
    /// `/apis/G`.
    Group(String),
    /// `/api/v1` or `/apis/G/V`: the resources of one group-version.
    Resources {
        group: String,
        version: String,
    },
    Resource(ResourcePath),
    NotFound,
}

/// `/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]` or the same under `/apis/G/V`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Decodes `%XX` escapes; `None` for malformed escapes or non-UTF-8 results.
pub fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn parse(path: &str) -> Route {
    let Some(segments) = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect::<Option<Vec<String>>>()
    else {
        return Route::NotFound;
    };
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] => Route::Root,
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["metrics"] => Route::Metrics,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["api"] => Route::CoreVersions,
        ["api", version] => Route::Resources {
            group: String::new(),
            version: version.to_string(),
        },
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::Resources {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::NotFound,
    }
}

/// The part after the group-version. `namespaces/X/...` is ambiguous: it is the namespace `X`
/// itself (with its `status` and `finalize` subresources), or a namespaced resource inside it.
fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let make = |namespace: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: namespace.map(str::to_string),
            plural: plural.to_string(),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        })
    };
    match rest {
        [plural] => make(None, plural, None, None),
        [plural, name] => make(None, plural, Some(name), None),
        ["namespaces", ns, sub @ ("status" | "finalize")] => {
            make(None, "namespaces", Some(ns), Some(sub))
        }
        ["namespaces", ns, plural] => make(Some(ns), plural, None, None),
        [plural, name, sub] => make(None, plural, Some(name), Some(sub)),
        ["namespaces", ns, plural, name] => make(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => make(Some(ns), plural, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

/// Decoded query parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .map(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `key`.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// A boolean parameter: `true` or `1`, as the API server's parameter codec reads them.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(route: Route) -> ResourcePath {
        match route {
            Route::Resource(r) => r,
            other => panic!("not a resource path: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        assert_eq!(parse("/version"), Route::Version);
        assert_eq!(parse("/readyz/ping"), Route::Health);
        assert_eq!(parse("/api/"), Route::CoreVersions);
        assert_eq!(
            parse("/openapi/v3/apis/velero.io/v1"),
            Route::OpenApiV3("apis/velero.io/v1".into())
        );
        let ns = rp(parse("/api/v1/namespaces/shop"));
        assert_eq!(
            (ns.plural.as_str(), ns.name.as_deref()),
            ("namespaces", Some("shop"))
        );
        let st = rp(parse("/api/v1/namespaces/shop/status"));
        assert_eq!(st.subresource.as_deref(), Some("status"));
        assert_eq!(st.namespace, None);
        let pods = rp(parse("/api/v1/namespaces/shop/pods"));
        assert_eq!((pods.namespace.as_deref(), pods.name), (Some("shop"), None));
        let b = rp(parse(
            "/apis/velero.io/v1/namespaces/velero/backups/b1/status",
        ));
        assert_eq!(b.group, "velero.io");
        assert_eq!(b.subresource.as_deref(), Some("status"));
        assert_eq!(parse("/apis/a/b/c/d/e/f/g/h"), Route::NotFound);
        assert_eq!(parse("/api/v1/%zz"), Route::NotFound);
        assert_eq!(parse("/nope"), Route::NotFound);
    }

    #[test]
    fn query() {
        let q = Query::parse(Some("watch=1&labelSelector=a%3Db&limit=&x"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("labelSelector"), Some("a=b"));
        assert_eq!(q.non_empty("limit"), None);
        assert_eq!(q.get("x"), Some(""));
    }
}
