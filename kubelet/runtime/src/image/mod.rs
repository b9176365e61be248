//! Images: references, the content-addressed blob store, imports (OCI
//! layouts, `docker save`), registry pulls, and layers unpacked once into
//! overlayfs-ready directories.
//!
//! The container code needs one call: [`ImageStore::prepare`] turns an image
//! name into the ordered overlayfs lower dirs and the image config
//! (Entrypoint, Cmd, Env, WorkingDir, User).
//!
//! ```no_run
//! # fn main() -> Result<(), skiff_runtime::image::ImageError> {
//! use skiff_runtime::image::{ImageStore, import_dir};
//! let store = ImageStore::open("/var/lib/skiff/images")?;
//! import_dir(&store, "/var/lib/skiff/images-to-import".as_ref())?;
//! let prepared = store.prepare("skiff/busybox")?;
//! let lowerdir = prepared.lowerdir_option(); // "top:...:bottom"
//! let argv = prepared.config.default_argv();
//! # let _ = (lowerdir, argv); Ok(()) }
//! ```
//!
//! Files, one concept each: [`reference`] (names), [`digest`],
//! [`blobs`] (the blob store), [`manifest`] (manifests and indexes),
//! [`config`] (image config), [`store`] (the image index), [`import`],
//! [`unpack`] (one layer tar → overlayfs form), [`layers`] (unpacked layers,
//! once each), [`gc`] (removal of what no image uses), [`pull`] (registry
//! client) with [`auth`] (credentials, challenges) and [`registry`] (HTTP).

pub mod auth;
pub mod blobs;
pub mod config;
pub mod digest;
pub mod error;
pub mod gc;
pub mod import;
pub mod layers;
pub mod manifest;
pub mod pull;
pub mod reference;
pub mod registry;
pub mod store;
pub mod unpack;

pub use auth::{Credentials, Login};
pub use config::ImageConfig;
pub use digest::Digest;
pub use error::ImageError;
pub use gc::{DiskUsage, GcPolicy, GcReport, InUse, StatvfsUsage};
pub use import::{ImportReport, import_archive, import_dir, import_oci_dir, import_path};
pub use manifest::Platform;
pub use pull::{PullOptions, pull};
pub use reference::Reference;
pub use store::{Image, ImageLayer, ImageStore, PreparedImage, Removed, StoreOptions};
