//! JSON Pointer, RFC 6901: parsing and resolving paths such as
//! `/spec/template/spec/containers/0/image`.

use serde_json::Value;

use crate::value::type_name;

/// A parsed JSON Pointer. Keeps the text as sent for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    raw: String,
    tokens: Vec<String>,
}

/// How a reference token selects an array element.
enum ArrayIndex {
    /// A valid index (which may still be out of bounds).
    At(usize),
    /// `-`: the (nonexistent) element after the last one.
    End,
}

impl Pointer {
    /// Parses a pointer. The empty string is the whole document; anything
    /// else must start with `/`. `~1` stands for `/` and `~0` for `~`; any
    /// other `~` sequence is an error (RFC 6901 §3).
    pub(crate) fn parse(raw: &str) -> Result<Pointer, String> {
        if raw.is_empty() {
            return Ok(Pointer {
                raw: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(format!(
                "path {raw:?} is not a JSON pointer: it must be empty or start with \"/\""
            ));
        };
        let tokens = rest
            .split('/')
            .map(|token| {
                unescape(token).ok_or_else(|| format!(
                "path {raw:?} is not a JSON pointer: \"~\" must be followed by \"0\" or \"1\""
            ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pointer {
            raw: raw.to_owned(),
            tokens,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.raw
    }

    /// True when `self` points strictly inside `other`'s value; a value
    /// cannot be moved into one of its own children (RFC 6902 §4.4).
    pub(crate) fn is_proper_child_of(&self, other: &Pointer) -> bool {
        self.tokens.len() > other.tokens.len() && self.tokens.starts_with(&other.tokens)
    }

    /// The value the pointer refers to.
    pub(crate) fn get<'v>(&self, doc: &'v Value) -> Result<&'v Value, String> {
        let mut current = doc;
        for (depth, token) in self.tokens.iter().enumerate() {
            current = match current {
                Value::Object(map) => map.get(token),
                Value::Array(items) => match self.array_index(token)? {
                    ArrayIndex::At(i) if i < items.len() => items.get(i),
                    ArrayIndex::At(i) => return Err(self.out_of_bounds(i, items.len(), false)),
                    ArrayIndex::End => return Err(self.dash_does_not_exist()),
                },
                _ => None,
            }
            .ok_or_else(|| self.missing(depth))?;
        }
        Ok(current)
    }

    /// Adds `value` at the pointer (RFC 6902 §4.1): replaces the document,
    /// sets an object member, or inserts into an array (shifting later
    /// elements; `-` appends).
    pub(crate) fn add(&self, doc: &mut Value, value: Value) -> Result<(), String> {
        let Some((last, parent_tokens)) = self.tokens.split_last() else {
            *doc = value;
            return Ok(());
        };
        let parent = self.parent_mut(doc, parent_tokens)?;
        match parent {
            Value::Object(map) => {
                map.insert(last.clone(), value);
                Ok(())
            }
            Value::Array(items) => {
                let at = match self.array_index(last)? {
                    ArrayIndex::End => items.len(),
                    ArrayIndex::At(i) if i <= items.len() => i,
                    ArrayIndex::At(i) => return Err(self.out_of_bounds(i, items.len(), true)),
                };
                items.insert(at, value);
                Ok(())
            }
            other => Err(self.not_a_container(other)),
        }
    }

    /// Removes the value at the pointer and returns it (RFC 6902 §4.2).
    pub(crate) fn remove(&self, doc: &mut Value) -> Result<Value, String> {
        let Some((last, parent_tokens)) = self.tokens.split_last() else {
            return Err("the whole document cannot be removed".to_owned());
        };
        let parent = self.parent_mut(doc, parent_tokens)?;
        match parent {
            Value::Object(map) => map
                .remove(last)
                .ok_or_else(|| format!("path {:?} does not exist", self.raw)),
            Value::Array(items) => match self.array_index(last)? {
                ArrayIndex::At(i) if i < items.len() => Ok(items.remove(i)),
                ArrayIndex::At(i) => Err(self.out_of_bounds(i, items.len(), false)),
                ArrayIndex::End => Err(self.dash_does_not_exist()),
            },
            _ => Err(format!("path {:?} does not exist", self.raw)),
        }
    }

    /// Replaces the value at the pointer, which must exist (RFC 6902 §4.3).
    pub(crate) fn replace(&self, doc: &mut Value, value: Value) -> Result<(), String> {
        let slot = self.get_mut(doc)?;
        *slot = value;
        Ok(())
    }

    fn get_mut<'v>(&self, doc: &'v mut Value) -> Result<&'v mut Value, String> {
        let mut current = doc;
        for (depth, token) in self.tokens.iter().enumerate() {
            current = match current {
                Value::Object(map) => map.get_mut(token),
                Value::Array(items) => match self.array_index(token)? {
                    ArrayIndex::At(i) if i < items.len() => items.get_mut(i),
                    ArrayIndex::At(i) => return Err(self.out_of_bounds(i, items.len(), false)),
                    ArrayIndex::End => return Err(self.dash_does_not_exist()),
                },
                _ => None,
            }
            .ok_or_else(|| self.missing(depth))?;
        }
        Ok(current)
    }

    /// The container that will hold the last token; it must already exist
    /// (RFC 6902 §4.1: adding to a nonexistent parent is an error).
    fn parent_mut<'v>(
        &self,
        doc: &'v mut Value,
        parent: &[String],
    ) -> Result<&'v mut Value, String> {
        let mut current = doc;
        for (depth, token) in parent.iter().enumerate() {
            current = match current {
                Value::Object(map) => map.get_mut(token),
                Value::Array(items) => match self.array_index(token)? {
                    ArrayIndex::At(i) => items.get_mut(i),
                    ArrayIndex::End => None,
                },
                _ => None,
            }
            .ok_or_else(|| {
                format!(
                    "path {:?} does not exist (its parent {:?} is missing)",
                    self.raw,
                    self.prefix(depth + 1)
                )
            })?;
        }
        Ok(current)
    }

    /// Parses an array reference token: `-`, `0`, or digits without a
    /// leading zero (RFC 6901 §4). `+1`, `01`, `-1` and `1e3` are rejected.
    fn array_index(&self, token: &str) -> Result<ArrayIndex, String> {
        if token == "-" {
            return Ok(ArrayIndex::End);
        }
        let well_formed = !token.is_empty()
            && token.bytes().all(|b| b.is_ascii_digit())
            && (token == "0" || !token.starts_with('0'));
        match token.parse::<usize>() {
            Ok(i) if well_formed => Ok(ArrayIndex::At(i)),
            _ => Err(format!(
                "path {:?}: {token:?} is not a valid array index",
                self.raw
            )),
        }
    }

    /// Error for a path that does not resolve, naming the first missing part
    /// when that is not the whole path.
    fn missing(&self, depth: usize) -> String {
        if depth + 1 == self.tokens.len() {
            format!("path {:?} does not exist", self.raw)
        } else {
            format!(
                "path {:?} does not exist (no value at {:?})",
                self.raw,
                self.prefix(depth + 1)
            )
        }
    }

    fn out_of_bounds(&self, index: usize, len: usize, inserting: bool) -> String {
        let allowed = if inserting {
            format!("0 to {len}")
        } else if len == 0 {
            "none: the array is empty".to_owned()
        } else {
            format!("0 to {}", len - 1)
        };
        format!(
            "path {:?}: index {index} is out of bounds (the array has {len} element{}; valid indexes are {allowed})",
            self.raw,
            if len == 1 { "" } else { "s" },
        )
    }

    fn dash_does_not_exist(&self) -> String {
        format!(
            "path {:?}: \"-\" refers to the position after the last element, which only \"add\" can use",
            self.raw
        )
    }

    fn not_a_container(&self, parent: &Value) -> String {
        format!(
            "path {:?} does not exist: its parent is {}, not an object or array",
            self.raw,
            type_name(parent)
        )
    }

    /// The pointer text for the first `n` tokens, re-escaped.
    fn prefix(&self, n: usize) -> String {
        self.tokens
            .iter()
            .take(n)
            .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

/// Decodes `~1` and `~0`; `None` for any other use of `~`. Decoding goes left
/// to right in one pass so that `~01` becomes `~1`, not `/` (RFC 6901 §4).
fn unescape(token: &str) -> Option<String> {
    if !token.contains('~') {
        return Some(token.to_owned());
    }
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc6901_examples_resolve() {
        let doc = json!({
            "foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3,
            "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8
        });
        let cases = [
            ("", doc.clone()),
            ("/foo", json!(["bar", "baz"])),
            ("/foo/0", json!("bar")),
            ("/", json!(0)),
            ("/a~1b", json!(1)),
            ("/c%d", json!(2)),
            ("/e^f", json!(3)),
            ("/g|h", json!(4)),
            ("/i\\j", json!(5)),
            ("/k\"l", json!(6)),
            ("/ ", json!(7)),
            ("/m~0n", json!(8)),
        ];
        for (path, want) in cases {
            let p = Pointer::parse(path).expect(path);
            assert_eq!(p.get(&doc).expect(path), &want, "{path}");
        }
    }

    #[test]
    fn bad_pointers_are_rejected() {
        for bad in ["foo", "/a~2", "/a~", "~1"] {
            assert!(Pointer::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(unescape("~01").as_deref(), Some("~1"));
    }

    #[test]
    fn bad_array_indexes_are_rejected() {
        let doc = json!({"a": [1, 2, 3]});
        for bad in [
            "/a/01",
            "/a/-1",
            "/a/+1",
            "/a/1e0",
            "/a/",
            "/a/99999999999999999999999",
        ] {
            let p = Pointer::parse(bad).expect(bad);
            assert!(p.get(&doc).is_err(), "{bad}");
        }
    }

    #[test]
    fn proper_child() {
        let a = Pointer::parse("/a").unwrap();
        let ab = Pointer::parse("/a/b").unwrap();
        let abc = Pointer::parse("/ab").unwrap();
        assert!(ab.is_proper_child_of(&a));
        assert!(!a.is_proper_child_of(&a));
        assert!(!abc.is_proper_child_of(&a));
    }
}
