//! The result of a CNI ADD (spec 1.0 "Success" object): the interfaces a
//! plugin made, the IPs it gave them, routes and DNS. The chain passes the
//! raw JSON from plugin to plugin untouched (plugins may add fields this
//! runtime does not know); this typed view is what the runtime *reads* from
//! the final result: the pod IP, and the host-side veth for diagnostics.

use serde::Deserialize;
use serde_json::Value;

use super::CniError;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    #[serde(default)]
    pub cni_version: String,
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    /// The netns path for interfaces inside the sandbox; empty on the host.
    #[serde(default)]
    pub sandbox: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct IpConfig {
    /// `10.244.0.5/24`.
    pub address: String,
    #[serde(default)]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default)]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default)]
    pub gw: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Dns {
    #[serde(default)]
    pub nameservers: Vec<String>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl CniResult {
    pub fn from_value(v: &Value) -> Result<CniResult, CniError> {
        let r: CniResult = serde_json::from_value(v.clone()).map_err(|e| CniError::BadResult {
            why: e.to_string(),
            result: v.clone(),
        })?;
        for ip in &r.ips {
            if let Some(i) = ip.interface
                && i >= r.interfaces.len()
            {
                return Err(CniError::BadResult {
                    why: format!(
                        "ip {} names interface {i} of {}",
                        ip.address,
                        r.interfaces.len()
                    ),
                    result: v.clone(),
                });
            }
        }
        Ok(r)
    }

    /// The IPs without prefix length, IPv4 first (the pod IP Kubernetes
    /// reports first), then IPv6.
    pub fn pod_ips(&self) -> Vec<String> {
        let bare = |a: &str| a.split('/').next().unwrap_or_default().to_string();
        let (v4, v6): (Vec<String>, Vec<String>) = self
            .ips
            .iter()
            .map(|ip| bare(&ip.address))
            .filter(|ip| !ip.is_empty())
            .partition(|ip| ip.contains('.'));
        v4.into_iter().chain(v6).collect()
    }

    /// Host-side interfaces (no `sandbox`): the bridge and the veth ends.
    pub fn host_interfaces(&self) -> impl Iterator<Item = &str> {
        self.interfaces
            .iter()
            .filter(|i| i.sandbox.is_empty())
            .map(|i| i.name.as_str())
    }
}

/// The first IPv4 address of a CNI result, without its prefix length.
pub fn pod_ip(result: &Value) -> Result<String, CniError> {
    CniResult::from_value(result)?
        .pod_ips()
        .into_iter()
        .find(|ip| ip.contains('.'))
        .ok_or_else(|| CniError::NoIp(result.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_bridge_result() {
        // What Debian's bridge + host-local print for CNI 1.0.0.
        let v = json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "skb1", "mac": "aa:bb:cc:dd:ee:01"},
                           {"name": "veth1234", "mac": "aa:bb:cc:dd:ee:02"},
                           {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03", "sandbox": "/run/x/net"}],
            "ips": [{"interface": 2, "address": "10.244.7.2/24", "gateway": "10.244.7.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.7.1"}],
            "dns": {}});
        let r = CniResult::from_value(&v).unwrap();
        assert_eq!(r.pod_ips(), ["10.244.7.2"]);
        assert_eq!(
            r.host_interfaces().collect::<Vec<_>>(),
            ["skb1", "veth1234"]
        );
        assert_eq!(r.routes[0].gw.as_deref(), Some("10.244.7.1"));
        assert_eq!(pod_ip(&v).unwrap(), "10.244.7.2");
    }

    #[test]
    fn ipv4_first_and_bad_results_say_why() {
        let v = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.1.2.3/16"}]});
        assert_eq!(pod_ip(&v).unwrap(), "10.1.2.3");
        assert_eq!(
            CniResult::from_value(&v).unwrap().pod_ips(),
            ["10.1.2.3", "fd00::5"]
        );
        assert!(matches!(
            pod_ip(&json!({"ips": []})),
            Err(CniError::NoIp(_))
        ));
        let err = pod_ip(&json!({"ips": [{"address": 5}]})).unwrap_err();
        assert!(
            err.to_string().starts_with("CNI result: invalid type"),
            "{err}"
        );
        let err = pod_ip(&json!({"ips": [{"address": "10.0.0.2/8", "interface": 3}]})).unwrap_err();
        assert!(err.to_string().contains("names interface 3 of 0"), "{err}");
    }
}
