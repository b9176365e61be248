//! Output printers, each matching kubectl's byte for byte: `tabwriter`
//! (column alignment of Go's text/tabwriter as kubectl configures it),
//! `yaml` (go-yaml v2's style via sigs.k8s.io/yaml), `json` (Go's
//! `MarshalIndent` with four spaces), `jsonpath` and `custom_columns`;
//! and `field_diff`, skiffctl's own, for `get -w --diff`, and `colour` for
//! skiffctl's own outputs on a terminal.

pub mod colour;
pub mod custom_columns;
pub mod field_diff;
pub mod json;
pub mod jsonpath;
pub mod tabwriter;
pub mod yaml;
