//! Pairs each item with its `-preferredversion` copy. Velero writes an item under two paths, one
//! right after the other, with the same bytes. Holding only the copy just read settles nearly
//! every pair without storing anything, and a copy byte-for-byte identical to a twin already
//! checked needs no second JSON parse: half the parsing of a verification.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

/// Which of Velero's two copies of an item an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Unversioned,
    Preferred,
}

/// What meeting a copy found.
#[derive(Debug, PartialEq, Eq)]
pub enum Pairing {
    /// The copy just before is its twin, with the same bytes, and checked clean; the verdict
    /// (the item's `apiVersion/Kind`) holds for this copy too.
    Identical(String),
    /// The copy just before is its twin, and the bytes differ.
    Differ,
    /// The copy just before is its twin, with the same bytes, but it was not clean: check this
    /// one too, so that each path gets its own findings.
    Matched,
    /// No twin just before: check this copy and [`Twins::hold`] it.
    First,
}

/// What is wrong with a pair of copies.
#[derive(Debug, PartialEq, Eq)]
pub enum Unpaired {
    Differ,
    NoPreferred,
    NoUnversioned,
}

impl Unpaired {
    pub fn message(&self) -> &'static str {
        match self {
            Unpaired::Differ => "the item and its `-preferredversion` copy differ",
            Unpaired::NoPreferred => "the item has no `-preferredversion` copy",
            Unpaired::NoUnversioned => "a `-preferredversion` item has no unversioned copy",
        }
    }
}

struct Held {
    twin: String,
    side: Side,
    content: Bytes,
    verdict: Option<String>,
}

#[derive(Default)]
pub struct Twins {
    held: Option<Held>,
    /// Copies whose twin was not the next entry, by CRC-32: matched at the end.
    unversioned: HashMap<String, u32>,
    preferred: HashMap<String, u32>,
}

impl Twins {
    /// Meets a copy against the one held from the entry before.
    pub fn meet(&mut self, twin: &str, side: Side, content: &[u8]) -> Pairing {
        match self.held.take() {
            Some(h) if h.twin == twin && h.side != side => {
                let same = h.content == content;
                let verdict = h.verdict;
                match (same, verdict) {
                    (true, Some(kind)) => Pairing::Identical(kind),
                    (true, None) => Pairing::Matched,
                    (false, _) => Pairing::Differ,
                }
            }
            Some(other) => {
                self.set_aside(other);
                Pairing::First
            }
            None => Pairing::First,
        }
    }

    /// Holds a copy met [`Pairing::First`], with its verdict (`Some(apiVersion/Kind)` when it
    /// checked clean), until the next entry. The bytes are shared, not copied: usually a slice
    /// of the inflated chunk they arrived in.
    pub fn hold(&mut self, twin: String, side: Side, content: Bytes, verdict: Option<String>) {
        self.held = Some(Held {
            twin,
            side,
            content,
            verdict,
        });
    }

    fn set_aside(&mut self, h: Held) {
        let crc = crc32fast::hash(&h.content);
        match h.side {
            Side::Unversioned => self.unversioned.insert(h.twin, crc),
            Side::Preferred => self.preferred.insert(h.twin, crc),
        };
    }

    /// The pairs that never met as neighbours, matched now, sorted by item.
    pub fn finish(mut self) -> BTreeMap<String, Unpaired> {
        if let Some(h) = self.held.take() {
            self.set_aside(h);
        }
        let mut out = BTreeMap::new();
        for (twin, crc) in &self.unversioned {
            match self.preferred.get(twin) {
                Some(p) if p == crc => {}
                Some(_) => {
                    out.insert(twin.clone(), Unpaired::Differ);
                }
                None => {
                    out.insert(twin.clone(), Unpaired::NoPreferred);
                }
            }
        }
        for twin in self.preferred.keys() {
            if !self.unversioned.contains_key(twin) {
                out.insert(twin.clone(), Unpaired::NoUnversioned);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(t: &mut Twins, twin: &str, side: Side, bytes: &[u8], verdict: Option<&str>) {
        assert_eq!(t.meet(twin, side, bytes), Pairing::First);
        t.hold(
            twin.into(),
            side,
            Bytes::copy_from_slice(bytes),
            verdict.map(str::to_string),
        );
    }

    #[test]
    fn neighbours_pair_without_being_stored_and_strangers_are_matched_at_the_end() {
        let mut t = Twins::default();
        // Velero's order: the preferred copy, then the unversioned one.
        first(&mut t, "s/a/x", Side::Preferred, b"{1}", Some("v1/Secret"));
        assert_eq!(
            t.meet("s/a/x", Side::Unversioned, b"{1}"),
            Pairing::Identical("v1/Secret".into())
        );
        first(&mut t, "s/a/y", Side::Preferred, b"{2}", None);
        assert_eq!(t.meet("s/a/y", Side::Unversioned, b"{2}"), Pairing::Matched);
        first(
            &mut t,
            "s/a/z",
            Side::Unversioned,
            b"{3}",
            Some("v1/Secret"),
        );
        assert_eq!(t.meet("s/a/z", Side::Preferred, b"{4}"), Pairing::Differ);
        // Apart: matched by CRC at the end.
        first(
            &mut t,
            "s/a/p",
            Side::Unversioned,
            b"{5}",
            Some("v1/Secret"),
        );
        first(
            &mut t,
            "s/a/q",
            Side::Unversioned,
            b"{6}",
            Some("v1/Secret"),
        );
        first(&mut t, "s/a/p", Side::Preferred, b"{5}", Some("v1/Secret"));
        first(&mut t, "s/a/q", Side::Preferred, b"{7}", Some("v1/Secret"));
        first(&mut t, "s/a/lonely", Side::Unversioned, b"{8}", None);
        first(&mut t, "s/a/orphan", Side::Preferred, b"{9}", None);
        // The same side twice is not a pair.
        first(&mut t, "s/a/twice", Side::Unversioned, b"{0}", None);
        first(&mut t, "s/a/twice", Side::Unversioned, b"{0}", None);
        let rest = t.finish();
        assert_eq!(
            rest.into_iter().collect::<Vec<_>>(),
            [
                ("s/a/lonely".to_string(), Unpaired::NoPreferred),
                ("s/a/orphan".to_string(), Unpaired::NoUnversioned),
                ("s/a/q".to_string(), Unpaired::Differ),
                ("s/a/twice".to_string(), Unpaired::NoPreferred),
            ]
        );
    }
}
