//! Which address the Node reports. On a lab VM with a NAT interface (the same
//! 10.0.2.15 on every VM) and a host-only or bridged one, taking "the first
//! address" makes every node report the same IP and breaks pod traffic across
//! nodes. So: `--node-ip` wins and must be one of this machine's addresses;
//! without it the address of the interface holding the default route is taken,
//! and the log names every other candidate with the flag to choose it.

use std::net::IpAddr;

/// One address of one interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub interface: String,
    pub ip: IpAddr,
}

/// The address chosen, why, and what else there was.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub ip: IpAddr,
    pub why: String,
    pub others: Vec<Candidate>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AddressError {
    #[error("--node-ip {ip} is not an address of this machine (it has: {have})")]
    NotLocal { ip: IpAddr, have: String },
    #[error("no address to report: no default route and no non-loopback address; pass --node-ip")]
    NoAddress,
}

fn usable(c: &Candidate) -> bool {
    match c.ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
        // IPv4 only for now: the pod network is IPv4.
        IpAddr::V6(_) => false,
    }
}

/// Chooses among `candidates` (every interface address) given `--node-ip` and
/// the interface of the default route.
pub fn choose(
    node_ip: Option<IpAddr>,
    candidates: &[Candidate],
    default_route: Option<&str>,
) -> Result<Choice, AddressError> {
    let usable: Vec<&Candidate> = candidates.iter().filter(|c| usable(c)).collect();
    let others = |ip: IpAddr| {
        usable
            .iter()
            .filter(|c| c.ip != ip)
            .map(|c| (*c).clone())
            .collect::<Vec<_>>()
    };
    if let Some(ip) = node_ip {
        // Loopback is accepted when asked for: a one-machine cluster can run on it.
        if candidates.iter().any(|c| c.ip == ip) {
            return Ok(Choice {
                ip,
                why: "--node-ip".into(),
                others: others(ip),
            });
        }
        let have = candidates
            .iter()
            .map(|c| format!("{} on {}", c.ip, c.interface))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(AddressError::NotLocal { ip, have });
    }
    let by_route = default_route.and_then(|iface| usable.iter().find(|c| c.interface == iface));
    let (chosen, why) = match by_route {
        Some(c) => (*c, format!("the default route's interface {}", c.interface)),
        None => match usable.first() {
            Some(c) => (
                *c,
                format!("the first address, on {} (no default route)", c.interface),
            ),
            None => return Err(AddressError::NoAddress),
        },
    };
    Ok(Choice {
        ip: chosen.ip,
        why,
        others: others(chosen.ip),
    })
}

/// The interface of the IPv4 default route, from `/proc/net/route`.
pub fn default_route_interface(route_table: &str) -> Option<String> {
    route_table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace();
        let iface = fields.next()?;
        let destination = fields.next()?;
        let _gateway = fields.next()?;
        let _flags = fields.next()?;
        // fields: Iface Destination Gateway Flags RefCnt Use Metric Mask …
        let mask = line.split_whitespace().nth(7)?;
        (destination == "00000000" && mask == "00000000").then(|| iface.to_string())
    })
}

/// Every address of every interface of this machine.
pub fn local_candidates() -> Vec<Candidate> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| {
            let addr = a.address?;
            let ip = if let Some(v4) = addr.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else {
                IpAddr::V6(addr.as_sockaddr_in6()?.ip())
            };
            Some(Candidate {
                interface: a.interface_name,
                ip,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(interface: &str, ip: &str) -> Candidate {
        Candidate {
            interface: interface.into(),
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn choices() {
        // The classic lab VM: NAT on enp0s3 (default route), the lab net on enp0s8.
        let vm = [
            c("lo", "127.0.0.1"),
            c("enp0s3", "10.0.2.15"),
            c("enp0s8", "192.168.56.11"),
            c("enp0s8", "fe80::1"),
        ];
        let by_route = choose(None, &vm, Some("enp0s3")).unwrap();
        assert_eq!(by_route.ip, "10.0.2.15".parse::<IpAddr>().unwrap());
        assert_eq!(by_route.why, "the default route's interface enp0s3");
        assert_eq!(by_route.others, vec![c("enp0s8", "192.168.56.11")]);

        let asked = choose(Some("192.168.56.11".parse().unwrap()), &vm, Some("enp0s3")).unwrap();
        assert_eq!(asked.ip, "192.168.56.11".parse::<IpAddr>().unwrap());
        assert_eq!(asked.why, "--node-ip");

        let loopback = choose(Some("127.0.0.1".parse().unwrap()), &vm, None).unwrap();
        assert_eq!(loopback.ip, "127.0.0.1".parse::<IpAddr>().unwrap());

        let err = choose(Some("10.9.9.9".parse().unwrap()), &vm, None).unwrap_err();
        assert!(matches!(err, AddressError::NotLocal { .. }));
        assert!(err.to_string().contains("192.168.56.11 on enp0s8"), "{err}");

        let no_route = choose(None, &vm, None).unwrap();
        assert_eq!(no_route.ip, "10.0.2.15".parse::<IpAddr>().unwrap());
        assert!(no_route.why.contains("no default route"));

        assert_eq!(
            choose(None, &[c("lo", "127.0.0.1")], None),
            Err(AddressError::NoAddress)
        );
    }

    #[test]
    fn default_route_from_proc() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     enp0s8\t0038A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                     enp0s3\t00000000\t0202000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(table), Some("enp0s3".into()));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }
}
