//! `skiff-apiserver`: the Kubernetes API that kubectl drives.
pub mod error;
pub mod object;
pub mod registry;
pub mod selectors;
pub mod validation;
