//! Which keys a request covers, from etcd's `(key, range_end)` pair.
//!
//! etcd encodes three shapes in two byte strings:
//!
//! | `range_end`       | keys                         |
//! |-------------------|------------------------------|
//! | empty             | exactly `key`                |
//! | `"\0"`            | every key `>= key`           |
//! | anything else     | every key in `[key, range_end)` |
//!
//! `etcdctl get --prefix foo` sends `range_end = "fop"` (the prefix with its
//! last byte incremented), which is the third shape.

/// The keys a Range, DeleteRange, Compare or Watch covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    /// Exactly one key.
    One(Vec<u8>),
    /// Every key `>= start` and, when `end` is set, `< end`.
    Span {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
    },
}

impl KeyRange {
    pub fn new(key: &[u8], range_end: &[u8]) -> Self {
        if range_end.is_empty() {
            KeyRange::One(key.to_vec())
        } else if range_end == [0] {
            KeyRange::Span {
                start: key.to_vec(),
                end: None,
            }
        } else {
            KeyRange::Span {
                start: key.to_vec(),
                end: Some(range_end.to_vec()),
            }
        }
    }

    /// The first key of the range (inclusive).
    pub fn start(&self) -> &[u8] {
        match self {
            KeyRange::One(key) => key,
            KeyRange::Span { start, .. } => start,
        }
    }

    /// The end of the range (exclusive), `None` for unbounded. A single key's
    /// end is that key followed by a zero byte, the smallest key after it.
    pub fn end(&self) -> Option<Vec<u8>> {
        match self {
            KeyRange::One(key) => {
                let mut end = key.clone();
                end.push(0);
                Some(end)
            }
            KeyRange::Span { end, .. } => end.clone(),
        }
    }

    /// True when no key can be in the range (`range_end <= key`).
    pub fn is_empty(&self) -> bool {
        match self {
            KeyRange::One(_) => false,
            KeyRange::Span {
                start,
                end: Some(end),
            } => end <= start,
            KeyRange::Span { end: None, .. } => false,
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match self {
            KeyRange::One(k) => k == key,
            KeyRange::Span { start, end } => {
                key >= start.as_slice() && end.as_ref().is_none_or(|end| key < end.as_slice())
            }
        }
    }

    /// True when the two ranges share at least one key.
    pub fn overlaps(&self, other: &KeyRange) -> bool {
        if self.is_empty() || other.is_empty() {
            return false;
        }
        // [a0, a1) and [b0, b1) overlap when a0 < b1 and b0 < a1.
        let before_end =
            |start: &[u8], end: Option<Vec<u8>>| end.is_none_or(|e| start < e.as_slice());
        before_end(self.start(), other.end()) && before_end(other.start(), self.end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// key, range_end, a probe key, and whether the range contains it.
    type Case = (&'static [u8], &'static [u8], &'static [u8], bool);

    #[test]
    fn shapes() {
        let cases: &[Case] = &[
            // key, range_end, probe, contained
            (b"a", b"", b"a", true),
            (b"a", b"", b"ab", false),
            (b"a", b"\0", b"zzz", true),
            (b"b", b"\0", b"a", false),
            (b"foo", b"fop", b"foo/bar", true),
            (b"foo", b"fop", b"fop", false),
            (b"foo", b"fop", b"fo", false),
            (b"b", b"a", b"b", false), // end before start: empty
        ];
        for (key, end, probe, want) in cases {
            let range = KeyRange::new(key, end);
            assert_eq!(range.contains(probe), *want, "{range:?} contains {probe:?}");
        }
        assert!(KeyRange::new(b"b", b"a").is_empty());
    }

    #[test]
    fn overlaps() {
        let r = |k: &[u8], e: &[u8]| KeyRange::new(k, e);
        assert!(r(b"a", b"").overlaps(&r(b"a", b"")));
        assert!(!r(b"a", b"").overlaps(&r(b"b", b"")));
        assert!(r(b"a", b"c").overlaps(&r(b"b", b"")));
        assert!(!r(b"a", b"b").overlaps(&r(b"b", b"")));
        assert!(r(b"a", b"\0").overlaps(&r(b"zz", b"")));
        assert!(!r(b"a", b"\0").overlaps(&r(b"0", b"")));
        assert!(r(b"a", b"\0").overlaps(&r(b"0", b"\0")));
        assert!(!r(b"c", b"a").overlaps(&r(b"b", b"")));
    }
}
