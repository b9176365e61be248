//! HTTP plumbing: serving, middleware, paths, content negotiation, bodies.

pub mod body;
pub mod middleware;
pub mod negotiate;
pub mod request;
pub mod serve;
pub mod system;
