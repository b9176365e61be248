//! The container engine (the part that plays runc's role): [`spec`] writes a
//! standard OCI `config.json`, [`bundle`] reads one, [`run`] runs it —
//! namespaces, [`cgroups`], mounts, pivot_root, user and capabilities.

pub mod bench;
pub mod bundle;
pub mod cgroups;
pub mod run;
pub mod shim;
pub mod spec;
