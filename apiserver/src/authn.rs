//! Authentication: turning a request's credentials into a [`UserInfo`].
//!
//! Two methods, as in Kubernetes: a client certificate already verified by
//! the TLS layer (CN is the user name, each O a group), and a bearer token
//! looked up in a static token file (`--token-auth-file`, CSV lines
//! `token,user,uid,"group1,group2"`). A request with neither is anonymous
//! and the caller answers 401.
//!
//! Tokens are secrets: they are compared in constant time, never logged and
//! never printed by `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::RngCore as _;

/// Group every authenticated user belongs to.
pub const GROUP_AUTHENTICATED: &str = "system:authenticated";
/// Group whose members may do anything (Kubernetes' superuser group).
pub const GROUP_MASTERS: &str = "system:masters";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// Whether the user is a cluster superuser (member of `system:masters`).
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == GROUP_MASTERS)
    }

    /// A user with `groups` plus `system:authenticated` (added once).
    fn authenticated(name: String, uid: String, mut groups: Vec<String>) -> UserInfo {
        if !groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
            groups.push(GROUP_AUTHENTICATED.to_string());
        }
        UserInfo { name, uid, groups }
    }
}

/// Errors loading or writing a token file; messages name the file and line.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("cannot read token file {} (--token-auth-file): {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token file {} (--token-auth-file), line {line}: {reason}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot write token file {}: {reason}", path.display())]
    Write { path: PathBuf, reason: String },
}

/// One line of a token file.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub token: String,
    pub user: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("token", &"<redacted>")
            .field("user", &self.user)
            .field("uid", &self.uid)
            .field("groups", &self.groups)
            .finish()
    }
}

/// The static token file: bearer token → user.
#[derive(Clone, Default)]
pub struct TokenFile {
    entries: Vec<TokenEntry>,
}

impl fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFile")
            .field("tokens", &self.entries.len())
            .finish()
    }
}

impl TokenFile {
    /// Reads and parses a Kubernetes static token file.
    pub fn load(path: &Path) -> Result<TokenFile, AuthnError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthnError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses token file contents; `path` is only used in messages.
    ///
    /// Each non-blank line not starting with `#` is `token,user,uid[,groups]`
    /// where groups is a comma-separated list, usually quoted. A later line
    /// with the same token replaces an earlier one, as in Kubernetes.
    pub fn parse(text: &str, path: &Path) -> Result<TokenFile, AuthnError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut entries: Vec<TokenEntry> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let error = |reason: String| AuthnError::Parse {
                path: path.to_path_buf(),
                line,
                reason,
            };
            let fields = split_csv_line(raw).map_err(|r| error(r.to_string()))?;
            let [token, user, uid, rest @ ..] = fields.as_slice() else {
                return Err(error(format!(
                    "expected at least 3 columns (token,user,uid[,groups]), found {}",
                    fields.len()
                )));
            };
            let token = token.trim();
            if token.is_empty() {
                return Err(error("the token is empty".into()));
            }
            let user = user.trim();
            if user.is_empty() {
                return Err(error("the user name is empty".into()));
            }
            let groups = rest
                .first()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let entry = TokenEntry {
                token: token.to_string(),
                user: user.to_string(),
                uid: uid.trim().to_string(),
                groups,
            };
            if let Some(existing) = entries.iter_mut().find(|e| e.token == entry.token) {
                // The token itself is a secret: name the line only.
                tracing::warn!(
                    file = %path.display(),
                    line,
                    "duplicate token in token file; the later line wins"
                );
                *existing = entry;
            } else {
                entries.push(entry);
            }
        }
        Ok(TokenFile { entries })
    }

    /// A token file with the given entries (e.g. the admin token `skiff up`
    /// just generated).
    pub fn from_entries(entries: Vec<TokenEntry>) -> TokenFile {
        TokenFile { entries }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The user `token` belongs to. Every entry is compared, each in
    /// constant time, so the time taken reveals neither which entry matched
    /// nor how much of a token was right.
    pub fn user(&self, token: &str) -> Option<UserInfo> {
        let mut found = None;
        for entry in &self.entries {
            if constant_time_eq(token.as_bytes(), entry.token.as_bytes()) {
                found = Some(entry);
            }
        }
        found.map(|e| UserInfo::authenticated(e.user.clone(), e.uid.clone(), e.groups.clone()))
    }
}

/// Compares `presented` with `secret` without data-dependent early exits.
/// The loop runs over the presented value, so its duration depends on what
/// the client sent, not on the secret.
fn constant_time_eq(presented: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != secret.len());
    for (i, byte) in presented.iter().enumerate() {
        diff |= byte ^ secret.get(i).copied().unwrap_or(0);
    }
    // Keep the optimiser from turning the loop back into a short-circuit.
    std::hint::black_box(diff) == 0
}

