//! `skiff-apiserver`: the Kubernetes API that kubectl drives.
pub mod admission;
pub mod authn;
pub mod error;
pub mod handlers;
pub mod http;
pub mod object;
pub mod pki;
pub mod protobuf;
pub mod registry;
pub mod selectors;
pub mod storage;
pub mod validation;
