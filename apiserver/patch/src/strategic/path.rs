//! Where in the object the strategic merge currently is, for error messages
//! only.
//!
//! Each level of recursion pushes one step onto a stack-allocated linked
//! list; nothing is formatted unless an error is actually reported, so the
//! successful path pays only for a few pointer copies.

use std::fmt::Write as _;

use serde_json::Value;

#[derive(Clone, Copy)]
enum Step<'a> {
    /// An object member: `.spec`.
    Key(&'a str),
    /// A list element by position: `[2]`.
    Index(usize),
    /// A list element by merge key: `[name="nginx"]`.
    Keyed(&'a str, &'a Value),
}

/// A location in the object being patched.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Option<Step<'a>>,
}

impl<'a> Path<'a> {
    /// The top of the object.
    pub(crate) const ROOT: Path<'static> = Path {
        parent: None,
        step: None,
    };

    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        self.child(Step::Key(key))
    }

    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        self.child(Step::Index(index))
    }

    pub(crate) fn keyed(&'a self, key: &'a str, value: &'a Value) -> Path<'a> {
        self.child(Step::Keyed(key, value))
    }

    fn child(&'a self, step: Step<'a>) -> Path<'a> {
        Path {
            parent: Some(self),
            step: Some(step),
        }
    }

    /// Renders the path the way `kubectl explain` users read field paths:
    /// `spec.template.spec.containers[name="app"].image`.
    pub(crate) fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(path) = at {
            if let Some(step) = path.step {
                steps.push(step);
            }
            at = path.parent;
        }
        if steps.is_empty() {
            return "the top level".to_owned();
        }
        let mut out = String::new();
        for step in steps.into_iter().rev() {
            match step {
                Step::Key(key) if is_plain(key) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(key);
                }
                // Keys such as `kubectl.kubernetes.io/restartedAt` would be
                // ambiguous after a dot.
                Step::Key(key) => {
                    let _ = write!(out, "[{key:?}]");
                }
                Step::Index(index) => {
                    let _ = write!(out, "[{index}]");
                }
                Step::Keyed(key, value) => {
                    let _ = write!(out, "[{key}={}]", short(value));
                }
            }
        }
        out
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '$' | '/'))
}

/// A merge-key value as JSON, cut short so that a huge value cannot flood
/// the message.
fn short(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        text
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_field_paths() {
        let name = json!("app");
        let root = Path::ROOT;
        let spec = root.key("spec");
        let containers = spec.key("containers");
        let app = containers.keyed("name", &name);
        let image = app.key("image");
        assert_eq!(image.render(), r#"spec.containers[name="app"].image"#);
        let annotations = root.key("annotations");
        let odd = annotations.key("kubectl.kubernetes.io/restartedAt");
        assert_eq!(
            odd.render(),
            r#"annotations["kubectl.kubernetes.io/restartedAt"]"#
        );
        assert_eq!(containers.index(3).render(), "spec.containers[3]");
        assert_eq!(Path::ROOT.render(), "the top level");
        let long = json!("x".repeat(200));
        assert!(containers.keyed("name", &long).render().ends_with("...]"));
    }
}
