//! Join tokens, as k3s writes them: `K10<ca-hash>::<id>.<secret>`.
//!
//! - `<ca-hash>` is the SHA-256 of the cluster CA certificate (DER, hex):
//!   the worker checks the server's CA against it before it sends anything,
//!   so a token also tells the worker which server to trust.
//! - `<id>` (6 characters) names the token in `skiff token list|delete`;
//!   `<secret>` (16) proves the worker holds it. Both `[a-z0-9]`, as
//!   kubeadm's bootstrap tokens.
//!
//! The server keeps only the secret's SHA-256, with the expiry, in
//! `<data>/tokens.json` (mode 0600): a stolen file joins no node. A
//! deleted token is simply gone, so it is refused as unknown.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// A token in the worker's hands.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub ca_hash: String,
    pub id: String,
    pub secret: String,
}

// Hand-written: a token is a secret and must not reach a log through Debug.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("ca_hash", &self.ca_hash)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn is_name(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

impl Token {
    /// Reads `K10<64 hex>::<6>.<16>`; says what is wrong otherwise (never
    /// echoing the secret).
    pub fn parse(text: &str) -> Result<Token> {
        let bad = |why: &str| {
            Error::Failed(format!(
                "--token: {why}; a join token looks like K10<64 hex digits>::<6 characters>.<16 characters> (skiff token create prints one)"
            ))
        };
        let rest = text
            .trim()
            .strip_prefix("K10")
            .ok_or_else(|| bad("it does not start with K10"))?;
        let (hash, credential) = rest
            .split_once("::")
            .ok_or_else(|| bad("no :: after the CA hash"))?;
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad("the CA hash is not 64 hex digits"));
        }
        let (id, secret) = credential
            .split_once('.')
            .ok_or_else(|| bad("no . between the token's id and secret"))?;
        if !is_name(id, 6) || !is_name(secret, 16) {
            return Err(bad("the id or secret is not [a-z0-9] of the right length"));
        }
        Ok(Token {
            ca_hash: hash.to_ascii_lowercase(),
            id: id.into(),
            secret: secret.into(),
        })
    }

    pub fn to_text(&self) -> String {
        format!("K10{}::{}.{}", self.ca_hash, self.id, self.secret)
    }
}

/// SHA-256 in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash a token pins: of the CA certificate in `<data>/pki/ca.crt`.
pub fn ca_hash(pki: &Path) -> Result<String> {
    let path = pki.join("ca.crt");
    let pem = std::fs::read(&path).map_err(Error::io(path.display().to_string()))?;
    let der = rustls_pemfile::certs(&mut pem.as_slice())
        .next()
        .and_then(|c| c.ok())
        .ok_or_else(|| Error::Failed(format!("{}: no certificate", path.display())))?;
    Ok(sha256_hex(&der))
}

fn random(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// One stored token: no secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: String,
    pub secret_sha256: String,
    /// Unix seconds; `None`: never expires.
    pub expires: Option<i64>,
    pub description: String,
}

/// Why a join was refused (what the worker is told).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the token is unknown or was revoked (skiff token list on the server)")]
    Unknown,
    #[error("the token expired {0} s ago (skiff token create on the server makes a new one)")]
    Expired(i64),
}

