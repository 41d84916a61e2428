//! The items of a backup by `apiVersion/Kind`, checked against the resource list while the
//! tarball streams, in memory proportional to the resource list alone.
//!
//! A large backup holds hundreds of thousands of items. Keeping the tarball's names beside the
//! resource list's, each in a tree of `String`s, cost about 200 bytes per item (a 400,000-item
//! backup peaked at 200 MiB). Here the resource list is the only full set — per kind, its
//! names sorted end to end in one string, with a `seen` flag each — and the tarball contributes
//! only the items the list does not have.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// One kind's names from the resource list, sorted and without duplicates, in one allocation:
/// a string per name would cost a heap block and a pointer pair each, twice the names' bytes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Listed {
    /// Every name, end to end.
    text: String,
    /// Where each name ends in `text` (a resource list's names are far below 4 GiB).
    ends: Vec<u32>,
    seen: Vec<bool>,
    /// The name found last: Velero writes a kind's items in the order the API server lists
    /// them, sorted, so the next item is usually the next name, found without a search (the
    /// binary search, with a cache miss at each step, was 6% of a verification's CPU time).
    last: usize,
}

impl Listed {
    fn new(names: Vec<Box<str>>) -> Self {
        let mut text = String::with_capacity(names.iter().map(|n| n.len()).sum());
        let mut ends = Vec::with_capacity(names.len());
        for n in &names {
            if !push_name(&mut text, &mut ends, n) {
                break;
            }
        }
        Listed::sorted(text, ends)
    }

    /// Names end to end in the order they came, sorted and without duplicates.
    fn sorted(text: String, ends: Vec<u32>) -> Self {
        let span = |i: u32| {
            let i = i as usize;
            let start = i
                .checked_sub(1)
                .and_then(|b| ends.get(b))
                .map_or(0, |e| *e as usize);
            let end = ends.get(i).map_or(start, |e| *e as usize);
            text.get(start..end).unwrap_or_default()
        };
        // Velero writes each kind's names sorted: then there is nothing to reorder or copy.
        let count = u32::try_from(ends.len()).unwrap_or(u32::MAX);
        if (1..count).all(|i| span(i - 1) < span(i)) {
            let seen = vec![false; ends.len()];
            return Listed {
                text,
                ends,
                seen,
                last: 0,
            };
        }
        let mut order: Vec<u32> = (0..count).collect();
        order.sort_unstable_by(|a, b| span(*a).cmp(span(*b)));
        order.dedup_by(|a, b| span(*a) == span(*b));
        let mut sorted = String::with_capacity(text.len());
        let mut sorted_ends = Vec::with_capacity(order.len());
        for i in order {
            push_name(&mut sorted, &mut sorted_ends, span(i));
        }
        let seen = vec![false; sorted_ends.len()];
        Listed {
            text: sorted,
            ends: sorted_ends,
            seen,
            last: 0,
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn name(&self, i: usize) -> &str {
        let start = match i.checked_sub(1) {
            Some(before) => self.ends.get(before).copied().unwrap_or(0),
            None => 0,
        } as usize;
        let end = self.ends.get(i).map_or(start, |e| *e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    fn find(&mut self, name: &str) -> Option<usize> {
        for guess in [self.last + 1, self.last] {
            if guess < self.len() && self.name(guess) == name {
                self.last = guess;
                return Some(guess);
            }
        }
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            match self.name(mid).cmp(name) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => {
                    self.last = mid;
                    return Some(mid);
                }
            }
        }
        None
    }

    /// The names, each with whether the tarball had it.
    fn names(&self) -> impl Iterator<Item = (&str, bool)> {
        (0..self.len()).map(|i| (self.name(i), self.seen.get(i).copied().unwrap_or(false)))
    }
}

/// Appends a name; `false` when the names would pass 4 GiB, beyond any cluster's resource list
/// (the rest is then reported as missing from the list rather than wrapping around).
fn push_name(text: &mut String, ends: &mut Vec<u32>, name: &str) -> bool {
    let Ok(end) = u32::try_from(text.len() + name.len()) else {
        return false;
    };
    text.push_str(name);
    ends.push(end);
    true
}

/// The resource list (`apiVersion/Kind` → names) in its compact form, read straight from
/// its JSON: no string per name, not even for a moment (a 550,000-item list read as boxed
/// strings first took more memory than the rest of a verification).
#[derive(Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Listing(BTreeMap<String, Listed>);

impl Listing {
    /// From each kind's names end to end, with where each ends, in the order they came.
    pub fn from_parts(kinds: BTreeMap<String, (String, Vec<u32>)>) -> Self {
        Listing(
            kinds
                .into_iter()
                .map(|(kind, (text, ends))| (kind, Listed::sorted(text, ends)))
                .collect(),
        )
    }

    /// From names already read one by one (a list that needed the slow path, and tests).
    pub fn from_names(list: BTreeMap<String, Vec<Box<str>>>) -> Self {
        Listing(
            list.into_iter()
                .map(|(kind, names)| (kind, Listed::new(names)))
                .collect(),
        )
    }
}

impl<'de> serde::Deserialize<'de> for Listed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> serde::de::Visitor<'de> for Names {
            type Value = Listed;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of names")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Listed, A::Error> {
                let mut text = String::new();
                let mut ends = Vec::new();
                while seq.next_element_seed(Append(&mut text))?.is_some() {
                    let Ok(end) = u32::try_from(text.len()) else {
                        return Err(serde::de::Error::custom("the names pass 4 GiB"));
                    };
                    ends.push(end);
                }
                Ok(Listed::sorted(text, ends))
            }
        }
        d.deserialize_seq(Names)
    }
}

