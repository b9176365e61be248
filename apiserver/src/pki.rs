//! The API server's public key infrastructure: the cluster CA, the HTTPS
//! serving certificate, client certificates for users, the rustls server
//! configuration and admin kubeconfig files.
//!
//! On first start [`Pki::load_or_create`] generates a CA and a serving
//! certificate into `<data-dir>/pki`; later starts reuse them and only
//! re-issue the serving certificate when it no longer fits (a requested host
//! is missing, it is about to expire, or the CA changed). Users who bring
//! their own certificate (`--tls-cert-file`/`--tls-private-key-file`) get a
//! [`Pki`] from [`Pki::from_files`] instead; it cannot issue client
//! certificates because the CA key is not ours.
//!
//! Private keys are written with mode 0600 into a 0700 directory, always via
//! a temporary file and a rename so that a crash never leaves a half-written
//! key behind. Nothing in this module logs key material or tokens.

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use rand::RngCore as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, SanType, SerialNumber, SigningKey as _,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::{Deserialize, Serialize};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

/// File names inside the PKI directory.
const CA_CERT_FILE: &str = "ca.crt";
const CA_KEY_FILE: &str = "ca.key";
const SERVING_CERT_FILE: &str = "apiserver.crt";
const SERVING_KEY_FILE: &str = "apiserver.key";

/// Common name of the generated cluster CA.
pub const CA_COMMON_NAME: &str = "skiff-ca";
/// Common name of the generated serving certificate (as in Kubernetes).
const SERVING_COMMON_NAME: &str = "kube-apiserver";

const DAY_SECS: i64 = 24 * 60 * 60;
/// The CA lives long: replacing it invalidates every issued credential.
const CA_VALID_DAYS: i64 = 10 * 365;
/// The serving certificate is cheap to replace, so it is short-lived and
/// re-issued automatically on start.
const SERVING_VALID_DAYS: i64 = 365;
/// Re-issue the serving certificate when it expires within this many days.
const RENEW_BEFORE_DAYS: i64 = 30;
/// Certificates start to be valid a little in the past so that clients
/// whose clock lags behind ours still accept them.
const BACKDATE_SECS: i64 = 60 * 60;

/// Mode for files holding private keys or tokens.
pub(crate) const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode for certificates, which are public.
const PUBLIC_FILE_MODE: u32 = 0o644;
/// Mode for directories holding private keys.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// Everything that can go wrong while setting up TLS. Messages name the
/// file (and where it applies the flag) at fault.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    InvalidFile { path: PathBuf, reason: String },
    #[error(
        "{} exists but {} is missing; refusing to create a new CA because certificates \
         issued by the old one would stop working. Restore the key, or delete the whole \
         directory {} to start over with a new CA",
        cert.display(), key.display(), dir.display()
    )]
    CaKeyMissing {
        cert: PathBuf,
        key: PathBuf,
        dir: PathBuf,
    },
    #[error("invalid host name {host:?} for the serving certificate: {reason}")]
    InvalidHost { host: String, reason: &'static str },
    #[error("no host names or addresses given for the serving certificate")]
    NoHosts,
    #[error(
        "cannot issue client certificates: no CA private key is available (the server was \
         started with --tls-cert-file/--tls-private-key-file); issue them with your own CA"
    )]
    NoCaKey,
    #[error("invalid client certificate request: {0}")]
    InvalidRequest(String),
    #[error("cannot generate {what}: {source}")]
    Generate {
        what: &'static str,
        source: rcgen::Error,
    },
    #[error("cannot build the TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot set up client certificate verification: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot encode kubeconfig {}: {reason}", path.display())]
    Kubeconfig { path: PathBuf, reason: String },
}

/// The cluster's TLS material: the CA used to verify (and, when we own its
/// key, issue) client certificates, and the serving certificate chain.
pub struct Pki {
    /// PEM of the CA clients should trust; see [`Pki::ca_pem`].
    ca_pem: String,
    /// Trust anchors for client certificates.
    client_cas: Vec<CertificateDer<'static>>,
    /// Present only for the generated CA; needed to issue client certs.
    ca_issuer: Option<Issuer<'static, KeyPair>>,
    serving_chain: Vec<CertificateDer<'static>>,
    serving_key: PrivateKeyDer<'static>,
}

impl fmt::Debug for Pki {
    // Hand-written so that private keys can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("client_cas", &self.client_cas.len())
            .field("can_issue", &self.ca_issuer.is_some())
            .field("serving_chain", &self.serving_chain.len())
            .finish_non_exhaustive()
    }
}