/// `<data>/tokens.json`.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(data: &Path) -> Store {
        Store {
            path: data.join("tokens.json"),
        }
    }

    /// Whether a token was ever made here.
    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    pub fn list(&self) -> Result<Vec<Stored>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(self.path.display().to_string())(e)),
        };
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Failed(format!("{}: {e}", self.path.display())))?;
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some(Stored {
                    id: t["id"].as_str()?.into(),
                    secret_sha256: t["secretSha256"].as_str()?.into(),
                    expires: t["expires"].as_i64(),
                    description: t["description"].as_str().unwrap_or_default().into(),
                })
            })
            .collect())
    }

    fn save(&self, tokens: &[Stored]) -> Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let body: Vec<Value> = tokens
            .iter()
            .map(|t| {
                json!({"id": t.id, "secretSha256": t.secret_sha256,
                       "expires": t.expires, "description": t.description})
            })
            .collect();
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Error::io(tmp.display().to_string()))?;
        f.write_all(Value::Array(body).to_string().as_bytes())
            .map_err(Error::io(tmp.display().to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(Error::io(self.path.display().to_string()))
    }

    /// A new token valid for `ttl` seconds (`None`: no expiry), `now` in
    /// unix seconds.
    pub fn create(
        &self,
        ca_hash: &str,
        ttl: Option<i64>,
        now: i64,
        description: &str,
    ) -> Result<Token> {
        let mut all = self.list()?;
        let token = Token {
            ca_hash: ca_hash.into(),
            id: random(6),
            secret: random(16),
        };
        all.push(Stored {
            id: token.id.clone(),
            secret_sha256: sha256_hex(token.secret.as_bytes()),
            expires: ttl.map(|t| now + t),
            description: description.into(),
        });
        self.save(&all)?;
        Ok(token)
    }

    /// Revokes a token; false when there was none with that id.
    pub fn delete(&self, id: &str) -> Result<bool> {
        let mut all = self.list()?;
        let before = all.len();
        all.retain(|t| t.id != id);
        self.save(&all)?;
        Ok(all.len() != before)
    }

    /// Whether `id`.`secret` may join at `now`.
    pub fn check(
        &self,
        id: &str,
        secret: &str,
        now: i64,
    ) -> Result<std::result::Result<(), Refusal>> {
        let want = sha256_hex(secret.as_bytes());
        let Some(t) = self.list()?.into_iter().find(|t| t.id == id) else {
            return Ok(Err(Refusal::Unknown));
        };
        // Equal length hex: compare every byte, whatever matches first.
        let same = t.secret_sha256.len() == want.len()
            && t.secret_sha256
                .bytes()
                .zip(want.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !same {
            return Ok(Err(Refusal::Unknown));
        }
        match t.expires {
            Some(at) if at <= now => Ok(Err(Refusal::Expired(now - at))),
            _ => Ok(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_read_back_and_bad_ones_say_why_without_the_secret() {
        let t = Token::parse(&format!("K10{HASH}::abc123.s3cr3tt0k3nvalue")).unwrap();
        assert_eq!(
            (t.id.as_str(), t.secret.as_str()),
            ("abc123", "s3cr3tt0k3nvalue")
        );
        assert_eq!(Token::parse(&t.to_text()).unwrap(), t);
        assert!(!format!("{t:?}").contains("s3cr3tt0k3nvalue"));
        for (text, why) in [
            ("abc123.s3cr3tt0k3nvalue", "K10"),
            (&format!("K10{HASH}abc123.s3cr3tt0k3nvalue") as &str, "::"),
            ("K10abcd::abc123.s3cr3tt0k3nvalue", "64 hex"),
            (&format!("K10{HASH}::abc123s3cr3tt0k3nvalue"), "no ."),
            (&format!("K10{HASH}::ABC123.s3cr3tt0k3nvalue"), "[a-z0-9]"),
            (&format!("K10{HASH}::abc123.short"), "[a-z0-9]"),
        ] {
            let err = Token::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text}: {err}");
            assert!(!err.contains("s3cr3tt0k3nvalue"), "{err}");
        }
    }

    #[test]
    fn the_store_keeps_hashes_checks_expiry_and_forgets_revoked_tokens() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path());
        let forever = s.create(HASH, None, 1000, "lab").unwrap();
        let hour = s.create(HASH, Some(3600), 1000, "").unwrap();
        let text = std::fs::read_to_string(d.path().join("tokens.json")).unwrap();
        assert!(!text.contains(&forever.secret) && !text.contains(&hour.secret));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(d.path().join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            s.check(&forever.id, &forever.secret, 10_000_000).unwrap(),
            Ok(())
        );
        assert_eq!(s.check(&hour.id, &hour.secret, 4599).unwrap(), Ok(()));
        assert_eq!(
            s.check(&hour.id, &hour.secret, 4610).unwrap(),
            Err(Refusal::Expired(10))
        );
        assert_eq!(
            s.check(&hour.id, &forever.secret, 2000).unwrap(),
            Err(Refusal::Unknown)
        );
        assert_eq!(
            s.check("nosuch", &hour.secret, 2000).unwrap(),
            Err(Refusal::Unknown)
        );
        assert!(s.delete(&forever.id).unwrap());
        assert!(!s.delete(&forever.id).unwrap());
        assert_eq!(
            s.check(&forever.id, &forever.secret, 2000).unwrap(),
            Err(Refusal::Unknown)
        );
        assert_eq!(s.list().unwrap().len(), 1);
    }
}