/// One name, appended to the names before it without a string of its own.
struct Append<'t>(&'t mut String);

impl<'de> serde::de::DeserializeSeed<'de> for Append<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Append<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a name")
    }
    fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<(), E> {
        self.0.push_str(name);
        Ok(())
    }
}

/// Items found so far, checked against the resource list when there is one.
#[derive(Debug, Default)]
pub struct Tally {
    /// `None` when the resource list was missing or unreadable: every item is then an extra.
    listed: Option<BTreeMap<String, Listed>>,
    /// Items in the tarball that the resource list does not name.
    extra: BTreeMap<String, BTreeSet<String>>,
}

impl Tally {
    /// A tally against the resource list (`apiVersion/Kind` → names), or against nothing.
    pub fn new(resource_list: Option<Listing>) -> Self {
        let listed = resource_list.map(|l| l.0);
        Tally {
            listed,
            extra: BTreeMap::new(),
        }
    }

    /// How many distinct items the resource list names.
    pub fn listed_count(&self) -> Option<u64> {
        self.listed
            .as_ref()
            .map(|l| l.values().map(|k| k.len() as u64).sum())
    }

    /// Records an item of the tarball: `name` is `namespace/name`, or `name` for cluster-scoped.
    pub fn found(&mut self, kind: &str, name: &str) {
        if let Some(listed) = self.listed.as_mut().and_then(|l| l.get_mut(kind))
            && let Some(i) = listed.find(name)
        {
            if let Some(flag) = listed.seen.get_mut(i) {
                *flag = true;
            }
            return;
        }
        if !self.extra.get(kind).is_some_and(|s| s.contains(name)) {
            self.extra
                .entry(kind.to_string())
                .or_default()
                .insert(name.to_string());
        }
    }

    /// Every kind either side names, sorted.
    fn kinds(&self) -> BTreeSet<&str> {
        let listed = self.listed.iter().flat_map(|l| l.keys());
        listed
            .chain(self.extra.keys())
            .map(String::as_str)
            .collect()
    }