/// A name the serving certificate must be valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Ip(IpAddr),
    Dns(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

impl Pki {
    /// Loads the CA and serving certificate from `dir`, creating whatever is
    /// missing. `hosts` are the names and addresses clients use to reach the
    /// API server; IP addresses become IP SANs, everything else DNS SANs.
    /// The serving certificate is re-issued when it lacks one of them, expires
    /// within 30 days, no longer matches its key or was not signed by the CA.
    pub fn load_or_create(dir: &Path, hosts: &[String]) -> Result<Pki, PkiError> {
        let hosts = parse_hosts(hosts)?;
        create_private_dir(dir).map_err(|source| PkiError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;

        let (ca_pem, ca_der, ca_key) = load_or_create_ca(dir)?;
        let issuer =
            Issuer::from_ca_cert_der(&ca_der, ca_key).map_err(|source| PkiError::InvalidFile {
                path: dir.join(CA_CERT_FILE),
                reason: format!("cannot use it as a CA: {source}"),
            })?;

        let (serving_chain, serving_key) = match load_serving(dir, &ca_der, &hosts)? {
            Some(existing) => existing,
            None => issue_serving(dir, &issuer, &hosts, SERVING_VALID_DAYS)?,
        };

        Ok(Pki {
            ca_pem,
            client_cas: vec![ca_der],
            ca_issuer: Some(issuer),
            serving_chain,
            serving_key,
        })
    }

    /// Uses a serving certificate chain and key given by the user
    /// (`--tls-cert-file`, `--tls-private-key-file`). `ca` is the CA bundle
    /// that clients should trust and that client certificates are verified
    /// against; without it only `--client-ca-file` (see
    /// [`Pki::server_config`]) enables client certificate authentication.
    pub fn from_files(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Pki, PkiError> {
        let serving_chain = read_certs(cert, "--tls-cert-file")?;
        let key_bytes = read_file(key)?;
        warn_if_readable_by_others(key);
        let serving_key =
            PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| PkiError::InvalidFile {
                path: key.to_path_buf(),
                reason: format!("no usable private key (--tls-private-key-file): {e}"),
            })?;

        // Catch a key that does not belong to the certificate now, with the
        // file names in the message, rather than at the first handshake.
        let provider = rustls::crypto::ring::default_provider();
        rustls::sign::CertifiedKey::from_der(
            serving_chain.clone(),
            serving_key.clone_key(),
            &provider,
        )
        .map_err(|e| PkiError::InvalidFile {
            path: key.to_path_buf(),
            reason: format!(
                "private key (--tls-private-key-file) does not fit certificate {}: {e}",
                cert.display()
            ),
        })?;

        let (ca_pem, client_cas) = match ca {
            Some(ca_path) => {
                let cas = read_certs(ca_path, "CA file")?;
                (pem_certs(&cas), cas)
            }
            // Without a CA file, the best trust anchor we know for clients is
            // the top of the serving chain: correct for a self-signed
            // certificate or a chain that includes its root.
            None => {
                let top = serving_chain
                    .last()
                    .cloned()
                    .into_iter()
                    .collect::<Vec<_>>();
                (pem_certs(&top), Vec::new())
            }
        };

        Ok(Pki {
            ca_pem,
            client_cas,
            ca_issuer: None,
            serving_chain,
            serving_key,
        })
    }

    /// PEM of the CA clients should trust to reach this server (for a
    /// kubeconfig's `certificate-authority-data`). For [`Pki::from_files`]
    /// without a CA file it is the last certificate of the serving chain.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Whether [`Pki::issue_client_cert`] can work (we hold the CA key).
    pub fn can_issue_client_certs(&self) -> bool {
        self.ca_issuer.is_some()
    }

    /// Issues a serving certificate for `hosts` (names and addresses) with
    /// subject CN `common_name`, valid for `valid_days`: a kubelet's, for
    /// its API on :10250. Returns the certificate and its new key, PEM.
    pub fn issue_serving_cert(
        &self,
        common_name: &str,
        hosts: &[String],
        valid_days: u32,
    ) -> Result<(String, String), PkiError> {
        let issuer = self.ca_issuer.as_ref().ok_or(PkiError::NoCaKey)?;
        let hosts = parse_hosts(hosts)?;
        let (cert, key) = sign_serving(issuer, common_name, &hosts, i64::from(valid_days))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issues a client certificate for `user` (the subject CN) in `groups`
    /// (one subject O each), valid for `valid_days`. Returns the certificate
    /// and its new private key, both PEM.
    pub fn issue_client_cert(
        &self,
        user: &str,
        groups: &[&str],
        valid_days: u32,
    ) -> Result<(String, String), PkiError> {
        let issuer = self.ca_issuer.as_ref().ok_or(PkiError::NoCaKey)?;
        check_name_part("user name", user)?;
        for group in groups {
            check_name_part("group name", group)?;
        }
        if valid_days == 0 {
            return Err(PkiError::InvalidRequest(
                "validity must be at least one day".into(),
            ));
        }

        let key = KeyPair::generate().map_err(|source| PkiError::Generate {
            what: "a client key",
            source,
        })?;
        let mut params = CertificateParams::default();
        // rcgen's DistinguishedName holds one value per attribute type, but
        // Kubernetes reads one group per O attribute, so the subject is
        // replaced below by one we encode ourselves.
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, user);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = asn1_time(-BACKDATE_SECS)?.to_datetime();
        params.not_after = asn1_time(i64::from(valid_days) * DAY_SECS)?.to_datetime();
        let cert = params
            .signed_by(&key, issuer)
            .map_err(|source| PkiError::Generate {
                what: "a client certificate",
                source,
            })?;

        let subject = encode_subject(user, groups);
        let der = replace_subject(cert.der(), &subject, issuer.key())?;
        let cert_pem = pem_certs(&[CertificateDer::from(der)]);
        Ok((cert_pem, key.serialize_pem()))
    }

    /// A server configuration that sends the cluster CA's certificate after
    /// the serving chain, and asks for no client certificate: for a service
    /// whose clients pin the CA by its hash (a join token) and find it in
    /// the handshake before they trust anything.
    pub fn pinning_server_config(&self) -> Result<ServerConfig, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut chain = self.serving_chain.clone();
        if let Some(ca) = self.client_cas.first()
            && !chain.contains(ca)
        {
            chain.push(ca.clone());
        }
        Ok(ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, self.serving_key.clone_key())?)
    }

    /// The rustls server configuration for the API server: ALPN `h2` and
    /// `http/1.1`, and optional client certificates verified against the
    /// cluster CA plus `extra_client_cas` (`--client-ca-file`). Clients
    /// without a certificate still connect; they may authenticate with a
    /// bearer token instead.
    pub fn server_config(&self, extra_client_cas: Option<&Path>) -> Result<ServerConfig, PkiError> {
        // An explicit provider keeps us independent of whatever process-wide
        // default other crates (kube, etcd-client) might install.
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let mut roots = RootCertStore::empty();
        for ca in &self.client_cas {
            roots.add(ca.clone())?;
        }
        if let Some(path) = extra_client_cas {
            for ca in read_certs(path, "--client-ca-file")? {
                roots.add(ca).map_err(|e| PkiError::InvalidFile {
                    path: path.to_path_buf(),
                    reason: format!("unusable CA certificate (--client-ca-file): {e}"),
                })?;
            }
        }

        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = if roots.is_empty() {
            builder.with_no_client_auth()
        } else {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        };
        let mut config =
            builder.with_single_cert(self.serving_chain.clone(), self.serving_key.clone_key())?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// How a kubeconfig user authenticates.
pub enum Credentials {
    /// A client certificate and its key, both PEM.
    ClientCertificate { cert_pem: String, key_pem: String },
    /// A bearer token.
    Token(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ClientCertificate { .. } => f.write_str("ClientCertificate(..)"),
            Credentials::Token(_) => f.write_str("Token(..)"),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    clusters: Vec<NamedCluster>,
    users: Vec<NamedUser>,
    contexts: Vec<NamedContext>,
    current_context: String,
}

#[derive(Serialize, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: KubeconfigCluster,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct KubeconfigCluster {
    server: String,
    certificate_authority_data: String,
}

#[derive(Serialize, Deserialize)]
struct NamedUser {
    name: String,
    user: KubeconfigUser,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct KubeconfigUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct NamedContext {
    name: String,
    context: KubeconfigContext,
}

#[derive(Serialize, Deserialize)]
struct KubeconfigContext {
    cluster: String,
    user: String,
}

/// Writes a kubeconfig with one cluster, one user and one context
/// (`<user>@<cluster>`, made current) to `path`, mode 0600, atomically.
/// Certificates and keys are embedded as base64 `*-data` fields so that the
/// file stands alone.
pub fn write_kubeconfig(
    path: &Path,
    cluster: &str,
    server: &str,
    ca_pem: &str,
    user: &str,
    credentials: Credentials,
) -> Result<(), PkiError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let kubeconfig_user = match credentials {
        Credentials::ClientCertificate { cert_pem, key_pem } => KubeconfigUser {
            client_certificate_data: Some(b64.encode(cert_pem)),
            client_key_data: Some(b64.encode(key_pem)),
            token: None,
        },
        Credentials::Token(token) => KubeconfigUser {
            token: Some(token),
            ..KubeconfigUser::default()
        },
    };
    let context = format!("{user}@{cluster}");
    let config = Kubeconfig {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![NamedCluster {
            name: cluster.into(),
            cluster: KubeconfigCluster {
                server: server.into(),
                certificate_authority_data: b64.encode(ca_pem),
            },
        }],
        users: vec![NamedUser {
            name: user.into(),
            user: kubeconfig_user,
        }],
        contexts: vec![NamedContext {
            name: context.clone(),
            context: KubeconfigContext {
                cluster: cluster.into(),
                user: user.into(),
            },
        }],
        current_context: context,
    };
    let yaml = serde_saphyr::to_string(&config).map_err(|e| PkiError::Kubeconfig {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;

    // ~/.kube may not exist yet; create it private like kubectl would.
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && !parent.exists()
    {
        create_private_dir(parent).map_err(|source| PkiError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    write_atomic(path, yaml.as_bytes(), PRIVATE_FILE_MODE).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------
// Files

/// Creates `dir` (and missing parents) with mode 0700 and tightens an
/// existing directory that others could read: it holds private keys.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "directory holding private keys was accessible to others; setting mode 0700"
        );
        fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE))?;
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// directory, created with `mode` from the start (so secrets are never
/// briefly readable by others), synced, then renamed over `path`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Make the rename itself durable; failure here only risks losing the
    // new file on power loss, which the next start repairs.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn read_file(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    write_atomic(path, contents, mode).map_err(|source| PkiError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format_args!("{:o}", mode & 0o777),
                "private key file is accessible to other users; consider chmod 600"
            );
        }
    }
}

