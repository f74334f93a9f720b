// SPDX-License-Identifier: GPL-2.0

//! The binding layer: what the module uses of IPVS and the kernel, behind
//! small safe APIs.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)
//!
//! All of the module's `unsafe` code lives in this directory, one
//! abstraction per file, none of which knows the scheduler it serves:
//!
//! - [`scheduler`]: an IPVS scheduler's registration, per-service state and
//!   callbacks;
//! - [`service`]: a virtual service, from the control path and from the
//!   packet path;
//! - [`dest`]: real servers, and the references a published table holds;
//! - [`packet`]: the client a packet is scheduled on;
//! - [`rcu`]: values published to RCU readers and retired after a grace
//!   period;
//! - [`percpu`]: per-CPU counters;
//! - [`pernet`]: per-network-namespace state with a `/proc/net` file;
//! - [`work`]: delayed work items;
//! - `params`: the module's boolean parameters, where the kernel crate
//!   cannot declare them (before Linux 7.3).
//!
//! The raw declarations are generated at build time by bindgen from the
//! target kernel's headers (`generated.rs`); `layout.rs` holds the offsets
//! the C compiler computed for the same fields, and the `const` assertions
//! below refuse to build if the two disagree; a field of a structure bindgen
//! leaves opaque (`struct sk_buff`) is read at its `layout.rs` offset.
//! `helpers.c` wraps the static inline functions and macros that Rust cannot
//! call.

pub(crate) mod dest;
pub(crate) mod packet;
#[cfg(not(mh_rs_rust_bool_params))]
pub(crate) mod params;
pub(crate) mod percpu;
pub(crate) mod pernet;
pub(crate) mod rcu;
pub(crate) mod scheduler;
pub(crate) mod service;
pub(crate) mod work;

#[allow(
    clippy::all,
    clippy::as_underscore,
    clippy::cast_lossless,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unreachable_pub,
    unsafe_op_in_unsafe_fn
)]
mod raw {
    use kernel::ffi;

    // bindgen's parameters blocklist these, as rust/bindgen_parameters does.
    type __kernel_size_t = usize;
    type __kernel_ssize_t = isize;
    type __kernel_ptrdiff_t = isize;

    include!(concat!(env!("MH_RS_OUT"), "/bindings/generated.rs"));
}

// Read by the `const` assertions below (which the dead-code lint does not
// count as uses), and for the fields of opaque structures read by offset.
#[allow(dead_code)]
mod layout {
    include!(concat!(env!("MH_RS_OUT"), "/bindings/layout.rs"));
}

// The fields read through bindgen's declarations are where C put them.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<raw::ip_vs_service>() == layout::SVC_SIZE);
    assert!(offset_of!(raw::ip_vs_service, af) == layout::SVC_AF);
    assert!(offset_of!(raw::ip_vs_service, protocol) == layout::SVC_PROTOCOL);
    assert!(offset_of!(raw::ip_vs_service, addr) == layout::SVC_ADDR);
    assert!(offset_of!(raw::ip_vs_service, fwmark) == layout::SVC_FWMARK);
    assert!(offset_of!(raw::ip_vs_service, port) == layout::SVC_PORT);
    assert!(offset_of!(raw::ip_vs_service, flags) == layout::SVC_FLAGS);
    assert!(offset_of!(raw::ip_vs_service, sched_data) == layout::SVC_SCHED_DATA);
    assert!(offset_of!(raw::ip_vs_service, num_dests) == layout::SVC_NUM_DESTS);
    assert!(offset_of!(raw::ip_vs_service, destinations) == layout::SVC_DESTINATIONS);
    assert!(size_of::<raw::ip_vs_dest>() == layout::DEST_SIZE);
    assert!(offset_of!(raw::ip_vs_dest, af) == layout::DEST_AF);
    assert!(offset_of!(raw::ip_vs_dest, port) == layout::DEST_PORT);
    assert!(offset_of!(raw::ip_vs_dest, addr) == layout::DEST_ADDR);
    assert!(offset_of!(raw::ip_vs_dest, flags) == layout::DEST_FLAGS);
    assert!(offset_of!(raw::ip_vs_dest, weight) == layout::DEST_WEIGHT);
    assert!(offset_of!(raw::ip_vs_dest, cflags) == layout::DEST_CFLAGS);
    assert!(offset_of!(raw::ip_vs_dest, last_weight) == layout::DEST_LAST_WEIGHT);
    assert!(offset_of!(raw::ip_vs_dest, n_list) == layout::DEST_N_LIST);
    assert!(layout::LIST_NEXT_SIZE == size_of::<*mut raw::list_head>());
    assert!(layout::SKB_LEN_SIZE == size_of::<u32>());
    assert!(layout::SKB_DATA_LEN_SIZE == size_of::<u32>());
    assert!(layout::SKB_DATA_SIZE == size_of::<*const u8>());
    assert!(size_of::<raw::nf_inet_addr>() == layout::ADDR_SIZE);
    assert!(layout::ADDR_SIZE == 16);
    assert!(size_of::<raw::delayed_work>() == layout::DWORK_SIZE);
    assert!(layout::DWORK_WORK == 0);
    assert!(size_of::<raw::ip_vs_scheduler>() == layout::SCHED_SIZE);
    assert!(size_of::<raw::pernet_operations>() == layout::PERNET_OPS_SIZE);
    // `cflags` and `flags` are read as `usize` and `u32` atomics.
    assert!(size_of::<kernel::ffi::c_ulong>() == size_of::<usize>());
    assert!(size_of::<kernel::ffi::c_uint>() == size_of::<u32>());
};

/// `AF_INET6`, the only family that is not IPv4 for IPVS.
const AF_INET6: u16 = raw::AF_INET6 as u16;

/// A real server's config flag: it is in its service.
const DEST_CF_AVAILABLE: usize = raw::IP_VS_DEST_CF_AVAILABLE as usize;

/// A real server's status flag: its upper connection threshold is reached.
const DEST_F_OVERLOAD: u32 = raw::IP_VS_DEST_F_OVERLOAD;

/// Seconds since boot (`ktime_get_boottime_seconds()`).
pub(crate) fn boottime_seconds() -> i64 {
    // SAFETY: Plain FFI call without arguments.
    unsafe { raw::mh_rs_boottime_seconds() }
}

/// The kernel's own `hsiphash()` of a `u32`, for cross-checks in KUnit.
#[cfg(CONFIG_KUNIT = "y")]
pub(crate) fn kernel_hsiphash_u32(value: u32, key: &[u64; 2]) -> u32 {
    // SAFETY: Plain FFI call on values.
    unsafe { raw::mh_rs_kernel_hsiphash_u32(value, key[0], key[1]) }
}