    /// Per kind, in order: the listed names the tarball lacks, then the tarball's names the
    /// list lacks. Without a resource list there is nothing to compare with.
    pub fn differences(&self) -> Vec<(&str, &str, Difference)> {
        let Some(listed) = &self.listed else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for kind in self.kinds() {
            if let Some(l) = listed.get(kind) {
                for (name, _) in l.names().filter(|(_, seen)| !seen) {
                    out.push((kind, name, Difference::Missing));
                }
            }
            for name in self.extra.get(kind).into_iter().flatten() {
                out.push((kind, name.as_str(), Difference::Extra));
            }
        }
        out
    }

    /// SHA-256 of the tarball's item list: one `apiVersion/Kind namespace/name` line per item,
    /// sorted by kind, then name — the same text whatever the resource list said.
    pub fn digest(&self) -> String {
        let mut sha = Sha256::new();
        for kind in self.kinds() {
            let mut seen = (self.listed.as_ref().and_then(|l| l.get(kind)).into_iter())
                .flat_map(Listed::names)
                .filter_map(|(name, seen)| seen.then_some(name))
                .peekable();
            let mut extra = (self.extra.get(kind).into_iter().flatten())
                .map(String::as_str)
                .peekable();
            // Both are sorted and disjoint: merge them.
            loop {
                let next = match (seen.peek(), extra.peek()) {
                    (Some(a), Some(b)) if a > b => extra.next(),
                    (Some(_), _) => seen.next(),
                    (None, _) => extra.next(),
                };
                let Some(name) = next else { break };
                sha.update(kind.as_bytes());
                sha.update(b" ");
                sha.update(name.as_bytes());
                sha.update(b"\n");
            }
        }
        hex::encode(sha.finalize())
    }
}

/// Which side of the comparison an item is missing from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Named by the resource list, not in the tarball.
    Missing,
    /// In the tarball, not named by the resource list.
    Extra,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<Box<str>>> {
        pairs
            .iter()
            .map(|(k, names)| (k.to_string(), names.iter().map(|n| Box::from(*n)).collect()))
            .collect()
    }

    /// The digest the verifier wrote before this module: a sorted set of every item found.
    fn reference_digest(items: &[(&str, &str)]) -> String {
        let mut set: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (k, n) in items {
            set.entry(k).or_default().insert(n);
        }
        let mut text = String::new();
        for (k, names) in set {
            for n in names {
                text.push_str(&format!("{k} {n}\n"));
            }
        }
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn finds_what_is_missing_and_what_is_extra_and_digests_what_was_found() {
        let mut t = Tally::new(Some(Listing::from_names(list(&[
            ("v1/Secret", &["a/s2", "a/s1", "a/s1"]),
            ("apps/v1/Deployment", &["a/web"]),
        ]))));
        assert_eq!(t.listed_count(), Some(3));
        let found = [
            ("v1/Secret", "a/s1"),
            ("v1/Secret", "a/s0"),
            ("v1/ConfigMap", "a/c"),
            ("v1/Secret", "a/s1"),
            ("v1/Secret", "a/s3"),
        ];
        for (k, n) in found {
            t.found(k, n);
        }
        assert_eq!(
            t.differences(),
            [
                ("apps/v1/Deployment", "a/web", Difference::Missing),
                ("v1/ConfigMap", "a/c", Difference::Extra),
                ("v1/Secret", "a/s2", Difference::Missing),
                ("v1/Secret", "a/s0", Difference::Extra),
                ("v1/Secret", "a/s3", Difference::Extra),
            ]
        );
        assert_eq!(t.digest(), reference_digest(&found));
    }

    #[test]
    fn without_a_resource_list_every_item_counts_and_nothing_is_compared() {
        let mut t = Tally::new(None);
        let found = [
            ("v1/Secret", "b"),
            ("v1/Namespace", "a"),
            ("v1/Secret", "a"),
        ];
        for (k, n) in found {
            t.found(k, n);
        }
        assert_eq!(t.listed_count(), None);
        assert!(t.differences().is_empty());
        assert_eq!(t.digest(), reference_digest(&found));
    }
}
