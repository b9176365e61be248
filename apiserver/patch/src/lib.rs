//! skiff-patch: being written.