/// Reads all PEM certificates from `path`; `what` names the flag or role of
/// the file for the error message.
fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::InvalidFile {
            path: path.to_path_buf(),
            reason: format!("invalid PEM ({what}): {e}"),
        })?;
    if certs.is_empty() {
        return Err(PkiError::InvalidFile {
            path: path.to_path_buf(),
            reason: format!("no PEM certificate found ({what})"),
        });
    }
    Ok(certs)
}

fn pem_certs(certs: &[CertificateDer<'_>]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    for cert in certs {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = b64.encode(cert.as_ref());
        // PEM lines are 64 characters; base64 output is ASCII so byte
        // chunks are character boundaries.
        for line in encoded.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

// ---------------------------------------------------------------------------
// CA and serving certificate

/// Loads `ca.crt`/`ca.key` from `dir`, or creates them when `ca.crt` does
/// not exist. Returns the CA PEM, its DER and its key.
fn load_or_create_ca(dir: &Path) -> Result<(String, CertificateDer<'static>, KeyPair), PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);

    if cert_path.exists() {
        if !key_path.exists() {
            return Err(PkiError::CaKeyMissing {
                cert: cert_path,
                key: key_path,
                dir: dir.to_path_buf(),
            });
        }
        let der = read_certs(&cert_path, "cluster CA")?
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::InvalidFile {
                path: cert_path.clone(),
                reason: "no certificate".into(),
            })?;
        let key_pem =
            String::from_utf8(read_file(&key_path)?).map_err(|_| PkiError::InvalidFile {
                path: key_path.clone(),
                reason: "not a PEM file".into(),
            })?;
        warn_if_readable_by_others(&key_path);
        let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::InvalidFile {
            path: key_path.clone(),
            reason: format!("invalid CA private key: {e}"),
        })?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| PkiError::InvalidFile {
                path: cert_path.clone(),
                reason: format!("invalid CA certificate: {e}"),
            })?;
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(PkiError::InvalidFile {
                path: key_path,
                reason: format!(
                    "key does not belong to CA certificate {}",
                    cert_path.display()
                ),
            });
        }
        let remaining = parsed.validity().not_after.timestamp() - now();
        if remaining < RENEW_BEFORE_DAYS * DAY_SECS {
            tracing::warn!(
                file = %cert_path.display(),
                days_left = remaining / DAY_SECS,
                "the cluster CA expires soon; all certificates it issued will stop working"
            );
        }
        let pem = pem_certs(std::slice::from_ref(&der));
        return Ok((pem, der, key));
    }

    if key_path.exists() {
        // The key is written before the certificate, so a key without a
        // certificate is left over from an interrupted first start; nothing
        // can have been issued with it.
        tracing::warn!(file = %key_path.display(), "replacing CA key that has no certificate");
    }
    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: "the CA key",
        source,
    })?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial());
    params.not_before = asn1_time(-BACKDATE_SECS)?.to_datetime();
    params.not_after = asn1_time(CA_VALID_DAYS * DAY_SECS)?.to_datetime();
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "the CA certificate",
            source,
        })?;

    write_file(&key_path, key.serialize_pem().as_bytes(), PRIVATE_FILE_MODE)?;
    let pem = cert.pem();
    write_file(&cert_path, pem.as_bytes(), PUBLIC_FILE_MODE)?;
    tracing::info!(file = %cert_path.display(), "created cluster CA");
    Ok((pem, cert.der().clone(), key))
}

type CertAndKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// Loads the serving certificate if it is still good for `hosts`; `None`
/// means it must be (re-)issued.
fn load_serving(
    dir: &Path,
    ca_der: &CertificateDer<'_>,
    hosts: &[Host],
) -> Result<Option<CertAndKey>, PkiError> {
    let cert_path = dir.join(SERVING_CERT_FILE);
    let key_path = dir.join(SERVING_KEY_FILE);
    if !cert_path.exists() || !key_path.exists() {
        return Ok(None);
    }
    // A damaged serving certificate is replaced rather than reported: it is
    // ours, derived from the CA, and can always be re-issued.
    let reissue = |reason: String| {
        tracing::info!(file = %cert_path.display(), %reason, "re-issuing serving certificate");
        Ok(None)
    };

    let chain = match read_certs(&cert_path, "serving certificate") {
        Ok(chain) => chain,
        Err(e) => return reissue(e.to_string()),
    };
    let key_bytes = read_file(&key_path)?;
    warn_if_readable_by_others(&key_path);
    let key = match PrivateKeyDer::from_pem_slice(&key_bytes) {
        Ok(key) => key,
        Err(_) => return reissue(format!("{} is not a valid key", key_path.display())),
    };
    let Some(leaf_der) = chain.first() else {
        return reissue("empty certificate file".into());
    };
    let Ok((_, leaf)) = x509_parser::parse_x509_certificate(leaf_der) else {
        return reissue("certificate cannot be parsed".into());
    };
    let Ok((_, ca)) = x509_parser::parse_x509_certificate(ca_der) else {
        return reissue("CA certificate cannot be parsed".into());
    };
    if leaf.verify_signature(Some(ca.public_key())).is_err() {
        return reissue("not signed by the current CA".into());
    }
    if leaf.validity().not_after.timestamp() - now() < RENEW_BEFORE_DAYS * DAY_SECS {
        return reissue(format!("expires within {RENEW_BEFORE_DAYS} days"));
    }
    let present = certificate_hosts(&leaf);
    if let Some(missing) = hosts.iter().find(|h| !present.contains(h)) {
        return reissue(format!("{missing} is not among its names"));
    }
    let provider = rustls::crypto::ring::default_provider();
    if rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).is_err() {
        return reissue("key does not match the certificate".into());
    }
    Ok(Some((chain, key)))
}

/// Issues and writes a new serving certificate for `hosts`, valid for
/// `valid_days`.
fn issue_serving(
    dir: &Path,
    issuer: &Issuer<'_, KeyPair>,
    hosts: &[Host],
    valid_days: i64,
) -> Result<CertAndKey, PkiError> {
    let (cert, key) = sign_serving(issuer, SERVING_COMMON_NAME, hosts, valid_days)?;

    let key_pem = key.serialize_pem();
    write_file(
        &dir.join(SERVING_KEY_FILE),
        key_pem.as_bytes(),
        PRIVATE_FILE_MODE,
    )?;
    write_file(
        &dir.join(SERVING_CERT_FILE),
        cert.pem().as_bytes(),
        PUBLIC_FILE_MODE,
    )?;
    let names = hosts.iter().map(Host::to_string).collect::<Vec<_>>();
    tracing::info!(names = ?names, "issued API server serving certificate");
    let key_der = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    Ok((vec![cert.der().clone()], key_der))
}

