// SPDX-License-Identifier: GPL-2.0

//! Real servers (`struct ip_vs_dest`): the entries of a service's list, and
//! sets of counted references that a value published to the packet path
//! holds on them.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)
//!
//! IPVS keeps a real server's memory while it is linked in its service, and
//! afterwards while anyone holds a reference (`ip_vs_dest_hold`) on it, in
//! its trash list; it frees the memory through `call_rcu()` once the last
//! reference is gone. A scheduler may keep pointers to servers in RCU-read
//! tables as long as it holds a reference on each, and must give the
//! references back synchronously when it stops publishing them (see
//! [`DestRefs::release`]).
//!
//! The fields IPVS changes while the packet path reads them (weights,
//! flags) are read with `core`'s atomics through `from_ptr`, not with
//! `kernel::sync::atomic`: in Linux 7.3 each operation of the latter is a
//! call to an out-of-line C helper, and the packet path reads several per
//! decision. On x86-64 a `Relaxed` load is the single move `READ_ONCE()`
//! is, which the kernel's memory model accepts for these plain and
//! `atomic_t` fields.

use core::marker::PhantomData;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicUsize, Ordering};

use kernel::prelude::*;

use super::raw;

/// What a real server is, read from IPVS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DestInfo {
    /// Its address (its own family: with tunnel forwarding an IPv4 service
    /// may have IPv6 servers).
    pub(crate) addr: IpAddr,
    /// Its port, in host order.
    pub(crate) port: u16,
    /// Its current weight.
    pub(crate) weight: i32,
    /// Its latest non-zero weight (IPVS's `last_weight`; 0 if it was added
    /// with weight 0 and never had another).
    pub(crate) last_weight: i32,
}

/// Reads a server's identity and weights.
///
/// # Safety
///
/// `dest` must point to a live `struct ip_vs_dest`.
unsafe fn read_info(dest: NonNull<raw::ip_vs_dest>) -> DestInfo {
    let d = dest.as_ptr();
    // SAFETY: `dest` is live (caller). `af`, `port` and `addr` are set when
    // the server is created and never change; the weights are atomics.
    unsafe {
        let addr = if (*d).af == super::AF_INET6 {
            // IPv6: all 16 bytes of the union are the address.
            IpAddr::V6(Ipv6Addr::from((*d).addr.in6.in6_u.u6_addr8))
        } else {
            // IPv4: only the first 4 bytes are the address (the others may
            // never have been written).
            IpAddr::V4(Ipv4Addr::from(u32::from_be((*d).addr.ip)))
        };
        DestInfo {
            addr,
            port: u16::from_be((*d).port),
            weight: AtomicI32::from_ptr(&raw mut (*d).weight.counter).load(Ordering::Relaxed),
            last_weight: AtomicI32::from_ptr(&raw mut (*d).last_weight.counter)
                .load(Ordering::Relaxed),
        }
    }
}

/// A real server linked in its service's list, borrowed on the control path
/// while the configuration mutex that keeps it linked is held (`'a`).
///
/// # Invariants
///
/// `ptr` is a live `struct ip_vs_dest` for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct DestEntry<'a> {
    ptr: NonNull<raw::ip_vs_dest>,
    _p: PhantomData<&'a raw::ip_vs_dest>,
}

