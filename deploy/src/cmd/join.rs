//! `skiff join https://<server>:6443 --token …`: make this machine a worker
//! of a `skiff server`. It checks the server against the token's CA hash,
//! trades the token for a node certificate ([`crate::join::client`]),
//! writes `kubelet.kubeconfig` and the worker's settings, then starts its
//! kubelet and proxy under the supervisor and waits for its Node to be
//! Ready. Run again (or `skiff up`) on a joined data dir, it just starts.

use std::process::ExitCode;

use crate::cluster::{DataDir, Settings};
use crate::join::token::Token;
use crate::{Error, Result};

#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    /// The server's API URL, as `skiff server` printed it.
    pub server: String,
    /// The join token (`skiff token create` on the server).
    #[arg(long, env = "SKIFF_TOKEN")]
    pub token: String,
    /// This machine's address on the lab network (the one the server and
    /// the other nodes reach it at).
    #[arg(long, env = "SKIFF_NODE_IP", required_unless_present = "iface")]
    pub node_ip: Option<String>,
    /// Or: the lab network's interface, whose first IPv4 address is taken.
    #[arg(long, env = "SKIFF_IFACE", conflicts_with = "node_ip")]
    pub iface: Option<String>,
    /// The Node's name (default: this machine's host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// The kubelet API's port.
    #[arg(long, default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Names this machine's host objects: CNI bridge `<name>0`.
    #[arg(long, default_value = "skiff")]
    pub name: String,
    #[arg(long)]
    pub foreground: bool,
    #[command(flatten)]
    pub data: DataDir,
}

pub fn join(a: &JoinArgs) -> Result<ExitCode> {
    let l = a.data.layout()?;
    if let Some(s) = l.load_settings() {
        if s.join.as_deref() != Some(a.server.as_str()) {
            return Err(Error::Failed(format!(
                "{} already holds {}; skiff reset --data-dir {} first",
                l.data.display(),
                match &s.join {
                    Some(other) => format!("a worker of {other}"),
                    None => "a cluster".into(),
                },
                l.data.display()
            )));
        }
        println!(
            "skiff: already joined to {} as {}",
            a.server,
            s.node_name.as_deref().unwrap_or("?")
        );
        return super::up::start(&s, &l, a.foreground);
    }
    let token = Token::parse(&a.token)?;
    let node_ip = match (&a.node_ip, &a.iface) {
        (Some(ip), _) => ip.clone(),
        (None, Some(iface)) => crate::cluster::iface_address(iface)?,
        (None, None) => {
            return Err(Error::Failed(
                "--node-ip or --iface: this machine's address on the lab network".into(),
            ));
        }
    };
    let node = match &a.node_name {
        Some(n) => n.clone(),
        None => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().to_lowercase())
            .map_err(|e| {
                Error::Failed(format!("this machine's host name: {e}; pass --node-name"))
            })?,
    };
    let (_, port) = crate::join::client::host_port(&a.server)?;
    let rt = tokio::runtime::Runtime::new().map_err(Error::io("tokio"))?;
    let joined = rt.block_on(crate::join::client::join(
        &a.server, &token, &node, &node_ip,
    ))?;
    println!("skiff: the server's CA matches the token; node {node} has its certificates");
    std::fs::create_dir_all(&l.data).map_err(Error::io(l.data.display().to_string()))?;
    // Where the kubelet looks for its serving certificate before making a
    // self-signed one: this one is signed by the cluster CA.
    let pki = l.kubelet_root().join("pki");
    write_private(&pki, "kubelet.crt", &joined.serving_cert_pem, 0o644)?;
    write_private(&pki, "kubelet.key", &joined.serving_key_pem, 0o600)?;
    skiff_apiserver::pki::write_kubeconfig(
        &l.node_kubeconfig(),
        "skiff",
        a.server.trim_end_matches('/'),
        &joined.ca_pem,
        &format!("system:node:{node}"),
        skiff_apiserver::pki::Credentials::ClientCertificate {
            cert_pem: joined.cert_pem,
            key_pem: joined.key_pem,
        },
    )
    .map_err(|e| Error::Failed(format!("write {}: {e}", l.node_kubeconfig().display())))?;
    let s = Settings {
        port,
        node_ip,
        pod_subnet: joined.pod_subnet,
        name: a.name.clone(),
        kubelet_port: a.kubelet_port,
        join: Some(a.server.clone()),
        node_name: Some(node),
        ..Settings::default()
    };
    s.validate()?;
    l.save_settings(&s)?;
    super::up::start(&s, &l, a.foreground)
}

/// Writes `text` to `dir/name` with `mode`, `dir` made 0700.
fn write_private(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::create_dir_all(dir).map_err(Error::io(dir.display().to_string()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(Error::io(dir.display().to_string()))?;
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(mode)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(Error::io(path.display().to_string()))
}
