//! Watches: `GET …?watch=true`, answered with a chunked stream of JSON lines
//! `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{…}}`.
//!
//! Where a watch starts:
//! - `resourceVersion` "" or "0" (or `sendInitialEvents=true`): a synthetic `ADDED` for every
//!   current object, then live changes;
//! - `resourceVersion=N`: every change after N that the store still retains, then live changes;
//!   an N older than the retained history gets HTTP 200 and a single `ERROR` event carrying a
//!   `410 Expired` Status, after which the stream ends — what clients expect before relisting.
//!
//! With selectors, an object that stops matching is sent as `DELETED` and one that starts
//! matching as `ADDED`, as the API server's watch cache does. For a watch from N, which objects
//! matched at N is taken to be those that match now (the store keeps no old snapshots).
//!
//! `allowWatchBookmarks=true` adds a `BOOKMARK` every few seconds and one right before the
//! stream closes at `timeoutSeconds`, so a client can resume from the newest version.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};

use super::list::{parse_rv, selector as parse_selector};
use super::metrics::WatchGuard;
use super::path::Query;
use super::status::{ApiError, ApiResult, status_object};
use super::validate::{invalid, store_err};
use super::{Api, Request, table};
use crate::kube::selector::Selector;
use crate::kube::store::{Change, ChangeKind, ResourceType, StoreError};

/// How often an idle watch gets a bookmark (the API server's is about a minute; shorter helps
/// clients resume closer to the present and costs nothing here).
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// When `timeoutSeconds` is absent: the API server's minimum request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&Event { kind, object }).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn expired(requested: u64, oldest: u64) -> Bytes {
    let status = status_object(
        410,
        "Expired",
        &format!("too old resource version: {requested} ({oldest})"),
        None,
    );
    line("ERROR", &status)
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    response
}

type Key = (String, String);

fn key_of(obj: &Value) -> Key {
    let get = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    (get("/metadata/namespace"), get("/metadata/name"))
}

/// One watch's filter and the state it needs to translate store changes into events.
struct Watcher {
    rt: Arc<ResourceType>,
    namespace: Option<String>,
    selector: Selector,
    /// With selectors: the objects this client currently believes match.
    seen: Option<HashSet<Key>>,
    /// The newest store version considered, sent in bookmarks.
    last_rv: u64,
    /// Set when objects are sent as Tables; the query says what rows include.
    table: Option<Query>,
}

impl Watcher {
    /// The event a change becomes for this client, if any.
    fn event(&mut self, c: &Change) -> Option<Bytes> {
        if c.rv <= self.last_rv {
            return None;
        }
        self.last_rv = c.rv;
        if c.resource.group != self.rt.group || c.resource.plural != self.rt.plural {
            return None;
        }
        if let Some(ns) = &self.namespace
            && c.namespace() != Some(ns.as_str())
        {
            return None;
        }
        let matches = self.selector.matches(&c.object);
        let Some(seen) = &mut self.seen else {
            return matches.then(|| self.object_line(c.kind.watch_type(), &c.object));
        };
        let key = key_of(&c.object);
        let was = seen.contains(&key);
        let kind = match (c.kind, was, matches) {
            (ChangeKind::Deleted, true, _) | (ChangeKind::Deleted, false, true) => {
                seen.remove(&key);
                "DELETED"
            }
            (ChangeKind::Deleted, false, false) | (_, false, false) => return None,
            (_, true, false) => {
                seen.remove(&key);
                "DELETED"
            }
            (_, false, true) => {
                seen.insert(key);
                "ADDED"
            }
            (ChangeKind::Added, true, true) => "ADDED",
            (ChangeKind::Modified, true, true) => "MODIFIED",
        };
        Some(self.object_line(kind, &c.object))
    }

    /// An event about an object: the object itself, or a one-row Table when kubectl asked for
    /// tables (`kubectl get -w`).
    fn object_line(&self, kind: &str, obj: &Value) -> Bytes {
        match &self.table {
            Some(query) => line(kind, &table::single(&self.rt, obj, query)),
            None => line(kind, obj),
        }
    }

