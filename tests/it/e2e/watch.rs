//! Watches of a sandbox's objects by the real `kubectl` (`get --watch --output-watch-events`),
//! one process per resource, merged afterwards into one history by resource version: the
//! sandbox, like etcd, gives every write a version from one counter, deletions included, so
//! the merged order is the order the API server applied the changes in.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::External;
use crate::common::{POLL_TIMEOUT, Running, Timed, poll};

/// `kubectl` watching some resources of a sandbox for as long as it lives.
pub struct Watch {
    watchers: Vec<Running>,
}

/// One change: `ADDED`, `MODIFIED` or `DELETED`, and the object as it was then.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub object: Value,
    pub version: u64,
}

impl Event {
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or("")
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.object["metadata"]["labels"]
            .get(key)
            .and_then(Value::as_str)
    }
}

impl Watch {
    /// Starts one watch per resource (`nodes`, `pods`, ...) across namespaces, and returns once
    /// each has printed its first event (the objects that exist count as `ADDED`).
    pub fn start(sb: &External, resources: &[&str]) -> Watch {
        let watchers: Vec<Running> = resources
            .iter()
            .map(|r| {
                let mut cmd = Command::new("kubectl");
                cmd.args(["get", r, "--all-namespaces", "--watch"])
                    .args(["--output-watch-events", "-o", "json"])
                    .arg(format!(
                        "--cache-dir={}",
                        sb.dir.path().join("kube-cache").display()
                    ));
                for (k, v) in &sb.env {
                    cmd.env(k, v);
                }
                cmd.spawn_timed()
                    .expect("kubectl is installed")
                    .within(Duration::from_secs(900))
            })
            .collect();
        for (w, r) in watchers.iter().zip(resources) {
            poll(&format!("kubectl to list {r}"), POLL_TIMEOUT, || {
                if w.stdout_so_far().contains("\"type\"") {
                    Ok(())
                } else {
                    Err(w.stderr_so_far())
                }
            });
        }
        Watch { watchers }
    }

    /// Every event printed so far, in the order the sandbox applied them.
    pub fn so_far(&self) -> Vec<Event> {
        let outputs: Vec<String> = self.watchers.iter().map(|w| w.stdout_so_far()).collect();
        parse(&outputs)
    }

    /// Waits until the events printed satisfy `done` (the watch lags the API server a little),
    /// then stops the watches and returns every event they printed.
    pub fn stop_when(self, what: &str, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
        poll(what, POLL_TIMEOUT, || {
            let events = self.so_far();
            if done(&events) {
                Ok(())
            } else {
                Err(format!("{} events so far", events.len()))
            }
        });
        self.stop()
    }

    /// Stops the watches; every event they printed, in the order the sandbox applied them.
    pub fn stop(self) -> Vec<Event> {
        let outputs: Vec<String> = self.watchers.into_iter().map(|w| w.kill().stdout).collect();
        parse(&outputs)
    }
}

fn parse(outputs: &[String]) -> Vec<Event> {
    let mut events = Vec::new();
    for out in outputs {
        for value in serde_json::Deserializer::from_str(out).into_iter::<Value>() {
            // The last object may be cut off mid-write; every earlier one is whole.
            let Ok(v) = value else { break };
            let version = v["object"]["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse().ok())
                .unwrap_or(0);
            events.push(Event {
                kind: v["type"].as_str().unwrap_or("").to_string(),
                object: v["object"].clone(),
                version,
            });
        }
    }
    events.sort_by_key(|e| e.version);
    events
}
