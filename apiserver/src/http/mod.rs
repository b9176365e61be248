//! HTTP plumbing: paths, content negotiation, bodies.

pub mod body;
pub mod negotiate;
pub mod request;
