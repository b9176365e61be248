//! Pulling images from a registry over the distribution API v2
//! (<https://github.com/opencontainers/distribution-spec>):
//!
//! 1. `GET /v2/<repo>/manifests/<tag|digest>` with an `Accept` listing OCI
//!    and Docker manifests and indexes; an index gives the digest of the
//!    linux/amd64 manifest (the store's platform), fetched the same way.
//! 2. `GET /v2/<repo>/blobs/<digest>` for the config and, several at once,
//!    the layers. Downloads go to `tmp/<hex>.partial` in the store; after an
//!    interruption the next attempt (or the next pull) asks for the rest
//!    with `Range: bytes=<have>-`. A blob enters the store only once its
//!    sha256 matches: a corrupted or tampered blob is refused.
//! 3. The image is registered under its name (and `name@digest`).
//!
//! Authentication follows the registry's 401 challenge: Basic (the login
//! from the credentials file) or Bearer (a token from the challenge's
//! realm, fetched with the login if there is one, anonymously otherwise).
//! Plain HTTP is used only for registries listed as insecure; everything
//! else is HTTPS.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use hyper::header::{self, HeaderMap};
use hyper::{Method, StatusCode, Uri};
use tokio::io::AsyncWriteExt;

use super::auth::{Challenge, Credentials, Login, parse_challenge};
use super::blobs::BlobStore;
use super::digest::Digest;
use super::error::{ImageError, Result};
use super::manifest::{self, ACCEPT_MANIFESTS, Descriptor, Document};
use super::reference::{DOCKER_HUB, Reference};
use super::registry::{HttpClient, header_value, next_chunk, read_body};
use super::store::{Image, ImageStore};

/// Manifests larger than this are refused (real ones are a few KiB).
const MAX_MANIFEST: usize = 4 << 20;

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registry domains (as in references: `127.0.0.1:5000`) reached over
    /// plain HTTP. Everything else is HTTPS.
    pub insecure_registries: HashSet<String>,
    pub credentials: Credentials,
    /// CA bundle for HTTPS (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// Layers downloaded at once.
    pub max_parallel: usize,
    /// Attempts per blob after the first, each resuming where the last
    /// stopped.
    pub retries: u32,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            insecure_registries: HashSet::new(),
            credentials: Credentials::default(),
            ca_file: None,
            max_parallel: 3,
            retries: 3,
        }
    }
}

/// One repository on one registry, with the authorization obtained so far.
struct Session {
    client: HttpClient,
    base: String,
    registry: String,
    repo: String,
    login: Option<Login>,
    auth: tokio::sync::Mutex<Option<String>>,
}

impl Session {
    fn err(&self, message: impl Into<String>) -> ImageError {
        ImageError::Registry {
            registry: self.registry.clone(),
            message: message.into(),
        }
    }

