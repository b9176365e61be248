//! Endpoints and EndpointSlices: for every Service with a selector, which
//! pods serve it, at which addresses and ports, and whether they are ready.
//!
//! - [`address`]: which pods back a Service and the ports they resolve to
//!   (shared by both controllers).
//! - [`subsets`]: the core/v1 Endpoints object, as a pure plan.
//! - [`slices`]: the discovery.k8s.io/v1 EndpointSlices, as a pure plan.
//! - [`controller`]: the two loops that apply them.
//! - [`mirroring`] and [`mirror_controller`]: a Service without a selector
//!   has Endpoints its user writes; they are mirrored into EndpointSlices
//!   (what the proxy and DNS read), as a pure plan and its loop.
//!
//! The Endpoints of Services without a selector are the user's: only
//! mirrored, never written. A deleted Service's Endpoints are deleted by the Endpoints
//! controller (as upstream); its slices by the garbage collector, through
//! their ownerReference.

pub mod address;
pub mod controller;
pub mod mirror_controller;
pub mod mirroring;
pub mod slices;
pub mod subsets;