    fn bookmark(&self, initial_events_end: bool) -> Bytes {
        let mut metadata = json!({ "resourceVersion": self.last_rv.to_string() });
        if initial_events_end {
            metadata["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
        }
        line(
            "BOOKMARK",
            &json!({ "kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata }),
        )
    }
}

/// What the stream sends before live events.
struct Start {
    initial: Vec<Value>,
    backlog: Vec<Arc<Change>>,
    changes: broadcast::Receiver<Arc<Change>>,
    rv: u64,
}

pub fn serve(
    api: &Arc<Api>,
    req: &Request,
    rt: Arc<ResourceType>,
    ns: Option<&str>,
    name: Option<&str>,
) -> ApiResult {
    let mut selector = parse_selector(&req.query, &rt)?;
    if let Some(n) = name {
        selector = selector.with_name(n);
    }
    let rv = parse_rv(&req.query)?;
    let bookmarks = req.query.flag("allowWatchBookmarks");
    let send_initial = req.query.flag("sendInitialEvents");
    if send_initial {
        if req.query.non_empty("resourceVersionMatch") != Some("NotOlderThan") {
            return Err(invalid(&rt, "", "sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for watch unless resourceVersionMatch is set to NotOlderThan".into()));
        }
        if !bookmarks {
            return Err(invalid(
                &rt,
                "",
                "allowWatchBookmarks",
                "Forbidden: allowWatchBookmarks must be set to true when sendInitialEvents is set"
                    .into(),
            ));
        }
    }
    let timeout = match req.query.non_empty("timeoutSeconds") {
        None => DEFAULT_TIMEOUT,
        Some(t) => match t.parse::<u64>() {
            Ok(0) => DEFAULT_TIMEOUT,
            Ok(s) => Duration::from_secs(s.min(24 * 3600)),
            Err(_) => {
                return Err(ApiError::BadRequest(format!(
                    "invalid timeoutSeconds \"{t}\""
                )));
            }
        },
    };
    let store = &api.world.store;
    let filtered = selector != Selector::default();
    let (tx, rx) = mpsc::channel::<Bytes>(256);

    let start = match rv.filter(|_| !send_initial) {
        Some(n) => match store.watch_from(n) {
            Ok((backlog, changes)) => {
                // Which objects match "at N": approximated by which match now.
                let initial = if filtered {
                    store.list(&rt, ns, &selector).0
                } else {
                    Vec::new()
                };
                Start {
                    initial,
                    backlog,
                    changes,
                    rv: n,
                }
            }
            Err(StoreError::Gone { requested, oldest }) => {
                // A too-old version is a 200 stream with one ERROR event, not an HTTP error.
                let _ = tx.try_send(expired(requested, oldest));
                return Ok(stream_response(rx));
            }
            Err(e) => return Err(store_err(&rt)(e)),
        },
        None => {
            let (initial, list_rv) = store.list(&rt, ns, &selector);
            let (backlog, changes) = store.watch_from(list_rv).map_err(store_err(&rt))?;
            Start {
                initial,
                backlog,
                changes,
                rv: list_rv,
            }
        }
    };
    let synthetic = rv.is_none() || send_initial;
    let mut watcher = Watcher {
        rt,
        namespace: ns.map(str::to_string),
        selector,
        seen: filtered.then(|| start.initial.iter().map(key_of).collect()),
        last_rv: start.rv,
        table: table::wanted(&req.headers).then(|| req.query.clone()),
    };
    let api = api.clone();
    tokio::spawn(async move {
        let _open = WatchGuard::new(&api.metrics.watches);
        run(
            &api,
            &mut watcher,
            start,
            synthetic,
            send_initial,
            bookmarks,
            timeout,
            tx,
        )
        .await;
    });
    Ok(stream_response(rx))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    api: &Api,
    w: &mut Watcher,
    start: Start,
    synthetic: bool,
    send_initial: bool,
    bookmarks: bool,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let Start {
        initial,
        backlog,
        mut changes,
        ..
    } = start;
    if synthetic {
        for obj in &initial {
            if tx.send(w.object_line("ADDED", obj)).await.is_err() {
                return;
            }
        }
    }
    if send_initial && tx.send(w.bookmark(true)).await.is_err() {
        return;
    }
    for c in &backlog {
        if let Some(event) = w.event(c)
            && tx.send(event).await.is_err()
        {
            return;
        }
    }
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.tick().await;
    loop {
        let event = tokio::select! {
            _ = tx.closed() => return,
            _ = &mut deadline => {
                if bookmarks {
                    let _ = tx.send(w.bookmark(false)).await;
                }
                return;
            }
            _ = ticker.tick(), if bookmarks => Some(w.bookmark(false)),
            change = changes.recv() => match change {
                Ok(c) => w.event(&c),
                Err(RecvError::Lagged(_)) => {
                    // This client fell behind the broadcast buffer: catch up from the store's
                    // history, or end the watch as expired when even that is gone.
                    match api.world.store.watch_from(w.last_rv) {
                        Ok((missed, fresh)) => {
                            changes = fresh;
                            for c in &missed {
                                if let Some(event) = w.event(c)
                                    && tx.send(event).await.is_err()
                                {
                                    return;
                                }
                            }
                            None
                        }
                        Err(StoreError::Gone { requested, oldest }) => {
                            let _ = tx.send(expired(requested, oldest)).await;
                            return;
                        }
                        Err(_) => return,
                    }
                }
                Err(RecvError::Closed) => return,
            },
        };
        if let Some(event) = event
            && tx.send(event).await.is_err()
        {
            return;
        }
    }
}