/// Splits one CSV line (RFC 4180 quoting, as Go's encoding/csv accepts it
/// with leading spaces trimmed): fields may be quoted, `""` inside quotes is
/// a quote, and quoted fields may contain commas.
fn split_csv_line(line: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field"),
                }
            }
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err("unexpected character after closing quote"),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => return Err("quote in the middle of an unquoted field"),
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

/// Quotes a CSV field when needed.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"']) || value.starts_with([' ', '\t', '#']) || value.ends_with(' ') {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

/// Writes `entries` as a token file readable by [`TokenFile::load`] and by
/// Kubernetes, mode 0600, atomically.
pub fn write_token_file(path: &Path, entries: &[TokenEntry]) -> Result<(), AuthnError> {
    let error = |reason: String| AuthnError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let mut text = String::new();
    for entry in entries {
        let fields = [entry.token.as_str(), &entry.user, &entry.uid];
        let has_newline = fields
            .iter()
            .copied()
            .chain(entry.groups.iter().map(String::as_str))
            .any(|f| f.contains(['\n', '\r']));
        if has_newline {
            return Err(error(format!(
                "entry for user {:?} contains a line break",
                entry.user
            )));
        }
        if entry.token.trim().is_empty() || entry.user.trim().is_empty() {
            return Err(error("token and user name must not be empty".into()));
        }
        if entry.groups.iter().any(|g| g.contains(',')) {
            return Err(error(format!(
                "a group of user {:?} contains a comma, which the file format cannot express",
                entry.user
            )));
        }
        let mut line = fields.map(csv_field).join(",");
        if !entry.groups.is_empty() {
            line.push(',');
            line.push_str(&csv_field(&entry.groups.join(",")));
        }
        text.push_str(&line);
        text.push('\n');
    }
    crate::pki::write_atomic(path, text.as_bytes(), crate::pki::PRIVATE_FILE_MODE)
        .map_err(|e| error(e.to_string()))
}

/// The user named by a client certificate: CN is the name, each O a group.
/// Only call this with a certificate the TLS layer has verified.
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.trim();
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    Some(UserInfo::authenticated(
        name.to_string(),
        String::new(),
        groups,
    ))
}

/// The token of an `Authorization: Bearer <token>` header value; the scheme
/// is case-insensitive and surrounding whitespace is ignored.
pub fn bearer_token(header_value: &str) -> Option<&str> {
    let (scheme, rest) = header_value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return None;
    }
    Some(token)
}

