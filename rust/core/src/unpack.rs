//! Safe streaming layer application (tar, gzip, zstd, OCI whiteouts). Filled in by the
//! "Rust layer engine" work.
