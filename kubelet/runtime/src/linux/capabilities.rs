//! The process's capability sets from the spec's `process.capabilities`.
//! Two steps around the user switch: the bounding set is cut while still
//! root (it needs CAP_SETPCAP), the other sets are set after setuid (with
//! keepcaps on, so a non-root user keeps what the spec grants, as runc
//! does).

use std::str::FromStr;

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::syscalls::Syscalls;
use super::{Result, SysError};

/// The `caps` crate's set for an OCI set (`CAP_CHOWN` …).
pub fn to_caps(set: &Option<Capabilities>) -> Result<CapsHashSet> {
    let mut out = CapsHashSet::new();
    for c in set.iter().flatten() {
        let name = format!("CAP_{c}");
        let cap = Capability::from_str(&name)
            .map_err(|_| SysError::other("capabilities", format!("unknown capability {name}")))?;
        out.insert(cap);
    }
    Ok(out)
}

/// Drops from the bounding set every capability of `supported` (what the
/// kernel knows) that the spec does not list.
pub fn drop_bounding(
    sys: &dyn Syscalls,
    c: &LinuxCapabilities,
    supported: &CapsHashSet,
) -> Result<()> {
    let keep = to_caps(c.bounding())?;
    let mut drop: Vec<Capability> = supported.difference(&keep).copied().collect();
    drop.sort_by_key(|c| c.index());
    for cap in drop {
        sys.drop_bounding(cap)?;
    }
    Ok(())
}

/// After the user switch: inheritable, effective, permitted, then ambient.
/// Inheritable first, while permitted is still full (it may only grow
/// within permitted); effective before permitted, so effective is a subset
/// of permitted at every step.
pub fn apply(sys: &dyn Syscalls, c: &LinuxCapabilities) -> Result<()> {
    let (inheritable, effective, permitted) = (
        to_caps(c.inheritable())?,
        to_caps(c.effective())?,
        to_caps(c.permitted())?,
    );
    sys.set_caps(CapSet::Inheritable, &inheritable)?;
    sys.set_caps(CapSet::Effective, &effective)?;
    sys.set_caps(CapSet::Permitted, &permitted)?;
    // An ambient capability must be permitted and inheritable; like runc,
    // raise what can be and skip the rest.
    let mut ambient: Vec<Capability> = to_caps(c.ambient())?
        .into_iter()
        .filter(|a| inheritable.contains(a) && permitted.contains(a))
        .collect();
    ambient.sort_by_key(|c| c.index());
    for cap in ambient {
        sys.raise_ambient(cap)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux::syscalls::RecordingSyscalls;
    use oci_spec::runtime::{Capability as Oci, LinuxCapabilitiesBuilder};

    fn set(c: &[Oci]) -> Capabilities {
        c.iter().copied().collect()
    }

    #[test]
    fn bounding_keeps_only_the_listed() {
        let c = LinuxCapabilitiesBuilder::default()
            .bounding(set(&[Oci::Chown, Oci::Kill]))
            .build()
            .unwrap();
        let supported: CapsHashSet = [
            Capability::CAP_CHOWN,
            Capability::CAP_KILL,
            Capability::CAP_SYS_ADMIN,
            Capability::CAP_NET_ADMIN,
        ]
        .into_iter()
        .collect();
        let sys = RecordingSyscalls::new();
        drop_bounding(&sys, &c, &supported).unwrap();
        assert_eq!(
            sys.calls(),
            ["drop-bounding CAP_NET_ADMIN", "drop-bounding CAP_SYS_ADMIN"]
        );
    }

    #[test]
    fn sets_in_a_safe_order_and_ambient_only_when_allowed() {
        let c = LinuxCapabilitiesBuilder::default()
            .effective(set(&[Oci::Chown]))
            .permitted(set(&[Oci::Chown, Oci::NetBindService]))
            .inheritable(set(&[Oci::NetBindService]))
            .ambient(set(&[Oci::NetBindService, Oci::Chown]))
            .build()
            .unwrap();
        let sys = RecordingSyscalls::new();
        apply(&sys, &c).unwrap();
        assert_eq!(
            sys.calls(),
            [
                "caps Inheritable CAP_NET_BIND_SERVICE",
                "caps Effective CAP_CHOWN",
                "caps Permitted CAP_CHOWN,CAP_NET_BIND_SERVICE",
                "ambient CAP_NET_BIND_SERVICE",
            ]
        );
    }
}
