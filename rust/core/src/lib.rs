//! The pure-Rust core of ocistore. No PyO3 here: everything is testable, fuzzable and
//! benchmarkable on its own; `rust/python` only converts types and releases the GIL.

pub mod credmatch;
pub mod digest;
pub mod httphead;
pub mod unpack;
