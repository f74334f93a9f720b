// SPDX-License-Identifier: GPL-2.0

//! Per-CPU event counters: each CPU increments its own copy, readers sum
//! them, so counting on the packet path writes no shared cache line.
//!
//! C header: [`include/linux/percpu.h`](srctree/include/linux/percpu.h)

use core::ptr::NonNull;

use kernel::prelude::*;

use super::raw;

/// `N` per-CPU `u64` counters.
///
/// # Invariants
///
/// `ptr` is a live `alloc_percpu()` area of `N` `u64` per CPU, owned by
/// this value.
pub(crate) struct PerCpuCounters<const N: usize> {
    ptr: NonNull<u64>,
}

// SAFETY: Each CPU only increments its own copy (with this_cpu_inc, safe in
// any context); reads sum them; the area is freed once, by the owner.
unsafe impl<const N: usize> Send for PerCpuCounters<N> {}
// SAFETY: As above.
unsafe impl<const N: usize> Sync for PerCpuCounters<N> {}

impl<const N: usize> PerCpuCounters<N> {
    /// Allocates zeroed counters. Process context.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Plain FFI call, process context.
        let ptr = unsafe { raw::mh_rs_percpu_u64_alloc(N) };
        // INVARIANT: Non-null means allocated for `N` counters, owned from
        // here on.
        Ok(PerCpuCounters {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Counts one event of counter `which` on this CPU (nothing if `which`
    /// is not below `N`).
    #[inline]
    pub(crate) fn inc(&self, which: usize) {
        if which >= N {
            return;
        }
        // x86-64: what this_cpu_inc() compiles to, inline (the packet path
        // counts every decision): one increment through the %gs segment,
        // whose base makes a per-CPU pointer this CPU's copy.
        #[cfg(target_arch = "x86_64")]
        {
            let counter = self.ptr.as_ptr().wrapping_add(which);
            // SAFETY: `counter` is a per-CPU pointer into the live area
            // (type invariant, `which < N`); the segment-relative increment
            // touches this CPU's copy only, and being one instruction it
            // cannot be split by an interrupt or a migration, as
            // this_cpu_inc() promises.
            unsafe {
                core::arch::asm!("incq %gs:({0})", in(reg) counter, options(att_syntax, nostack));
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        // SAFETY: The area is live (type invariant) and has `N` counters.
        unsafe {
            raw::mh_rs_percpu_u64_inc(self.ptr.as_ptr(), which)
        };
    }

    /// The bytes the counters take, over all possible CPUs.
    pub(crate) fn bytes(&self) -> usize {
        // SAFETY: Plain FFI call.
        unsafe { raw::mh_rs_percpu_bytes(N * core::mem::size_of::<u64>()) }
    }

    /// Each counter summed over all CPUs.
    pub(crate) fn sum(&self) -> [u64; N] {
        let mut sum = [0u64; N];
        // SAFETY: The area is live (type invariant); `sum` has room for `N`.
        unsafe { raw::mh_rs_percpu_u64_sum(self.ptr.as_ptr(), N, sum.as_mut_ptr()) };
        sum
    }
}

impl<const N: usize> Drop for PerCpuCounters<N> {
    fn drop(&mut self) {
        // SAFETY: Owned by the type invariant; free_percpu() may be called
        // in atomic context, such as an RCU callback.
        unsafe { raw::mh_rs_percpu_free(self.ptr.as_ptr()) };
    }
}
