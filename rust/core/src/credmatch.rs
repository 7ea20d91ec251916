//! Kubernetes' credential-key matching (glob host labels + path prefix). Filled in by the
//! "Credentials" work.