    /// GET `/v2/<repo>/<path>`, answering one auth challenge if needed.
    async fn get(
        &self,
        path: &str,
        extra: &HeaderMap,
    ) -> Result<hyper::Response<hyper::body::Incoming>> {
        let uri: Uri = format!("{}/v2/{}/{path}", self.base, self.repo)
            .parse()
            .map_err(|e| self.err(format!("bad URL: {e}")))?;
        let mut answered = false;
        loop {
            let mut headers = extra.clone();
            if let Some(a) = self.auth.lock().await.clone() {
                headers.insert(header::AUTHORIZATION, header_value(&a)?);
            }
            let (resp, _) = self.client.send(&Method::GET, &uri, &headers).await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if answered {
                return Err(self.err(format!(
                    "GET {uri}: unauthorized{}",
                    if self.login.is_some() {
                        " (check the credentials for this registry)"
                    } else {
                        " (no credentials for this registry)"
                    }
                )));
            }
            let challenge = resp
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|h| h.to_str().ok())
                .and_then(parse_challenge)
                .ok_or_else(|| self.err("401 without a usable WWW-Authenticate challenge"))?;
            let value = self.authenticate(&challenge).await?;
            *self.auth.lock().await = Some(value);
            answered = true;
        }
    }

    async fn authenticate(&self, challenge: &Challenge) -> Result<String> {
        match challenge {
            Challenge::Basic => self
                .login
                .as_ref()
                .map(Login::basic_header)
                .ok_or_else(|| self.err("the registry wants a login and none is configured")),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope
                    .clone()
                    .unwrap_or_else(|| format!("repository:{}:pull", self.repo));
                // Built in its own scope: the serializer is not Send.
                let query = {
                    let mut q = form_urlencoded::Serializer::new(String::new());
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", &scope);
                    q.finish()
                };
                let sep = if realm.contains('?') { '&' } else { '?' };
                let uri: Uri = format!("{realm}{sep}{query}")
                    .parse()
                    .map_err(|e| self.err(format!("bad token realm {realm:?}: {e}")))?;
                let mut headers = HeaderMap::new();
                if let Some(l) = &self.login {
                    headers.insert(header::AUTHORIZATION, header_value(&l.basic_header())?);
                }
                let (mut resp, _) = self.client.send(&Method::GET, &uri, &headers).await?;
                let status = resp.status();
                let body = read_body(resp.body_mut(), 1 << 20).await?;
                if !status.is_success() {
                    return Err(self.err(format!(
                        "token request to {realm}: {status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(200)])
                    )));
                }
                #[derive(serde::Deserialize)]
                struct Token {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let t: Token = serde_json::from_slice(&body)
                    .map_err(|e| ImageError::json(format!("token from {realm}"), e))?;
                let token = t
                    .token
                    .or(t.access_token)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.err(format!("no token in the answer of {realm}")))?;
                Ok(format!("Bearer {token}"))
            }
        }
    }

    /// Fetches a manifest or index, verified against `expected` (a digest
    /// reference) or the registry's `Docker-Content-Digest`.
    async fn manifest(
        &self,
        reference: &str,
        expected: Option<&Digest>,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, header_value(ACCEPT_MANIFESTS)?);
        let mut resp = self
            .get(&format!("manifests/{reference}"), &headers)
            .await?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or(s).trim().to_owned());
        let announced = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let body = read_body(resp.body_mut(), MAX_MANIFEST).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(ImageError::ImageNotFound(format!(
                "{}/{}:{reference} (the registry has no such manifest)",
                self.registry, self.repo
            )));
        }
        if !status.is_success() {
            return Err(self.err(format!(
                "GET manifest {reference}: {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )));
        }
        let actual = Digest::of(&body);
        for want in expected.into_iter().chain(announced.as_ref()) {
            if want != &actual {
                return Err(ImageError::DigestMismatch {
                    what: format!("manifest {}/{}:{reference}", self.registry, self.repo),
                    expected: want.clone(),
                    actual,
                });
            }
        }
        Ok((body, content_type, actual))
    }
}

/// One in-process download per blob at a time (two pulls of images that
/// share a layer must not append to the same partial file).
type BlobLocks = std::sync::Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>;

fn blob_locks() -> &'static BlobLocks {
    static LOCKS: OnceLock<BlobLocks> = OnceLock::new();
    LOCKS.get_or_init(Default::default)
}

fn blob_lock(d: &Digest) -> Arc<tokio::sync::Mutex<()>> {
    let mut locks = blob_locks().lock().unwrap();
    locks.entry(d.clone()).or_default().clone()
}

/// Drops the map's entry once nobody else holds or waits for the lock, so
/// the map does not grow with every blob ever pulled.
fn forget_blob_lock(d: &Digest, lock: &Arc<tokio::sync::Mutex<()>>) {
    let mut locks = blob_locks().lock().unwrap();
    // Ours and the map's: nobody else has a clone.
    if Arc::strong_count(lock) == 2 {
        locks.remove(d);
    }
}

