// SPDX-License-Identifier: GPL-2.0

//! The Maglev core of `ip_vs_mh_rs` as a `no_std` userspace crate.
//!
//! All the code lives in `maglev.rs`, the very file the kernel module
//! compiles as its `maglev` module; this crate only re-exports it so that
//! tests, benchmarks and `mhsim` use the same code.
#![no_std]
#![forbid(unsafe_code)]

#[path = "maglev.rs"]
mod core_src;

pub use core_src::*;