impl DestEntry<'_> {
    /// # Safety
    ///
    /// `ptr` must be a server that stays live for the chosen lifetime (IPVS
    /// passed it to a callback, or it is linked in a service whose list is
    /// stable under the mutex the caller holds).
    pub(super) unsafe fn from_raw(ptr: NonNull<raw::ip_vs_dest>) -> Self {
        // INVARIANT: By the caller's guarantee.
        DestEntry {
            ptr,
            _p: PhantomData,
        }
    }

    /// The server's identity and weights.
    pub(crate) fn info(&self) -> DestInfo {
        // SAFETY: Live by the type invariant.
        unsafe { read_info(self.ptr) }
    }

    /// The server object's identity, so that a server deleted and re-added
    /// with the same address and port is another server.
    pub(crate) fn identity(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

/// Counted references to real servers, each with a value of type `T`, held
/// by something that is published to the packet path (a lookup table) and
/// given back when it is unpublished.
///
/// # Invariants
///
/// While `held` is true, this value holds one reference on each server in
/// `dests`, so IPVS keeps it (in its trash list if it was removed). After
/// [`DestRefs::release`] the servers stay valid for the RCU readers that
/// found them before (see there).
pub(crate) struct DestRefs<T> {
    dests: KVVec<(NonNull<raw::ip_vs_dest>, T)>,
    held: AtomicBool,
}

// SAFETY: IPVS shares real servers between CPUs; the reference count is
// atomic, `release` gives the references back once whatever the thread, and
// a `Dest` only reads fields IPVS writes atomically or never changes. The
// values of type `T` go along.
unsafe impl<T: Send> Send for DestRefs<T> {}
// SAFETY: As above: `&DestRefs` only allows such reads, `&T`, and the
// one-time `release`, guarded by an atomic flag.
unsafe impl<T: Sync> Sync for DestRefs<T> {}

impl<T> DestRefs<T> {
    /// An empty set with room for `n` servers.
    pub(crate) fn with_capacity(n: usize) -> Result<Self> {
        // INVARIANT: No server, nothing held.
        Ok(DestRefs {
            dests: KVVec::with_capacity(n, GFP_KERNEL)?,
            held: AtomicBool::new(true),
        })
    }

    /// Takes a reference on the server of `entry` and adds it with `value`.
    pub(crate) fn push(&mut self, entry: &DestEntry<'_>, value: T) -> Result {
        self.dests.push((entry.ptr, value), GFP_KERNEL)?;
        // SAFETY: The entry is live while borrowed (its type invariant).
        unsafe { raw::mh_rs_dest_hold(entry.ptr.as_ptr()) };
        // INVARIANT: The new entry's reference is held; `held` is still true
        // (nothing can release a value borrowed mutably).
        Ok(())
    }

    /// The server at `index` and its value.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<(Dest<'_>, &T)> {
        self.dests.get(index).map(|(ptr, value)| {
            // INVARIANT: Valid while `self` is borrowed (see `Dest`).
            (
                Dest {
                    ptr: *ptr,
                    _p: PhantomData,
                },
                value,
            )
        })
    }

    /// The servers and their values, in the order they were added.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Dest<'_>, &T)> {
        (0..self.dests.len()).filter_map(|i| self.get(i))
    }

    /// How many servers the set has.
    pub(crate) fn len(&self) -> usize {
        self.dests.len()
    }

    /// The bytes the set allocated.
    pub(crate) fn bytes(&self) -> usize {
        self.dests.capacity() * core::mem::size_of::<(NonNull<raw::ip_vs_dest>, T)>()
    }

    /// Gives every reference back, once; later calls do nothing. Only
    /// [`super::rcu::Unpublishing`] calls it (and `drop`): no code may look
    /// at a server of the set afterwards, but the readers that found it
    /// before.
    ///
    /// This is done when the holder is unpublished (see
    /// [`super::rcu::Unpublish`]), not when its memory is freed after the
    /// grace period, because IPVS relies on schedulers dropping their
    /// references synchronously, as the C schedulers do in `done_service`
    /// and in their table rebuilds. At namespace teardown,
    /// `ip_vs_trash_cleanup()` frees every removed server through its own
    /// `call_rcu()` (`ip_vs_dest_rcu_free()` puts the last reference and
    /// frees the memory), and nothing orders that callback after one of
    /// ours: they may run on different CPUs, and `RCU_LAZY` batches
    /// callbacks. A reference dropped in our callback could come after the
    /// free: "refcount_t: decrement hit 0" and a leaked server
    /// (tests/reliability/netns.sh).
    ///
    /// Readers that found a server through the holder before it was
    /// unpublished may go on using it: IPVS frees a server's memory only
    /// through `call_rcu()` queued after its last reference is gone (at the
    /// earliest, here), so that grace period waits for them.
    fn release(&self) {
        if !self.held.swap(false, Ordering::AcqRel) {
            return;
        }
        for (dest, _) in self.dests.iter() {
            // SAFETY: By the type invariant we held one reference on each,
            // and `held` was true until the swap above, which only one
            // caller wins.
            unsafe { raw::mh_rs_dest_put(dest.as_ptr()) };
        }
    }
}

impl<T: Send> super::rcu::Release for DestRefs<T> {
    fn release(&self) {
        DestRefs::release(self);
    }
}

impl<T> Drop for DestRefs<T> {
    fn drop(&mut self) {
        self.release();
    }
}

/// A real server of a [`DestRefs`], borrowed from it.
///
/// # Invariants
///
/// `ptr` is a `struct ip_vs_dest` that stays valid for `'a`: the set holds a
/// reference on it, or was released (once its holder was unpublished, after
/// which only the RCU readers that found the holder before can borrow from
/// the set) while the reader that borrowed it was already running, see
/// [`DestRefs::release`].
#[derive(Clone, Copy)]
pub(crate) struct Dest<'a> {
    ptr: NonNull<raw::ip_vs_dest>,
    _p: PhantomData<&'a ()>,
}

impl Dest<'_> {
    /// Whether the server is still in its service and not overloaded (upper
    /// connection threshold reached). IPVS clears the server's
    /// `IP_VS_DEST_CF_AVAILABLE` as it unlinks it, before it tells the
    /// scheduler; packets of a new connection to a deleted server would be
    /// dropped.
    #[inline]
    pub(crate) fn in_service(&self) -> bool {
        let d = self.ptr.as_ptr();
        // SAFETY: Valid by the type invariant; IPVS writes both fields with
        // plain stores (under its locks) that an aligned atomic load reads
        // whole, like the C schedulers' plain reads.
        let (cflags, flags) = unsafe {
            (
                AtomicUsize::from_ptr((&raw mut (*d).cflags).cast::<usize>())
                    .load(Ordering::Relaxed),
                AtomicU32::from_ptr((&raw mut (*d).flags).cast::<u32>()).load(Ordering::Relaxed),
            )
        };
        cflags & super::DEST_CF_AVAILABLE != 0 && flags & super::DEST_F_OVERLOAD == 0
    }

    /// The server's current weight (IPVS sets it before it tells the
    /// scheduler of the change).
    #[inline]
    pub(crate) fn weight(&self) -> i32 {
        // SAFETY: Valid by the type invariant; `weight` is an `atomic_t`.
        unsafe { AtomicI32::from_ptr(&raw mut (*self.ptr.as_ptr()).weight.counter) }
            .load(Ordering::Relaxed)
    }

    /// The server object's identity, comparable with
    /// [`DestEntry::identity`].
    pub(crate) fn identity(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// The raw server, for IPVS (the scheduler's result).
    pub(super) fn as_ptr(&self) -> *mut raw::ip_vs_dest {
        self.ptr.as_ptr()
    }
}