/// Downloads one blob into the store (resuming a partial download),
/// verified against its descriptor.
async fn fetch_blob(
    session: Arc<Session>,
    blobs: BlobStore,
    desc: Descriptor,
    retries: u32,
) -> Result<()> {
    let lock = blob_lock(&desc.digest);
    let guard = lock.clone().lock_owned().await;
    let result = fetch_blob_locked(&session, &blobs, &desc, retries, guard).await;
    forget_blob_lock(&desc.digest, &lock);
    result
}

async fn fetch_blob_locked(
    session: &Arc<Session>,
    blobs: &BlobStore,
    desc: &Descriptor,
    retries: u32,
    guard: tokio::sync::OwnedMutexGuard<()>,
) -> Result<()> {
    if blobs.contains(&desc.digest) {
        return Ok(());
    }
    let partial = blobs.partial_path(&desc.digest);
    let what = format!(
        "blob {} of {}/{}",
        desc.digest, session.registry, session.repo
    );
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        match download(session, &partial, desc).await {
            Ok(()) => break,
            Err(e) if attempt < retries && !e.is_corruption() => {
                attempt += 1;
                let have = tokio::fs::metadata(&partial).await.map_or(0, |m| m.len());
                tracing::warn!(blob = %desc.digest, error = %e, attempt, resume_at = have, "blob download interrupted; resuming");
                tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                    .await;
            }
            Err(e) => return Err(e),
        }
    }
    let (p, d, size, blobs) = (
        partial.clone(),
        desc.digest.clone(),
        desc.size,
        blobs.clone(),
    );
    // The lock goes with the commit: when a failed pull aborts this task,
    // the blocking commit still runs to its end, and the next download of
    // the same blob must wait for it rather than find its partial file
    // half-renamed (seen under load as a spurious "No such file").
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        blobs.commit_file(&p, &d, Some(size), &what)
    })
    .await
    .map_err(|e| ImageError::format(format!("blob commit task: {e}")))??;
    let secs = started.elapsed().as_secs_f64().max(0.001);
    tracing::info!(blob = %desc.digest, bytes = desc.size, secs, mib_per_s = desc.size as f64 / secs / 1048576.0, "blob downloaded and verified");
    Ok(())
}

/// One attempt: asks for what the partial file lacks and appends it.
async fn download(session: &Session, partial: &std::path::Path, desc: &Descriptor) -> Result<()> {
    let io = |e: std::io::Error| ImageError::io(format!("write {}", partial.display()), e);
    let mut have = tokio::fs::metadata(partial).await.map_or(0, |m| m.len());
    if have > desc.size {
        have = 0;
    }
    if have == desc.size && have > 0 {
        return Ok(());
    }
    let mut headers = HeaderMap::new();
    if have > 0 {
        headers.insert(header::RANGE, header_value(&format!("bytes={have}-"))?);
    }
    let mut resp = session
        .get(&format!("blobs/{}", desc.digest), &headers)
        .await?;
    let status = resp.status();
    let mut file = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 => tokio::fs::OpenOptions::new()
            .append(true)
            .open(partial)
            .await
            .map_err(io)?,
        StatusCode::OK => {
            // The server ignored the range (or there was none): start over.
            have = 0;
            tokio::fs::File::create(partial).await.map_err(io)?
        }
        StatusCode::RANGE_NOT_SATISFIABLE => {
            let _ = tokio::fs::remove_file(partial).await;
            return Err(session.err(format!(
                "blob {}: range not satisfiable; restarting",
                desc.digest
            )));
        }
        StatusCode::NOT_FOUND => {
            return Err(session.err(format!("blob {} not found", desc.digest)));
        }
        s => {
            let body = read_body(resp.body_mut(), 1 << 16)
                .await
                .unwrap_or_default();
            return Err(session.err(format!(
                "GET blob {}: {s}: {}",
                desc.digest,
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )));
        }
    };
    let mut written = have;
    let mut next_log = desc.size / 4;
    while let Some(chunk) = next_chunk(resp.body_mut()).await? {
        written += chunk.len() as u64;
        if written > desc.size {
            drop(file);
            let _ = tokio::fs::remove_file(partial).await;
            return Err(ImageError::SizeMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.size,
                actual: written,
            });
        }
        file.write_all(&chunk).await.map_err(io)?;
        if desc.size > (4 << 20) && written >= next_log {
            tracing::info!(blob = %desc.digest, percent = 100 * written / desc.size, "downloading");
            next_log += desc.size / 4;
        }
    }
    file.flush().await.map_err(io)?;
    if written != desc.size {
        return Err(session.err(format!(
            "blob {}: connection ended after {written} of {} bytes",
            desc.digest, desc.size
        )));
    }
    Ok(())
}