/// A serving certificate for `hosts` with subject CN `common_name`, signed
/// by the CA, and its new key.
fn sign_serving(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    hosts: &[Host],
    valid_days: i64,
) -> Result<(rcgen::Certificate, KeyPair), PkiError> {
    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: "the serving key",
        source,
    })?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.subject_alt_names =
        hosts
            .iter()
            .map(|h| match h {
                Host::Ip(ip) => Ok(SanType::IpAddress(*ip)),
                Host::Dns(name) => name.clone().try_into().map(SanType::DnsName).map_err(|_| {
                    PkiError::InvalidHost {
                        host: name.clone(),
                        reason: "not an ASCII DNS name",
                    }
                }),
            })
            .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    params.not_before = asn1_time(-BACKDATE_SECS)?.to_datetime();
    params.not_after = asn1_time(valid_days * DAY_SECS)?.to_datetime();
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| PkiError::Generate {
            what: "the serving certificate",
            source,
        })?;
    Ok((cert, key))
}

/// Normalises the requested host list: IPs parsed (brackets allowed for
/// IPv6), DNS names lower-cased and checked, duplicates dropped.
fn parse_hosts(hosts: &[String]) -> Result<Vec<Host>, PkiError> {
    let mut out: Vec<Host> = Vec::new();
    for raw in hosts {
        let host = raw.trim();
        if host.is_empty() {
            continue;
        }
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let parsed = if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            Host::Ip(ip)
        } else {
            let valid = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '*'));
            if !valid || host.starts_with('.') || host.ends_with('.') || host.contains("..") {
                return Err(PkiError::InvalidHost {
                    host: raw.clone(),
                    reason: "only letters, digits, '-', '_', '*' and inner dots are allowed",
                });
            }
            Host::Dns(host.to_ascii_lowercase())
        };
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    if out.is_empty() {
        return Err(PkiError::NoHosts);
    }
    Ok(out)
}

/// The names a certificate is valid for, as [`Host`]s.
fn certificate_hosts(cert: &X509Certificate<'_>) -> Vec<Host> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(Host::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                _ => None,
            }
            .map(Host::Ip),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Small helpers

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The time `offset_secs` from now, in the form rcgen wants.
fn asn1_time(offset_secs: i64) -> Result<ASN1Time, PkiError> {
    let at = now().saturating_add(offset_secs);
    ASN1Time::from_timestamp(at)
        .map_err(|_| PkiError::InvalidRequest(format!("validity end {at} is out of range")))
}

/// A random positive 127-bit serial, as RFC 5280 recommends for CAs.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // Positive (top bit clear) and minimal (first byte non-zero) DER INTEGER.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}