/// A new random token: 32 bytes from a CSPRNG, URL-safe base64 without
/// padding (43 characters).
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    fn parse(text: &str) -> Result<TokenFile, AuthnError> {
        TokenFile::parse(text, Path::new("/etc/skiff/tokens.csv"))
    }

    #[test]
    fn token_file_table() {
        struct Case {
            name: &'static str,
            text: &'static str,
            token: &'static str,
            want: Option<(&'static str, &'static str, &'static [&'static str])>,
        }
        let cases = [
            Case {
                name: "three columns",
                text: "t1,alice,u1\n",
                token: "t1",
                want: Some(("alice", "u1", &[GROUP_AUTHENTICATED])),
            },
            Case {
                name: "quoted groups with commas",
                text: "t1,alice,u1,\"devs,system:masters\"\n",
                token: "t1",
                want: Some((
                    "alice",
                    "u1",
                    &["devs", "system:masters", GROUP_AUTHENTICATED],
                )),
            },
            Case {
                name: "unquoted single group",
                text: "t1,alice,u1,devs",
                token: "t1",
                want: Some(("alice", "u1", &["devs", GROUP_AUTHENTICATED])),
            },
            Case {
                name: "comments, blank lines, CRLF and spaces",
                text: "# admin\n\n   \r\n t2 , bob , 2 , \"ops\"\r\n#t1,x,y\n",
                token: "t2",
                want: Some(("bob", "2", &["ops", GROUP_AUTHENTICATED])),
            },
            Case {
                name: "commented-out line is not a token",
                text: "#t1,x,y\nt2,bob,2\n",
                token: "#t1",
                want: None,
            },
            Case {
                name: "escaped quote in quoted field",
                text: "t1,\"al\"\"ice\",u1\n",
                token: "t1",
                want: Some(("al\"ice", "u1", &[GROUP_AUTHENTICATED])),
            },
            Case {
                name: "duplicate token: later wins",
                text: "t1,alice,1\nt1,bob,2\n",
                token: "t1",
                want: Some(("bob", "2", &[GROUP_AUTHENTICATED])),
            },
            Case {
                name: "prefix of a token does not match",
                text: "secret-token,alice,1\n",
                token: "secret",
                want: None,
            },
            Case {
                name: "longer token does not match",
                text: "secret,alice,1\n",
                token: "secret-token",
                want: None,
            },
            Case {
                name: "empty token never matches",
                text: "secret,alice,1\n",
                token: "",
                want: None,
            },
        ];
        for case in cases {
            let file = parse(case.text).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            let got = file.user(case.token);
            let want = case.want.map(|(name, uid, groups)| UserInfo {
                name: name.into(),
                uid: uid.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            });
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn token_file_errors_name_file_and_line() {
        for (text, line, fragment) in [
            ("t1,alice,1\n# ok\nt2,bob\n", 3, "at least 3 columns"),
            ("\n\nonly-token\n", 3, "at least 3 columns"),
            ("t1,alice,1,\"devs\n", 1, "unterminated"),
            ("t1,alice,1,\"devs\"x\n", 1, "after closing quote"),
            ("t\"1,alice,1\n", 1, "quote"),
            (",alice,1\n", 1, "token is empty"),
            ("t1,,1\n", 1, "user name is empty"),
        ] {
            let err = parse(text).expect_err(text);
            match &err {
                AuthnError::Parse { line: got, .. } => assert_eq!(*got, line, "{text:?}"),
                other => panic!("unexpected error {other}"),
            }
            let message = err.to_string();
            assert!(message.contains("tokens.csv"), "{message}");
            assert!(message.contains(&format!("line {line}")), "{message}");
            assert!(message.contains(fragment), "{message}");
        }
    }

    #[test]
    fn lookup_picks_the_right_user_among_many() {
        let mut text = String::new();
        for i in 0..50 {
            text.push_str(&format!("token-{i:03},user{i},uid{i},\"g{i}\"\n"));
        }
        let file = parse(&text).expect("parse");
        assert_eq!(file.len(), 50);
        let user = file.user("token-017").expect("found");
        assert_eq!(user.name, "user17");
        assert_eq!(user.uid, "uid17");
        assert_eq!(user.groups, ["g17", GROUP_AUTHENTICATED]);
        assert!(!user.is_admin());
        assert!(file.user("token-17").is_none());
        assert!(file.user("token-0170").is_none());
        assert!(
            !format!("{file:?}").contains("token-0"),
            "Debug leaks tokens"
        );
    }

    #[test]
    fn constant_time_eq_cases() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"ab\0", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_token_parsing() {
        for (header, want) in [
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("BEARER   abc  ", Some("abc")),
            ("  Bearer\tabc", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Basic YWxpY2U6cHc=", None),
            ("Bearerabc", None),
            ("Bearer a b", None),
            ("", None),
        ] {
            assert_eq!(bearer_token(header), want, "{header:?}");
        }
    }

    #[test]
    fn generated_tokens_are_random_url_safe() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&a)
            .expect("decode");
        assert_eq!(decoded.len(), 32);
    }

    #[test]
    fn write_and_load_token_file() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("tokens.csv");
        let admin = generate_token();
        let entries = vec![
            TokenEntry {
                token: admin.clone(),
                user: "admin".into(),
                uid: "1".into(),
                groups: vec![GROUP_MASTERS.into(), "ops".into()],
            },
            TokenEntry {
                token: "t2".into(),
                user: "odd, \"name\"".into(),
                uid: "#2".into(),
                groups: vec![],
            },
        ];
        write_token_file(&path, &entries).expect("write");
        assert_eq!(
            std::fs::metadata(&path).expect("meta").mode() & 0o777,
            0o600
        );

        let file = TokenFile::load(&path).expect("load");
        let user = file.user(&admin).expect("admin");
        assert_eq!(user.name, "admin");
        assert!(user.is_admin());
        assert_eq!(user.groups, [GROUP_MASTERS, "ops", GROUP_AUTHENTICATED]);
        let odd = file.user("t2").expect("t2");
        assert_eq!(odd.name, "odd, \"name\"");
        assert_eq!(odd.uid, "#2");

        let bad = TokenEntry {
            token: "x\ny".into(),
            user: "u".into(),
            uid: String::new(),
            groups: vec![],
        };
        assert!(write_token_file(&path, &[bad]).is_err());
        let missing = TokenFile::load(&tmp.path().join("nope.csv")).expect_err("missing");
        assert!(missing.to_string().contains("nope.csv"), "{missing}");
    }

    #[test]
    fn user_from_garbage_is_none() {
        assert!(user_from_certificate(b"not a certificate").is_none());
        assert!(user_from_certificate(&[]).is_none());
    }
}
