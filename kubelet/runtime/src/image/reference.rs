//! Image references, parsed and normalised the way Docker does it
//! (`busybox` → `docker.io/library/busybox:latest`).
//!
//! Grammar (from the distribution project's reference package):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [domain "/"] path-component ["/" path-component]*
//! domain         := host [":" port]     host: DNS labels separated by ".", or "[ipv6]"
//! path-component := alnum [separator alnum]*   alnum: [a-z0-9]+   separator: [_.] | "__" | "-"+
//! tag            := [\w][\w.-]{0,127}
//! ```
//!
//! The first component is a registry only if it looks like one (it contains
//! a `.` or a `:`, or is `localhost`); otherwise the image is on Docker Hub,
//! and single-component Hub names live under `library/`. A reference with
//! neither tag nor digest gets the tag `latest`; one with only a digest
//! stays digest-only, since adding a tag would change what it means.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

/// Docker Hub's canonical domain in normalised names.
pub const DOCKER_HUB: &str = "docker.io";
/// The tag given to references that name neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("image reference {input:?}: {source}")]
    Digest { input: String, source: DigestError },
    #[error(
        "image reference {input:?}: invalid tag {tag:?} (a tag is 1-128 of [A-Za-z0-9_.-], not starting with . or -)"
    )]
    Tag { input: String, tag: String },
    #[error("image reference {input:?}: invalid registry host {domain:?}")]
    Domain { input: String, domain: String },
    #[error("image reference {input:?}: repository name must be lowercase")]
    Uppercase { input: String },
    #[error(
        "image reference {input:?}: invalid repository path component {component:?} (lowercase letters and digits, separated by '.', '_', '__' or '-')"
    )]
    Component { input: String, component: String },
    #[error("image reference {input:?}: repository name longer than {NAME_MAX} characters")]
    TooLong { input: String },
}

/// A normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises `input` (see the module docs).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse().map_err(|source| ReferenceError::Digest {
                    input: input.to_owned(),
                    source,
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // A tag is after the last ':' that comes after the last '/': the
        // ':' of a registry port is always followed by a '/'.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&name_tag[..i], Some(&name_tag[i + 1..]))
            }
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if let Some(tag) = tag
            && !valid_tag(tag)
        {
            return Err(ReferenceError::Tag {
                input: input.to_owned(),
                tag: tag.to_owned(),
            });
        }

        let (mut domain, mut path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase()) =>
            {
                (first.to_owned(), rest.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        if domain == "index.docker.io" {
            domain = DOCKER_HUB.to_owned();
        }
        if domain == DOCKER_HUB && !path.contains('/') {
            path = format!("library/{path}");
        }
        if !valid_domain(&domain) {
            return Err(ReferenceError::Domain {
                input: input.to_owned(),
                domain,
            });
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: input.to_owned(),
            });
        }
        if let Some(bad) = path.split('/').find(|c| !valid_component(c)) {
            return Err(ReferenceError::Component {
                input: input.to_owned(),
                component: bad.to_owned(),
            });
        }
        if domain.len() + 1 + path.len() > NAME_MAX {
            return Err(ReferenceError::TooLong {
                input: input.to_owned(),
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry host (and port), e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `name:tag`, the key under which a tagged image is listed, if tagged.
    pub fn tagged_name(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// `name@digest` for a given manifest digest (CRI's "repo digest").
    pub fn with_digest(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.name())
    }

    /// The same repository with another tag and no digest.
    pub fn retag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(s)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.domain, self.path)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    matches!(chars.next(), Some(c) if is_word(c))
        && tag.len() <= 128
        && chars.all(|c| is_word(c) || c == '.' || c == '-')
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        // [ipv6]:port; the address itself is checked loosely (hex and ':').
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => return !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()),
                None => return false,
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
    {
        return false;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[a-z0-9]+ ( ( [_.] | "__" | "-"+ ) [a-z0-9]+ )*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A run of separator characters between two alphanumerics.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalisation_table() {
        let cases: &[(&str, &str)] = &[
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("library/busybox", "docker.io/library/busybox:latest"),
            ("docker.io/busybox", "docker.io/library/busybox:latest"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
            ),
            ("skiff/httpd", "docker.io/skiff/httpd:latest"),
            ("localhost/a", "localhost/a:latest"),
            ("localhost:5000/a/b:t", "localhost:5000/a/b:t"),
            ("127.0.0.1:5000/x:v1.0-rc_1", "127.0.0.1:5000/x:v1.0-rc_1"),
            ("[::1]:5000/x", "[::1]:5000/x:latest"),
            ("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5"),
            ("Registry/x", "Registry/x:latest"),
            ("a__b/c-d--e/f.g", "docker.io/a__b/c-d--e/f.g:latest"),
            // A lone "localhost:5000" is the repository "localhost" with tag 5000, as in Docker.
            ("localhost:5000", "docker.io/library/localhost:5000"),
        ];
        for (input, want) in cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *want, "{input}");
        }
    }

    #[test]
    fn digests_and_tags() {
        let r = Reference::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag(), None, "a digest-only reference gets no default tag");
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!(r.tagged_name(), None);

        let r = Reference::parse(&format!("localhost:5000/a/b:t@{D}")).unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.tag(), Some("t"));
        assert_eq!(r.name(), "localhost:5000/a/b");
        assert_eq!(
            r.tagged_name().as_deref(),
            Some("localhost:5000/a/b:t"),
            "the tagged name drops the digest"
        );
        assert_eq!(
            r.with_digest(r.digest().unwrap()),
            format!("localhost:5000/a/b@{D}")
        );
    }

    #[test]
    fn error_table() {
        let long = format!("x/{}", "a".repeat(300));
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty image reference"),
            (":tag".into(), "empty image reference"),
            ("busybox@sha256:abc".into(), "not 64 lowercase hex digits"),
            ("busybox@md5:abc".into(), "unsupported algorithm"),
            ("busybox:.bad".into(), "invalid tag \".bad\""),
            ("busybox:".into(), "invalid tag \"\""),
            (format!("busybox:{}", "t".repeat(129)), "invalid tag"),
            ("docker.io/BusyBox".into(), "must be lowercase"),
            ("a..b/c".into(), "invalid registry host \"a..b\""),
            ("host:port/x".into(), "invalid registry host \"host:port\""),
            ("-bad.io/x".into(), "invalid registry host"),
            ("busybox/".into(), "invalid repository path component \"\""),
            ("a/-b".into(), "invalid repository path component \"-b\""),
            (
                "a/b_-c".into(),
                "invalid repository path component \"b_-c\"",
            ),
            ("a/b...c".into(), "invalid repository path component"),
            (long, "longer than 255"),
        ];
        for (input, want) in cases {
            let err = Reference::parse(&input).expect_err(&input).to_string();
            assert!(err.contains(want), "{input:?}: got {err:?}, want {want:?}");
        }
    }
}