fn check_name_part(what: &str, value: &str) -> Result<(), PkiError> {
    if value.trim().is_empty() {
        return Err(PkiError::InvalidRequest(format!("{what} is empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(PkiError::InvalidRequest(format!(
            "{what} {value:?} contains control characters"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Minimal DER, just enough to put several O attributes into a subject.

const DER_SEQUENCE: u8 = 0x30;
const DER_SET: u8 = 0x31;
const DER_OID: u8 = 0x06;
const DER_UTF8_STRING: u8 = 0x0c;
const DER_BIT_STRING: u8 = 0x03;
const DER_VERSION_TAG: u8 = 0xa0;
/// 2.5.4.3 commonName and 2.5.4.10 organizationName, content octets.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

fn der_encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// One DER element at the front of `input`: its tag, header length, the
/// whole element and what follows it.
struct DerElement<'a> {
    tag: u8,
    header_len: usize,
    whole: &'a [u8],
    rest: &'a [u8],
}

fn der_split(input: &[u8]) -> Option<DerElement<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None; // multi-byte tags do not occur in the parts we touch
    }
    let (&first, after_first) = after_tag.split_first()?;
    let (len, after_len) = if first < 0x80 {
        (usize::from(first), after_first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let len_bytes = after_first.get(..n)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, after_first.get(n..)?)
    };
    let header_len = input.len() - after_len.len();
    let total = header_len.checked_add(len)?;
    Some(DerElement {
        tag,
        header_len,
        whole: input.get(..total)?,
        rest: input.get(total..)?,
    })
}

/// An X.501 Name with one RDN per group (O) followed by the CN, all
/// UTF8String, which is what Kubernetes' x509 authenticator reads.
fn encode_subject(common_name: &str, organizations: &[&str]) -> Vec<u8> {
    let rdn = |oid: &[u8], value: &str| {
        let mut attribute = der_encode(DER_OID, oid);
        attribute.extend(der_encode(DER_UTF8_STRING, value.as_bytes()));
        der_encode(DER_SET, &der_encode(DER_SEQUENCE, &attribute))
    };
    let mut rdns = Vec::new();
    for org in organizations {
        rdns.extend(rdn(OID_ORGANIZATION, org));
    }
    rdns.extend(rdn(OID_COMMON_NAME, common_name));
    der_encode(DER_SEQUENCE, &rdns)
}

/// Returns `cert` with its subject replaced by `subject` (a DER Name) and
/// signed again by `signer`, keeping every other field.
fn replace_subject(cert: &[u8], subject: &[u8], signer: &KeyPair) -> Result<Vec<u8>, PkiError> {
    let malformed =
        || PkiError::InvalidRequest("internal error: cannot re-encode client certificate".into());

    let outer = der_split(cert).ok_or_else(malformed)?;
    let body = outer.whole.get(outer.header_len..).ok_or_else(malformed)?;
    let tbs = der_split(body).ok_or_else(malformed)?;
    let signature_algorithm = der_split(tbs.rest).ok_or_else(malformed)?;

    // TBSCertificate: [0] version, serial, signature, issuer, validity,
    // subject, ... — the subject is the sixth element (fifth without version).
    let mut fields = Vec::new();
    let mut cursor = tbs.whole.get(tbs.header_len..).ok_or_else(malformed)?;
    while !cursor.is_empty() {
        let field = der_split(cursor).ok_or_else(malformed)?;
        cursor = field.rest;
        fields.push(field);
    }
    let subject_index = match fields.first() {
        Some(f) if f.tag == DER_VERSION_TAG => 5,
        _ => 4,
    };
    if fields.get(subject_index).map(|f| f.tag) != Some(DER_SEQUENCE) {
        return Err(malformed());
    }
    let mut tbs_content = Vec::with_capacity(tbs.whole.len() + subject.len());
    for (i, field) in fields.iter().enumerate() {
        if i == subject_index {
            tbs_content.extend_from_slice(subject);
        } else {
            tbs_content.extend_from_slice(field.whole);
        }
    }
    let new_tbs = der_encode(DER_SEQUENCE, &tbs_content);

    let signature = signer.sign(&new_tbs).map_err(|source| PkiError::Generate {
        what: "a client certificate signature",
        source,
    })?;
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0); // no unused bits
    bits.extend(signature);

    let mut content = new_tbs;
    content.extend_from_slice(signature_algorithm.whole);
    content.extend(der_encode(DER_BIT_STRING, &bits));
    Ok(der_encode(DER_SEQUENCE, &content))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::user_from_certificate;
    use std::os::unix::fs::MetadataExt as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").mode() & 0o777
    }

    fn parse(der: &[u8]) -> X509Certificate<'_> {
        x509_parser::parse_x509_certificate(der).expect("parse").1
    }

    fn serving_der(dir: &Path) -> Vec<u8> {
        let bytes = fs::read(dir.join(SERVING_CERT_FILE)).expect("read serving cert");
        CertificateDer::from_pem_slice(&bytes)
            .expect("pem")
            .as_ref()
            .to_vec()
    }

    #[test]
    fn creates_and_reloads_pki_with_safe_modes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data/pki");
        let names = hosts(&[
            "localhost",
            "127.0.0.1",
            "kubernetes.default.svc",
            "10.96.0.1",
            "::1",
        ]);
        let pki = Pki::load_or_create(&dir, &names).expect("create");
        assert!(pki.can_issue_client_certs());

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(CA_KEY_FILE)), 0o600);
        assert_eq!(mode(&dir.join(SERVING_KEY_FILE)), 0o600);
        assert!(pki.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        // No temporary files are left behind.
        let entries = fs::read_dir(&dir).expect("read_dir").count();
        assert_eq!(entries, 4);

        // The CA is what we asked for.
        let ca_der = CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca pem");
        let ca = parse(&ca_der);
        let cn = ca.subject().iter_common_name().next().expect("cn");
        assert_eq!(cn.as_str().expect("utf8"), CA_COMMON_NAME);
        assert!(ca.is_ca());
        let years = (ca.validity().not_after.timestamp() - now()) / (365 * DAY_SECS);
        assert!((9..=10).contains(&years), "CA validity {years} years");

        // The serving cert is signed by the CA and names every host.
        let serving = serving_der(&dir);
        let leaf = parse(&serving);
        leaf.verify_signature(Some(ca.public_key()))
            .expect("signed by CA");
        assert_eq!(leaf.issuer(), ca.subject());
        let present = certificate_hosts(&leaf);
        for want in parse_hosts(&names).expect("hosts") {
            assert!(present.contains(&want), "{want} missing from SANs");
        }

        // Loading again reuses everything.
        let again = Pki::load_or_create(&dir, &names).expect("reload");
        assert_eq!(again.ca_pem(), pki.ca_pem());
        assert_eq!(serving_der(&dir), serving);
        // A subset of hosts does not need a new certificate either.
        Pki::load_or_create(&dir, &hosts(&["localhost"])).expect("subset");
        assert_eq!(serving_der(&dir), serving);
    }

    #[test]
    fn missing_san_reissues_serving_cert_with_same_ca() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");
        let first = Pki::load_or_create(&dir, &hosts(&["localhost"])).expect("create");
        let old = serving_der(&dir);

        let second = Pki::load_or_create(&dir, &hosts(&["localhost", "node-1", "192.168.1.7"]))
            .expect("grow");
        let new = serving_der(&dir);
        assert_ne!(old, new, "serving cert must be re-issued");
        assert_eq!(first.ca_pem(), second.ca_pem(), "CA must be kept");
        let present = certificate_hosts(&parse(&new));
        assert!(present.contains(&Host::Dns("node-1".into())));
        assert!(present.contains(&Host::Ip("192.168.1.7".parse().expect("ip"))));
        assert_eq!(mode(&dir.join(SERVING_KEY_FILE)), 0o600);
    }

    #[test]
    fn expiring_serving_cert_is_reissued() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");
        let names = hosts(&["localhost"]);
        Pki::load_or_create(&dir, &names).expect("create");

        // Replace the serving certificate with one that expires in 10 days.
        let (_, ca_der, ca_key) = load_or_create_ca(&dir).expect("ca");
        let issuer = Issuer::from_ca_cert_der(&ca_der, ca_key).expect("issuer");
        let parsed = parse_hosts(&names).expect("hosts");
        issue_serving(&dir, &issuer, &parsed, 10).expect("short cert");
        let short = serving_der(&dir);

        Pki::load_or_create(&dir, &names).expect("reload");
        let renewed = serving_der(&dir);
        assert_ne!(short, renewed, "expiring certificate must be re-issued");
        let days = (parse(&renewed).validity().not_after.timestamp() - now()) / DAY_SECS;
        assert!(
            days > RENEW_BEFORE_DAYS,
            "renewed certificate valid {days} days"
        );
    }

    #[test]
    fn ca_cert_without_key_is_an_error_naming_the_files() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");
        Pki::load_or_create(&dir, &hosts(&["localhost"])).expect("create");
        fs::remove_file(dir.join(CA_KEY_FILE)).expect("rm");
        let err = Pki::load_or_create(&dir, &hosts(&["localhost"])).expect_err("must fail");
        assert!(err.to_string().contains("ca.key"), "{err}");
    }

    #[test]
    fn bad_hosts_are_rejected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = Pki::load_or_create(tmp.path(), &hosts(&["bad host"])).expect_err("space");
        assert!(err.to_string().contains("bad host"), "{err}");
        assert!(matches!(
            Pki::load_or_create(tmp.path(), &[]),
            Err(PkiError::NoHosts)
        ));
    }

    #[test]
    fn client_cert_has_user_and_all_groups() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(tmp.path(), &hosts(&["localhost"])).expect("create");
        let (cert_pem, key_pem) = pki
            .issue_client_cert("alice", &["devs", "system:masters", "a,b"], 30)
            .expect("issue");
        assert!(key_pem.contains("PRIVATE KEY"));
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("pem");

        let ca_der = CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("ca");
        let ca = parse(&ca_der);
        let cert = parse(&der);
        cert.verify_signature(Some(ca.public_key()))
            .expect("re-signed subject verifies");
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|o| o.as_str().expect("utf8").to_string())
            .collect();
        assert_eq!(orgs, ["devs", "system:masters", "a,b"]);

        let user = user_from_certificate(&der).expect("user");
        assert_eq!(user.name, "alice");
        assert!(user.is_admin());

        assert!(pki.issue_client_cert("", &[], 1).is_err());
        assert!(pki.issue_client_cert("bob", &[], 0).is_err());
    }

    #[test]
    fn from_files_cannot_issue_and_checks_key() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("pki");
        let other = tmp.path().join("other");
        Pki::load_or_create(&dir, &hosts(&["localhost"])).expect("create");
        Pki::load_or_create(&other, &hosts(&["localhost"])).expect("create other");

        let pki = Pki::from_files(
            &dir.join(SERVING_CERT_FILE),
            &dir.join(SERVING_KEY_FILE),
            Some(&dir.join(CA_CERT_FILE)),
        )
        .expect("from files");
        assert!(matches!(
            pki.issue_client_cert("alice", &[], 1),
            Err(PkiError::NoCaKey)
        ));
        pki.server_config(None).expect("server config");

        let mismatched = Pki::from_files(
            &dir.join(SERVING_CERT_FILE),
            &other.join(SERVING_KEY_FILE),
            None,
        )
        .expect_err("wrong key");
        assert!(
            mismatched.to_string().contains("--tls-private-key-file"),
            "{mismatched}"
        );

        let missing = Pki::from_files(
            &tmp.path().join("nope.crt"),
            &dir.join(SERVING_KEY_FILE),
            None,
        )
        .expect_err("missing");
        assert!(missing.to_string().contains("nope.crt"), "{missing}");
    }

    #[test]
    fn kubeconfig_round_trips_with_mode_0600() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("kube/admin.conf");
        let b64 = base64::engine::general_purpose::STANDARD;

        write_kubeconfig(
            &path,
            "skiff",
            "https://127.0.0.1:6443",
            "CA PEM",
            "admin",
            Credentials::ClientCertificate {
                cert_pem: "CERT".into(),
                key_pem: "KEY".into(),
            },
        )
        .expect("write");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("parent")), 0o700);

        let text = fs::read_to_string(&path).expect("read");
        let parsed: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        assert_eq!(parsed["apiVersion"], "v1");
        assert_eq!(parsed["kind"], "Config");
        assert_eq!(parsed["current-context"], "admin@skiff");
        assert_eq!(parsed["clusters"][0]["name"], "skiff");
        let cluster = &parsed["clusters"][0]["cluster"];
        assert_eq!(cluster["server"], "https://127.0.0.1:6443");
        assert_eq!(cluster["certificate-authority-data"], b64.encode("CA PEM"));
        let user = &parsed["users"][0];
        assert_eq!(user["name"], "admin");
        assert_eq!(user["user"]["client-certificate-data"], b64.encode("CERT"));
        assert_eq!(user["user"]["client-key-data"], b64.encode("KEY"));
        assert!(user["user"].get("token").is_none());
        let context = &parsed["contexts"][0];
        assert_eq!(context["name"], "admin@skiff");
        assert_eq!(context["context"]["cluster"], "skiff");
        assert_eq!(context["context"]["user"], "admin");

        // Overwriting with a token keeps the mode and drops the cert fields.
        write_kubeconfig(
            &path,
            "skiff",
            "https://127.0.0.1:6443",
            "CA PEM",
            "admin",
            Credentials::Token("tok: en#1".into()),
        )
        .expect("rewrite");
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).expect("read");
        let parsed: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        assert_eq!(parsed["users"][0]["user"]["token"], "tok: en#1");
        assert!(parsed["users"][0]["user"].get("client-key-data").is_none());
    }

    /// What the test server saw on one connection.
    type Seen = Result<(Option<crate::authn::UserInfo>, Option<Vec<u8>>), String>;

    fn client_config(ca_pem: &str, client: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.expect("ca pem")).expect("add root");
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
        let mut config = match client {
            Some((cert_pem, key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("chain");
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }

    /// Connects to `addr` as `server_name`, then waits for the server's
    /// "ok". Returns whether it arrived.
    async fn connect(
        addr: std::net::SocketAddr,
        server_name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> bool {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).expect("name");
        let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
        else {
            return false;
        };
        // With TLS 1.3 the server judges the client certificate after the
        // client considers the handshake done, so a rejection shows up here.
        let mut buf = [0u8; 2];
        let got = tls.read_exact(&mut buf).await.is_ok() && &buf == b"ok";
        let _ = tls.shutdown().await;
        got
    }

    #[tokio::test]
    async fn tls_handshake_with_optional_client_certificates() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(&tmp.path().join("pki"), &hosts(&["localhost", "127.0.0.1"]))
            .expect("pki");
        let foreign =
            Pki::load_or_create(&tmp.path().join("foreign"), &hosts(&["localhost"])).expect("pki2");

        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(
            pki.server_config(None).expect("server config"),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Seen>();
        let server = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let seen = match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let (_, conn) = tls.get_ref();
                        let user = conn
                            .peer_certificates()
                            .and_then(|certs| certs.first())
                            .and_then(|cert| user_from_certificate(cert));
                        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
                        let _ = tls.write_all(b"ok").await;
                        let _ = tls.flush().await;
                        Ok((user, alpn))
                    }
                    Err(e) => Err(e.to_string()),
                };
                if tx.send(seen).is_err() {
                    return;
                }
            }
        });

        // 1. alice with a certificate from the cluster CA, by DNS name.
        let (cert, key) = pki.issue_client_cert("alice", &["devs"], 1).expect("alice");
        assert!(
            connect(
                addr,
                "localhost",
                client_config(pki.ca_pem(), Some((&cert, &key)))
            )
            .await
        );
        let (user, alpn) = rx.recv().await.expect("seen").expect("handshake ok");
        let user = user.expect("peer certificate");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["devs", crate::authn::GROUP_AUTHENTICATED]);
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

        // 2. No client certificate, by IP address: still fine (token auth).
        assert!(connect(addr, "127.0.0.1", client_config(pki.ca_pem(), None)).await);
        let (user, _) = rx.recv().await.expect("seen").expect("handshake ok");
        assert!(user.is_none());

        // 3. A certificate from another CA is refused.
        let (cert, key) = foreign
            .issue_client_cert("mallory", &["system:masters"], 1)
            .expect("m");
        assert!(
            !connect(
                addr,
                "localhost",
                client_config(pki.ca_pem(), Some((&cert, &key)))
            )
            .await
        );
        let refused = rx.recv().await.expect("seen");
        assert!(refused.is_err(), "foreign client certificate was accepted");

        // 4. A client trusting only the other CA refuses our server.
        assert!(!connect(addr, "localhost", client_config(foreign.ca_pem(), None)).await);
        let _ = rx.recv().await;

        server.abort();
    }

    #[test]
    fn extra_client_ca_file_is_used_and_checked() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(&tmp.path().join("a"), &hosts(&["localhost"])).expect("a");
        Pki::load_or_create(&tmp.path().join("b"), &hosts(&["localhost"])).expect("b");
        pki.server_config(Some(&tmp.path().join("b").join(CA_CERT_FILE)))
            .expect("extra CA");

        let empty = tmp.path().join("empty.pem");
        fs::write(&empty, "").expect("write");
        let err = pki.server_config(Some(&empty)).expect_err("empty bundle");
        assert!(err.to_string().contains("--client-ca-file"), "{err}");
        assert!(err.to_string().contains("empty.pem"), "{err}");
    }

    #[test]
    fn pki_can_be_shared_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Pki>();
        assert_send_sync::<crate::authn::TokenFile>();
    }

    #[test]
    fn der_length_encoding_round_trips() {
        for len in [0usize, 1, 127, 128, 255, 256, 65_535, 70_000] {
            let content = vec![7u8; len];
            let encoded = der_encode(DER_SEQUENCE, &content);
            let el = der_split(&encoded).expect("split");
            assert_eq!(el.tag, DER_SEQUENCE);
            assert_eq!(el.whole.len(), encoded.len());
            assert!(el.rest.is_empty());
            assert_eq!(&el.whole[el.header_len..], &content[..]);
        }
        assert!(der_split(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(der_split(&[0x30, 0x05, 1]).is_none());
        assert!(der_split(&[]).is_none());
    }
}