/// Pulls `reference` into `store` and registers it. Returns the image.
pub async fn pull(store: &ImageStore, reference: &str, opts: &PullOptions) -> Result<Image> {
    let r = Reference::parse(reference)?;
    let _lease = store.ingest_lease();
    let domain = r.domain().to_owned();
    let host = if domain == DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        domain.as_str()
    };
    let scheme = if opts.insecure_registries.contains(&domain) {
        "http"
    } else {
        "https"
    };
    let session = Arc::new(Session {
        client: HttpClient::new(opts.ca_file.as_deref()),
        base: format!("{scheme}://{host}"),
        registry: domain.clone(),
        repo: r.path().to_owned(),
        login: opts.credentials.get(&domain).cloned(),
        auth: tokio::sync::Mutex::new(None),
    });
    tracing::info!(image = %r, registry = %session.base, "pulling image");
    let started = Instant::now();

    let wanted = match (r.digest(), r.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => unreachable!("a parsed reference has a tag or a digest"),
    };
    let (data, content_type, top) = session.manifest(&wanted, r.digest()).await?;
    store
        .blobs()
        .put(&data, Some(&top), &format!("manifest {top}"))?;
    let what = format!("manifest {top} of {r}");
    let m = match manifest::parse(&data, content_type.as_deref(), &what)? {
        Document::Manifest(m) => m,
        Document::Index(index) => {
            let chosen = manifest::select_platform(&index, store.platform())?.clone();
            let (data, content_type, digest) = session
                .manifest(&chosen.digest.to_string(), Some(&chosen.digest))
                .await?;
            store
                .blobs()
                .put(&data, Some(&digest), &format!("manifest {digest}"))?;
            match manifest::parse(
                &data,
                content_type.as_deref(),
                &format!("manifest {digest}"),
            )? {
                Document::Manifest(m) => m,
                Document::Index(_) => {
                    return Err(ImageError::format(format!(
                        "{r}: an index inside an index is not supported"
                    )));
                }
            }
        }
    };

    fetch_blob(
        session.clone(),
        store.blobs().clone(),
        m.config.clone(),
        opts.retries,
    )
    .await?;
    let permits = Arc::new(tokio::sync::Semaphore::new(opts.max_parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for layer in m.layers.iter().cloned() {
        let (session, blobs, permits) = (session.clone(), store.blobs().clone(), permits.clone());
        let retries = opts.retries;
        tasks.spawn(async move {
            let _permit = permits
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            fetch_blob(session, blobs, layer, retries).await
        });
    }
    let mut first_err = None;
    while let Some(res) = tasks.join_next().await {
        let res = res.map_err(|e| ImageError::format(format!("layer download task: {e}")));
        if let Err(e) = res.and_then(|r| r)
            && first_err.is_none()
        {
            // Stop the other downloads: the pull has failed. Their partial
            // files stay for the next attempt to resume.
            tasks.abort_all();
            first_err = Some(e);
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    let image = store.register(&top, std::slice::from_ref(&r))?;
    tracing::info!(image = %r, id = %image.id, bytes = image.size, secs = started.elapsed().as_secs_f64(), "image pulled");
    Ok(image)
}
