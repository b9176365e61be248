//! Cluster DNS, served by every node's proxy: `<svc>.<ns>.svc.<domain>` and
//! the other names of [`zone`], from the same Services and EndpointSlices
//! the rules come from; everything else forwarded to the node's resolvers
//! ([`upstream`]). Pods reach it at the cluster DNS Service IP, which
//! [`link`] makes local to the node.
//!
//! Where to start: [`Dns::start`], then [`server::ClusterDns`].

pub mod link;
pub mod server;
pub mod upstream;
pub mod zone;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use self::link::Links;
use self::zone::Zone;

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    pub address: IpAddr,
    pub port: u16,
    pub domain: String,
    /// The interface the address goes on when it is not local yet (`lo`,
    /// or a dummy interface of that name).
    pub interface: String,
    pub upstreams: Vec<SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Link(#[from] link::LinkError),
}

/// The running server.
pub struct Dns {
    zone: Arc<RwLock<Zone>>,
    server: hickory_server::Server<server::ClusterDns>,
    /// Where we put the address (taken off on stop).
    made: Option<(String, IpAddr)>,
    links: Arc<dyn Links>,
    pub local: SocketAddr,
}

async fn bind(
    addr: SocketAddr,
) -> std::io::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let udp = tokio::net::UdpSocket::bind(addr).await?;
    // Port 0: TCP on the port UDP got.
    let tcp = tokio::net::TcpListener::bind(udp.local_addr()?).await?;
    Ok((udp, tcp))
}

impl Dns {
    /// Binds UDP and TCP on the address (first putting it on the dummy
    /// interface if the node does not have it) and serves an empty zone
    /// until [`Dns::update`].
    pub async fn start(settings: &DnsSettings, links: Arc<dyn Links>) -> Result<Dns, DnsError> {
        let addr = SocketAddr::new(settings.address, settings.port);
        let listen = |source| DnsError::Listen { addr, source };
        let mut made = None;
        let (udp, tcp) = match bind(addr).await {
            Ok(pair) => pair,
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                links.add(&settings.interface, settings.address)?;
                made = Some((settings.interface.clone(), settings.address));
                bind(addr).await.map_err(listen)?
            }
            Err(e) => return Err(listen(e)),
        };
        let local = udp.local_addr().map_err(listen)?;
        let zone = Arc::new(RwLock::new(Zone::build(&settings.domain, &[], &[])));
        let mut server = hickory_server::Server::new(server::ClusterDns {
            zone: zone.clone(),
            upstreams: settings.upstreams.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        tracing::info!(%local, domain = %settings.domain, upstreams = ?settings.upstreams, "serving cluster DNS");
        Ok(Dns {
            zone,
            server,
            made,
            links,
            local,
        })
    }

    /// Answers from `zone` from now on.
    pub fn update(&self, zone: Zone) {
        *self.zone.write().unwrap_or_else(|e| e.into_inner()) = zone;
    }

    /// Stops serving and takes the address off again.
    pub async fn stop(mut self) {
        let _ = self.server.shutdown_gracefully().await;
        if let Some((name, ip)) = &self.made
            && let Err(e) = self.links.remove(name, *ip)
        {
            tracing::warn!(error = %e, "cannot remove the cluster DNS interface");
        }
    }
}
