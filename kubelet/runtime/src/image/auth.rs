//! Registry credentials and authentication challenges.
//!
//! Credentials use Docker's `config.json` format, which is also what a
//! Kubernetes `imagePullSecret` of type `kubernetes.io/dockerconfigjson`
//! holds, so one parser serves the kubelet's per-registry credentials file
//! and pod secrets:
//!
//! ```json
//! {"auths": {"registry.example:5000": {"auth": "<base64 user:password>"},
//!            "https://index.docker.io/v1/": {"username": "u", "password": "p"}}}
//! ```
//!
//! A registry answers an unauthenticated request with 401 and a
//! `WWW-Authenticate` challenge: `Basic realm=...` (send the credentials
//! with every request) or `Bearer realm=...,service=...,scope=...` (trade
//! the credentials, or nothing for anonymous pulls, for a token at `realm`).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use super::error::{ImageError, Result};
use super::reference::DOCKER_HUB;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print passwords into logs.
        write!(f, "Login({}, <redacted>)", self.username)
    }
}

impl Login {
    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Logins by registry domain (`docker.io`, `localhost:5000`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    by_registry: HashMap<String, Login>,
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://r:5000/x` → `r:5000`.
fn registry_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

impl Credentials {
    /// Parses Docker `config.json` / `.dockerconfigjson` content.
    pub fn from_docker_config(data: &[u8], what: &str) -> Result<Credentials> {
        let cfg: DockerConfig =
            serde_json::from_slice(data).map_err(|e| ImageError::json(what.to_owned(), e))?;
        let mut creds = Credentials::default();
        for (key, a) in cfg.auths {
            let login = match (a.auth, a.username, a.password) {
                (Some(auth), _, _) if !auth.is_empty() => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(auth.trim())
                        .map_err(|e| {
                            ImageError::format(format!("{what}: auth for {key}: bad base64: {e}"))
                        })?;
                    let raw = String::from_utf8(raw).map_err(|_| {
                        ImageError::format(format!("{what}: auth for {key} is not UTF-8"))
                    })?;
                    let (u, p) = raw.split_once(':').ok_or_else(|| {
                        ImageError::format(format!(
                            "{what}: auth for {key} is not base64 of user:password"
                        ))
                    })?;
                    Login {
                        username: u.to_owned(),
                        password: p.to_owned(),
                    }
                }
                (_, Some(username), Some(password)) => Login { username, password },
                _ => continue,
            };
            creds.by_registry.insert(registry_key(&key), login);
        }
        Ok(creds)
    }

    /// Reads a credentials file; a missing file means no credentials.
    pub fn load(path: &Path) -> Result<Credentials> {
        match std::fs::read(path) {
            Ok(data) => Credentials::from_docker_config(&data, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(ImageError::io(format!("read {}", path.display()), e)),
        }
    }

    pub fn insert(&mut self, registry: &str, login: Login) {
        self.by_registry.insert(registry_key(registry), login);
    }

    /// Adds `other`'s logins, replacing ours for the same registry (pod
    /// pull secrets override the node's file).
    pub fn merge(&mut self, other: &Credentials) {
        for (k, v) in &other.by_registry {
            self.by_registry.insert(k.clone(), v.clone());
        }
    }

    /// The login for a registry domain, as written in image references.
    pub fn get(&self, registry: &str) -> Option<&Login> {
        self.by_registry.get(&registry_key(registry))
    }
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="https://auth",service="reg",scope="repository:a:pull"`
/// or `Basic realm="x"`. Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `k="v, with commas",k2=v2` → map (keys lowercased).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                value.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let cases = [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                Some(Challenge::Bearer {
                    realm: "https://auth.docker.io/token".into(),
                    service: Some("registry.docker.io".into()),
                    scope: Some("repository:library/busybox:pull".into()),
                }),
            ),
            (
                r#"Bearer realm="http://127.0.0.1:1/t",scope="repository:a:pull,push""#,
                Some(Challenge::Bearer {
                    realm: "http://127.0.0.1:1/t".into(),
                    service: None,
                    scope: Some("repository:a:pull,push".into()),
                }),
            ),
            (r#"Basic realm="registry""#, Some(Challenge::Basic)),
            ("Bearer service=x", None),
            ("Negotiate abc", None),
        ];
        for (h, want) in cases {
            assert_eq!(parse_challenge(h), want, "{h}");
        }
    }

    #[test]
    fn docker_config_files() {
        let json = br#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNzOndpdGg6Y29sb25z"},
            "127.0.0.1:5000":{"username":"u","password":"p"},
            "empty.example":{}}}"#;
        let c = Credentials::from_docker_config(json, "cfg").unwrap();
        let hub = c.get("docker.io").unwrap();
        assert_eq!(hub.username, "user");
        assert_eq!(hub.password, "pass:with:colons");
        assert_eq!(
            c.get("127.0.0.1:5000").unwrap().basic_header(),
            "Basic dTpw"
        );
        assert!(c.get("empty.example").is_none());
        assert!(
            !format!("{hub:?}").contains("pass"),
            "passwords are not printed"
        );

        let err = Credentials::from_docker_config(br#"{"auths":{"x":{"auth":"!!"}}}"#, "cfg")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad base64"), "{err}");

        let mut merged = c.clone();
        let mut pod = Credentials::default();
        pod.insert(
            "http://127.0.0.1:5000",
            Login {
                username: "pod".into(),
                password: "secret".into(),
            },
        );
        merged.merge(&pod);
        assert_eq!(merged.get("127.0.0.1:5000").unwrap().username, "pod");
    }
}
