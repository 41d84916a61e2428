//! Listing in pages, so that a check on a cluster with tens of thousands of objects holds one
//! page in memory at a time instead of the whole collection.

use std::fmt::Debug;

use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

/// Objects per page: the size `kubectl` uses for its own chunked lists.
pub const PAGE: u32 = 500;

/// Calls `visit` with every object matching `params`, a page at a time. Returns how many were
/// seen.
pub async fn each<K>(
    api: &Api<K>,
    params: ListParams,
    mut visit: impl FnMut(K),
) -> Result<usize, kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut params = params.limit(PAGE);
    let mut seen = 0;
    loop {
        let page = api.list(&params).await?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        for item in page.items {
            seen += 1;
            visit(item);
        }
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(seen),
        }
    }
}

/// Whether an error means the resource type is not served here (an API this cluster lacks).
pub fn not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
