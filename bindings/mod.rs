// SPDX-License-Identifier: GPL-2.0

//! The binding layer: IPVS's scheduler interface behind a small safe API.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)
//!
//! All of the module's `unsafe` code lives in this file. The raw declarations
//! are generated at build time by bindgen from the target kernel's headers
//! (`generated.rs`); `layout.rs` holds the offsets the C compiler computed for
//! the same fields, and the `const` assertions below refuse to build if the
//! two disagree. The C side (`helpers.c`) owns the `struct ip_vs_scheduler`
//! and wraps the static inline functions and macros Rust cannot call.
//!
//! The scheduler itself (`ip_vs_mh_rs.rs`) sees only [`Service`], [`Flow`],
//! [`DestInfo`], [`DestRefs`], [`Dest`], [`RcuBox`] and [`RcuPtr`], and
//! implements [`Callbacks`] and [`Unpublish`].

use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::sync::rcu;
use kernel::types::Opaque;

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

    include!("generated.rs");
}

// Only read by the `const` assertions below, which the dead-code lint does
// not count as uses.
#[allow(dead_code)]
mod layout {
    include!("layout.rs");
}

// The fields read through bindgen's declarations are where C put them.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<raw::ip_vs_service>() == layout::SVC_SIZE);
    assert!(offset_of!(raw::ip_vs_service, af) == layout::SVC_AF);
    assert!(offset_of!(raw::ip_vs_service, flags) == layout::SVC_FLAGS);
    assert!(offset_of!(raw::ip_vs_service, sched_data) == layout::SVC_SCHED_DATA);
    assert!(offset_of!(raw::ip_vs_service, num_dests) == layout::SVC_NUM_DESTS);
    assert!(size_of::<raw::mh_rs_dest_info>() == layout::DEST_INFO_SIZE);
    assert!(offset_of!(raw::mh_rs_dest_info, addr) == layout::DEST_INFO_ADDR);
    assert!(offset_of!(raw::mh_rs_dest_info, port) == layout::DEST_INFO_PORT);
    assert!(offset_of!(raw::mh_rs_dest_info, weight) == layout::DEST_INFO_WEIGHT);
    assert!(size_of::<raw::mh_rs_flow>() == layout::FLOW_SIZE);
    assert!(offset_of!(raw::mh_rs_flow, port) == layout::FLOW_PORT);
    assert!(size_of::<raw::nf_inet_addr>() == layout::ADDR_SIZE);
    assert!(layout::ADDR_SIZE == 16);
};

/// `AF_INET6`, the only family that is not IPv4 for IPVS.
const AF_INET6: u16 = raw::AF_INET6 as u16;

/// The service flag `mh-fallback` (`-b mh-fallback`).
const SVC_F_SCHED_MH_FALLBACK: u32 = raw::IP_VS_SVC_F_SCHED1;

/// The 16 bytes of a `union nf_inet_addr`, in network order.
fn addr_bytes(addr: &raw::nf_inet_addr) -> [u8; 16] {
    let mut out = [0u8; 16];
    // SAFETY: Every member of the union is plain bytes over the same 16
    // bytes (asserted above), so reading them as a byte array is valid.
    let bytes: &[u8; 16] = unsafe { &*ptr::from_ref(addr).cast::<[u8; 16]>() };
    out.copy_from_slice(bytes);
    out
}

/// The scheduler's callbacks, implemented by the module.
///
/// IPVS calls the control-path callbacks with its configuration mutex held,
/// in process context; `schedule` runs in softirq context on any CPU, under
/// RCU, concurrently with everything else.
pub(crate) trait Callbacks {
    /// Per-service state, kept in the service's `sched_data`.
    type State: Send + Sync + Unpublish;

    /// A service starts using the scheduler.
    fn init_service(svc: &Service<'_>) -> Result<RcuBox<Self::State>>;
    /// A real server was added, removed or edited.
    fn dest_changed(svc: &Service<'_>, state: &Self::State) -> Result;
    /// Writes the service's records to its namespace's `/proc/net/ip_vs_mh`.
    fn show(state: &Self::State, out: &mut SeqFile<'_>);
    /// Picks a real server for a new connection, or `None`.
    fn schedule<'a>(
        svc: &Service<'_>,
        state: &'a Self::State,
        flow: &Flow,
        guard: &'a rcu::Guard,
    ) -> Option<Dest<'a>>;
}

/// The module's implementation of [`Callbacks`].
type Impl = crate::MhScheduler;

kernel::sync::global_lock! {
    // SAFETY: `register()` initialises it, once per load of the module and
    // before IPVS can call a callback, the only code that locks it.
    unsafe(uninit) static WORKSPACE: Mutex<crate::Workspace> = crate::Workspace::new();
}

/// Runs `f` with the rebuilds' workspace (see [`crate::Workspace`]).
/// Control path only, after [`register()`].
pub(crate) fn with_workspace<R>(f: impl FnOnce(&mut crate::Workspace) -> R) -> R {
    let mut work = WORKSPACE.lock();
    f(&mut work)
}

/// Registers the scheduler `mh` with IPVS.
pub(crate) fn register() -> Result {
    // SAFETY: Module init calls `register()` once per load (the static is
    // new with each load), before the scheduler exists.
    unsafe { WORKSPACE.init() };
    // SAFETY: Plain FFI call; the scheduler object is a static in helpers.c.
    let ret = unsafe { raw::mh_rs_register() };
    if ret < 0 {
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// The bytes the registry keeps per service (the entry that lists it in
/// `/proc/net/ip_vs_mh`).
pub(crate) fn registry_entry_bytes() -> usize {
    // SAFETY: Plain FFI call.
    unsafe { raw::mh_rs_registry_entry_bytes() }
}

/// Unregisters the scheduler and waits for every RCU callback this module
/// queued, so that none runs after the module's text is gone.
pub(crate) fn unregister() {
    // SAFETY: Plain FFI call; only made after a successful `register()`.
    unsafe { raw::mh_rs_unregister() };
    // SAFETY: Plain FFI call, process context.
    unsafe { raw::rcu_barrier() };
    #[cfg(mh_rs_test_hooks)]
    test_hooks::barrier();
    // No callback can run any more: release the workspace's memory (a static
    // is not dropped when the module unloads).
    *WORKSPACE.lock() = crate::Workspace::new();
}

/// A virtual service, borrowed for the duration of a callback.
///
/// # Invariants
///
/// `ptr` points to a live `struct ip_vs_service` for `'a`.
pub(crate) struct Service<'a> {
    ptr: NonNull<raw::ip_vs_service>,
    _p: PhantomData<&'a raw::ip_vs_service>,
}

impl Service<'_> {
    /// # Safety
    ///
    /// `ptr` must be a service IPVS passed to a scheduler callback, used only
    /// during that callback.
    unsafe fn from_raw(ptr: *mut raw::ip_vs_service) -> Option<Self> {
        // INVARIANT: IPVS keeps the service alive while the callback runs.
        NonNull::new(ptr).map(|ptr| Service {
            ptr,
            _p: PhantomData,
        })
    }

    /// Whether the service is IPv6.
    #[inline]
    pub(crate) fn is_ipv6(&self) -> bool {
        // SAFETY: By the type invariant the service is live; `af` is set
        // before the scheduler is bound and never changes.
        unsafe { (*self.ptr.as_ptr()).af == AF_INET6 }
    }

    /// Whether the service has the `mh-fallback` flag.
    #[inline]
    pub(crate) fn fallback(&self) -> bool {
        // SAFETY: By the type invariant the service is live. `flags` may be
        // edited concurrently (ipvsadm -E); a volatile read sees either value,
        // like the C scheduler's plain read.
        let flags = unsafe { ptr::read_volatile(&raw const (*self.ptr.as_ptr()).flags) };
        flags & SVC_F_SCHED_MH_FALLBACK != 0
    }

    /// The number of real servers (stable under the configuration mutex).
    pub(crate) fn num_dests(&self) -> usize {
        // SAFETY: By the type invariant the service is live.
        unsafe { (*self.ptr.as_ptr()).num_dests as usize }
    }

    /// Copies the real servers, in IPVS list order (newest first), into
    /// `out`, which is cleared first. Control path only.
    pub(crate) fn dests(&self, out: &mut KVec<DestInfo>) -> Result {
        let n = self.num_dests();
        out.clear();
        out.reserve(n, GFP_KERNEL)?;
        let spare = out.spare_capacity_mut();
        // SAFETY: The service is live (type invariant) and the control path
        // holds the IPVS mutex, so its list is stable. `spare` has room for
        // `spare.len()` entries, and `MaybeUninit<DestInfo>` has the layout
        // of `mh_rs_dest_info`, which the helper only writes.
        let found = unsafe {
            raw::mh_rs_svc_dests(
                self.ptr.as_ptr(),
                spare.as_mut_ptr().cast::<raw::mh_rs_dest_info>(),
                spare.len() as u32,
            )
        } as usize;
        if found > spare.len() {
            // num_dests and the list disagree: refuse rather than guess.
            return Err(EINVAL);
        }
        // SAFETY: The helper initialised the first `found` entries.
        unsafe { out.inc_len(found) };
        Ok(())
    }

    /// The service's name for log messages, e.g. `TCP 192.0.2.1:80`.
    pub(crate) fn name(&self) -> ServiceName {
        let mut name = ServiceName {
            buf: [0; raw::MH_RS_SVC_NAME_LEN as usize],
        };
        // SAFETY: The service is live; the helper writes at most `len` bytes
        // including the terminating NUL.
        unsafe {
            raw::mh_rs_svc_name(
                self.ptr.as_ptr(),
                name.buf.as_mut_ptr().cast(),
                name.buf.len(),
            )
        };
        name
    }

    /// Reports "no destination available" (rate-limited by IPVS).
    pub(crate) fn no_destination(&self) {
        // SAFETY: The service is live and the message a static C string.
        unsafe {
            raw::ip_vs_scheduler_err(self.ptr.as_ptr(), c"no destination available".as_char_ptr())
        };
    }

    fn sched_data(&self) -> *mut c_void {
        // SAFETY: The service is live. `sched_data` is written only by
        // `init_service`/`done_service`, which IPVS serialises with binding
        // and unbinding the scheduler; readers run after binding.
        unsafe { ptr::read_volatile(&raw const (*self.ptr.as_ptr()).sched_data) }
    }

    fn set_sched_data(&self, data: *mut c_void) {
        // SAFETY: As in `sched_data`; only init/done write it, under the mutex.
        unsafe { ptr::write_volatile(&raw mut (*self.ptr.as_ptr()).sched_data, data) };
    }

    /// The per-service state, on the control path (under the IPVS mutex,
    /// which also serialises `done_service`, so the state stays alive).
    fn state_locked<T>(&self) -> Option<&T> {
        let data = self.sched_data().cast::<RcuNode<T>>();
        // SAFETY: `sched_data` is null or the `RcuNode<T>` stored by
        // `init_service`; only `done_service` frees it, and it cannot run
        // while the caller holds the mutex.
        unsafe { data.as_ref() }.map(|node| &node.value)
    }

    /// The per-service state stored by `init_service`.
    fn state<'g, T>(&self, _guard: &'g rcu::Guard) -> Option<&'g T> {
        let data = self.sched_data().cast::<RcuNode<T>>();
        // SAFETY: `sched_data` is null or points to the `RcuNode<T>` stored by
        // `init_service`, which `done_service` frees only after an RCU grace
        // period; the guard keeps this reader inside the current one.
        unsafe { data.as_ref() }.map(|node| &node.value)
    }
}

/// A service name, formatted by the kernel (`%pI4`/`%pI6c`).
pub(crate) struct ServiceName {
    buf: [u8; raw::MH_RS_SVC_NAME_LEN as usize],
}

impl kernel::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let len = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.buf.len());
        match core::str::from_utf8(&self.buf[..len]) {
            Ok(s) => f.write_str(s),
            Err(_) => f.write_str("?"),
        }
    }
}

/// One real server as IPVS lists it: a snapshot taken on the control path.
#[repr(transparent)]
pub(crate) struct DestInfo(raw::mh_rs_dest_info);

// SAFETY: A snapshot of plain values. Its server pointer is only followed by
// `hold()`, on the control path under the IPVS mutex, from whichever thread
// holds it; the workspace keeps snapshots between rebuilds but `dests()`
// clears them before each use.
unsafe impl Send for DestInfo {}

impl DestInfo {
    /// The server's address bytes (network order; IPv4 in the first four).
    pub(crate) fn addr(&self) -> [u8; 16] {
        addr_bytes(&self.0.addr)
    }

    /// The server's port, in host order.
    pub(crate) fn port(&self) -> u16 {
        u16::from_be(self.0.port)
    }

    /// Whether the server's own address is IPv6 (it may differ from the
    /// service's family with tunnel forwarding).
    pub(crate) fn is_ipv6(&self) -> bool {
        self.0.af == AF_INET6
    }

    /// The server's current weight.
    pub(crate) fn weight(&self) -> i32 {
        self.0.weight
    }

    /// The server object's identity (its address), so that a server deleted
    /// and re-added with the same address and port is a different server.
    pub(crate) fn identity(&self) -> usize {
        self.0.dest as usize
    }
}

/// Counted references to real servers (`ip_vs_dest_hold`/`_put`), held by a
/// value that is published to the packet path (a lookup table) and given
/// back when that value is unpublished.
///
/// # Invariants
///
/// While `held` is true, this value holds one reference on each server in
/// `dests`, so IPVS keeps it (in its trash list if it was removed). After
/// [`DestRefs::release`] the servers stay valid for the RCU readers that
/// found them before (see there).
pub(crate) struct DestRefs {
    dests: KVec<NonNull<raw::ip_vs_dest>>,
    held: AtomicBool,
}

// SAFETY: IPVS shares real servers between CPUs; the reference count is
// atomic, `release` gives the references back once whatever the thread, and
// a `Dest` only reads atomically updated fields.
unsafe impl Send for DestRefs {}
// SAFETY: As above: `&DestRefs` only allows atomic reads and the one-time
// `release`, guarded by an atomic flag.
unsafe impl Sync for DestRefs {}

impl DestRefs {
    /// An empty set with room for `n` servers.
    pub(crate) fn with_capacity(n: usize) -> Result<Self> {
        // INVARIANT: No server, nothing held.
        Ok(DestRefs {
            dests: KVec::with_capacity(n, GFP_KERNEL)?,
            held: AtomicBool::new(true),
        })
    }

    /// Takes a reference on the server of `info` and adds it. Control path
    /// only, under the configuration mutex the snapshot was taken under.
    pub(crate) fn push(&mut self, info: &DestInfo) -> Result {
        let dest = NonNull::new(info.0.dest).ok_or(EINVAL)?;
        self.dests.push(dest, GFP_KERNEL)?;
        // SAFETY: The snapshot was taken under the configuration mutex, which
        // the caller still holds, so the server is still linked and live.
        unsafe { raw::mh_rs_dest_hold(dest.as_ptr()) };
        // INVARIANT: The new entry's reference is held; `held` is still true
        // (nothing can release a value borrowed mutably).
        Ok(())
    }

    /// The server at `index`.
    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<Dest<'_>> {
        self.dests.get(index).map(|&ptr| Dest {
            ptr,
            _p: PhantomData,
        })
    }

    /// The bytes the set allocated.
    pub(crate) fn bytes(&self) -> usize {
        self.dests.capacity() * core::mem::size_of::<NonNull<raw::ip_vs_dest>>()
    }

    /// Gives every reference back, once; later calls do nothing.
    ///
    /// This is done when the holder is unpublished (see [`Unpublish`]), not
    /// when its memory is freed after the grace period, because IPVS relies
    /// on schedulers dropping their references synchronously, as the C
    /// schedulers do in `done_service` and in their table rebuilds. At
    /// namespace teardown, `ip_vs_trash_cleanup()` frees every removed
    /// server through its own `call_rcu()` (`ip_vs_dest_rcu_free()` puts
    /// the last reference and frees the memory), and nothing orders that
    /// callback after one of ours: they may run on different CPUs, and
    /// `RCU_LAZY` batches callbacks. A reference dropped in our callback
    /// could come after the free: "refcount_t: decrement hit 0" and a leaked
    /// server (tests/reliability/netns.sh).
    ///
    /// Readers that found a server through the holder before it was
    /// unpublished may go on using it: IPVS frees a server's memory only
    /// through `call_rcu()` queued after its last reference is gone (at the
    /// earliest, here), so that grace period waits for them.
    pub(crate) fn release(&self) {
        if !self.held.swap(false, Ordering::AcqRel) {
            return;
        }
        for dest in self.dests.iter() {
            // SAFETY: By the type invariant we held one reference on each,
            // and `held` was true until the swap above, which only one
            // caller wins.
            unsafe { raw::mh_rs_dest_put(dest.as_ptr()) };
        }
    }
}

impl Drop for DestRefs {
    fn drop(&mut self) {
        self.release();
    }
}

/// A real server of a [`DestRefs`], borrowed from it.
///
/// # Invariants
///
/// `ptr` is a `struct ip_vs_dest` that stays valid for `'a` (the set holds a
/// reference on it, or was released while an RCU reader that borrowed it
/// was already running, see [`DestRefs::release`]).
#[derive(Clone, Copy)]
pub(crate) struct Dest<'a> {
    ptr: NonNull<raw::ip_vs_dest>,
    _p: PhantomData<&'a DestRefs>,
}

impl Dest<'_> {
    /// Whether the server takes new connections: weight above zero, not
    /// overloaded (upper connection threshold reached), and not deleted from
    /// its service.
    #[inline]
    pub(crate) fn available(&self) -> bool {
        // SAFETY: The server is valid by the type invariant.
        unsafe { raw::mh_rs_dest_available(self.ptr.as_ptr()) }
    }

    /// The server object's identity, comparable with [`DestInfo::identity`].
    pub(crate) fn identity(&self) -> usize {
        self.ptr.as_ptr() as usize
    }
}

/// What a packet is scheduled on: the client's address and port.
pub(crate) struct Flow(raw::mh_rs_flow);

impl Flow {
    /// The client's address bytes (network order; IPv4 in the first four).
    #[inline]
    pub(crate) fn addr(&self) -> [u8; 16] {
        addr_bytes(&self.0.addr)
    }

    /// The client's port in host order (0 for protocols without ports).
    #[inline]
    pub(crate) fn port(&self) -> u16 {
        u16::from_be(self.0.port)
    }
}

/// What a value published to the packet path does when it is unpublished,
/// before the grace period after which its memory is freed: give back what
/// must not outlive the publication itself (see [`DestRefs::release`]).
pub(crate) trait Unpublish {
    /// Called once, on the control path, when the value is retired.
    fn unpublished(&self);
}

/// A heap value that is freed only after an RCU grace period.
///
/// # Invariants
///
/// `ptr` is a `KBox<RcuNode<T>>` leaked by [`RcuBox::new`], owned by this
/// value.
pub(crate) struct RcuBox<T> {
    ptr: NonNull<RcuNode<T>>,
}

#[repr(C)]
struct RcuNode<T> {
    head: Opaque<raw::callback_head>,
    /// Test builds: grace periods the callback still waits before freeing.
    #[cfg(mh_rs_test_hooks)]
    delays: u32,
    value: T,
}

/// Test-only code (`MH_RS_TEST_HOOKS=1`, see Kbuild): the module's RCU
/// callbacks wait several grace periods instead of one, so that whatever
/// depends on their order relative to IPVS's own callbacks shows up
/// dependably instead of as a rare race (tests/reliability/netns.sh).
#[cfg(mh_rs_test_hooks)]
mod test_hooks {
    use core::sync::atomic::{AtomicUsize, Ordering};

    /// Grace periods each callback of the module is delayed by.
    pub(super) const DELAY_GRACE_PERIODS: u32 = 8;

    /// Retired nodes whose callback has not freed them yet.
    pub(super) static PENDING: AtomicUsize = AtomicUsize::new(0);

    /// Counts a retired node.
    pub(super) fn retired() {
        PENDING.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a node freed.
    pub(super) fn freed() {
        PENDING.fetch_sub(1, Ordering::Relaxed);
    }

    /// Waits until every retired node is freed: `rcu_barrier()` does not
    /// wait for callbacks queued again by the callbacks it waited for, so it
    /// is repeated; each pass moves every node one delay on, so this ends
    /// after `DELAY_GRACE_PERIODS` passes at most.
    pub(super) fn barrier() {
        while PENDING.load(Ordering::Relaxed) != 0 {
            kernel::sync::rcu::rcu_barrier();
        }
    }
}

// SAFETY: `RcuBox<T>` owns a `T`; sending it sends the `T`.
unsafe impl<T: Send> Send for RcuBox<T> {}
// SAFETY: `&RcuBox<T>` only gives `&T`.
unsafe impl<T: Sync> Sync for RcuBox<T> {}

impl<T> RcuBox<T> {
    /// Allocates `value` with room for an RCU callback.
    pub(crate) fn new(value: T, flags: kernel::alloc::Flags) -> Result<Self> {
        let node = KBox::new(
            RcuNode {
                head: Opaque::uninit(),
                #[cfg(mh_rs_test_hooks)]
                delays: test_hooks::DELAY_GRACE_PERIODS,
                value,
            },
            flags,
        )?;
        // INVARIANT: Leaked here, owned by the new value.
        Ok(RcuBox {
            ptr: NonNull::new(KBox::into_raw(node)).ok_or(ENOMEM)?,
        })
    }

    /// The bytes one `RcuBox<T>` allocates.
    pub(crate) const fn alloc_bytes() -> usize {
        core::mem::size_of::<RcuNode<T>>()
    }

    fn into_raw(self) -> *mut RcuNode<T> {
        let ptr = self.ptr.as_ptr();
        core::mem::forget(self);
        ptr
    }

    /// Unpublishes the value ([`Unpublish`]) and drops it after every reader
    /// that may still see it is done.
    pub(crate) fn retire(self)
    where
        T: Unpublish,
    {
        /// # Safety
        ///
        /// Only for `call_rcu`, with the head of a node leaked by `retire`.
        unsafe extern "C" fn free<T>(head: *mut raw::callback_head) {
            // `head` is the first field of a `#[repr(C)]` `RcuNode<T>`.
            let node = head.cast::<RcuNode<T>>();
            #[cfg(mh_rs_test_hooks)]
            {
                // SAFETY: The callback owns the node until it frees it.
                let delays = unsafe { &mut (*node).delays };
                if *delays > 0 {
                    *delays -= 1;
                    // SAFETY: The head is ours again now that its callback
                    // runs; queue it once more, for the next grace period.
                    unsafe { raw::call_rcu(head, Some(free::<T>)) };
                    return;
                }
                test_hooks::freed();
            }
            // SAFETY: `retire` passed the head of a node leaked from a
            // `KBox`, and RCU calls this once, after the grace period.
            drop(unsafe { KBox::from_raw(node) });
        }
        self.unpublished();
        let node = self.into_raw();
        #[cfg(mh_rs_test_hooks)]
        test_hooks::retired();
        // SAFETY: `node` is valid and owned (type invariant); `call_rcu` takes
        // ownership of its head until the callback runs. `unregister()` waits
        // for all callbacks before the module goes away.
        unsafe { raw::call_rcu((*node).head.get(), Some(free::<T>)) };
    }
}

impl<T> core::ops::Deref for RcuBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Owned and valid by the type invariant.
        unsafe { &(*self.ptr.as_ptr()).value }
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // Never published to readers (or already unpublished and waited
        // for): free at once.
        // SAFETY: Owned and leaked from a `KBox` by the type invariant.
        drop(unsafe { KBox::from_raw(self.ptr.as_ptr()) });
    }
}

/// An RCU-protected pointer to a value published by the control path.
///
/// # Invariants
///
/// `ptr` is null or owns a node leaked from an [`RcuBox`].
pub(crate) struct RcuPtr<T> {
    ptr: AtomicPtr<RcuNode<T>>,
    // Shared with readers on every CPU: Send/Sync only if `T` is.
    _p: PhantomData<T>,
}

impl<T> RcuPtr<T> {
    /// An empty pointer.
    pub(crate) const fn new() -> Self {
        RcuPtr {
            ptr: AtomicPtr::new(ptr::null_mut()),
            _p: PhantomData,
        }
    }

    /// The published value, valid while `guard` is held.
    #[inline]
    pub(crate) fn get<'g>(&self, _guard: &'g rcu::Guard) -> Option<&'g T> {
        // Acquire pairs with the release in `replace`: the reader sees the
        // value fully built (stronger than rcu_dereference's dependency order).
        let node = self.ptr.load(Ordering::Acquire);
        // SAFETY: Non-null values are published nodes, freed only through
        // `retire` after a grace period that the guard holds off.
        unsafe { node.as_ref() }.map(|node| &node.value)
    }

    /// The published value, for the control path that publishes.
    pub(crate) fn get_locked(&self) -> Option<&T> {
        let node = self.ptr.load(Ordering::Acquire);
        // SAFETY: Only the control path replaces the value, and it is the
        // caller (IPVS serialises it), so the node stays alive meanwhile.
        unsafe { node.as_ref() }.map(|node| &node.value)
    }

    /// Publishes `new` and returns the previous value, which readers may
    /// still see: retire it with [`RcuBox::retire`].
    pub(crate) fn replace(&self, new: Option<RcuBox<T>>) -> Option<RcuBox<T>> {
        let new = new.map_or(ptr::null_mut(), RcuBox::into_raw);
        let old = self.ptr.swap(new, Ordering::AcqRel);
        // INVARIANT: Ownership of `old` moves to the returned box.
        NonNull::new(old).map(|ptr| RcuBox { ptr })
    }
}

impl<T> Drop for RcuPtr<T> {
    fn drop(&mut self) {
        // The owner is being dropped after a grace period (or was never
        // shared), so no reader can see the value any more.
        drop(self.replace(None));
    }
}

/// A `/proc` file being written (`struct seq_file`), as a [`core::fmt::Write`].
///
/// # Invariants
///
/// `ptr` is the seq_file of the `show` call in progress.
pub(crate) struct SeqFile<'a> {
    ptr: NonNull<raw::seq_file>,
    _p: PhantomData<&'a mut raw::seq_file>,
}

impl core::fmt::Write for SeqFile<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // SAFETY: By the type invariant the seq_file is being filled by this
        // call chain; `s` is valid for `s.len()` bytes. seq_write() records
        // an overflow itself (the file is then read again with more room).
        unsafe { raw::mh_rs_seq_write(self.ptr.as_ptr(), s.as_ptr().cast(), s.len()) };
        Ok(())
    }
}

/// An address and port as text: `192.0.2.1:80` or `[2001:db8::1]:80`.
pub(crate) struct AddrText {
    buf: [u8; 48],
}

impl AddrText {
    /// Formats `addr` (IPv4 in the first four bytes unless `ipv6`) and `port`.
    pub(crate) fn new(ipv6: bool, addr: &[u8; 16], port: u16) -> Self {
        let mut text = AddrText { buf: [0; 48] };
        // SAFETY: `addr` has 16 readable bytes, `buf` room for `len` bytes
        // including the NUL that snprintf() always writes.
        unsafe {
            raw::mh_rs_format_addr(
                ipv6,
                addr.as_ptr(),
                port,
                text.buf.as_mut_ptr().cast(),
                text.buf.len(),
            )
        };
        text
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        let len = self.buf.iter().position(|&b| b == 0).unwrap_or(0);
        core::str::from_utf8(&self.buf[..len]).unwrap_or("?")
    }
}

impl ServiceName {
    /// The name as text.
    pub(crate) fn as_str(&self) -> &str {
        let len = self.buf.iter().position(|&b| b == 0).unwrap_or(0);
        core::str::from_utf8(&self.buf[..len]).unwrap_or("?")
    }
}

/// Seconds since boot (`ktime_get_boottime_seconds()`).
pub(crate) fn boottime_seconds() -> i64 {
    // SAFETY: Plain FFI call without arguments.
    unsafe { raw::mh_rs_boottime_seconds() }
}

/// What the packet path counts.
#[derive(Clone, Copy)]
pub(crate) enum Counter {
    /// A real server was chosen.
    Decision,
    /// It was chosen by the fallback walk.
    Fallback,
    /// No server could be chosen.
    Refusal,
}

/// Per-CPU counters, summed when read: counting adds no contention.
///
/// # Invariants
///
/// `ptr` is a live `alloc_percpu()` area owned by this value.
pub(crate) struct PerCpuCounters {
    ptr: NonNull<raw::mh_rs_counters>,
}

// SAFETY: Each CPU only increments its own copy; reads sum them.
unsafe impl Send for PerCpuCounters {}
// SAFETY: As above.
unsafe impl Sync for PerCpuCounters {}

/// Summed counter values.
pub(crate) struct Counts {
    pub(crate) decisions: u64,
    pub(crate) fallbacks: u64,
    pub(crate) refusals: u64,
}

impl PerCpuCounters {
    /// Allocates zeroed counters.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Plain FFI call, process context.
        let ptr = unsafe { raw::mh_rs_counters_alloc() };
        // INVARIANT: Non-null means allocated, and owned from here on.
        Ok(PerCpuCounters {
            ptr: NonNull::new(ptr).ok_or(ENOMEM)?,
        })
    }

    /// Counts one event on this CPU.
    #[inline]
    pub(crate) fn inc(&self, which: Counter) {
        let which = match which {
            Counter::Decision => raw::mh_rs_counter_MH_RS_DECISION,
            Counter::Fallback => raw::mh_rs_counter_MH_RS_FALLBACK,
            Counter::Refusal => raw::mh_rs_counter_MH_RS_REFUSAL,
        };
        // SAFETY: The area is live by the type invariant.
        unsafe { raw::mh_rs_counters_inc(self.ptr.as_ptr(), which) };
    }

    /// The bytes the counters take, over all possible CPUs.
    pub(crate) fn bytes(&self) -> usize {
        // SAFETY: Plain FFI call.
        unsafe { raw::mh_rs_counters_bytes() }
    }

    /// The sums over all CPUs.
    pub(crate) fn sum(&self) -> Counts {
        let mut sum = raw::mh_rs_counters::default();
        // SAFETY: The area is live by the type invariant; `sum` is writable.
        unsafe { raw::mh_rs_counters_sum(self.ptr.as_ptr(), &mut sum) };
        Counts {
            decisions: sum.decisions,
            fallbacks: sum.fallbacks,
            refusals: sum.refusals,
        }
    }
}

impl Drop for PerCpuCounters {
    fn drop(&mut self) {
        // SAFETY: Owned by the type invariant; free_percpu() is allowed in
        // the RCU callbacks that drop service states.
        unsafe { raw::mh_rs_counters_free(self.ptr.as_ptr()) };
    }
}

/// The kernel's own `hsiphash()` of a `u32`, for cross-checks in KUnit.
#[cfg(CONFIG_KUNIT = "y")]
pub(crate) fn kernel_hsiphash_u32(value: u32, key: &[u64; 2]) -> u32 {
    // SAFETY: Plain FFI call on values.
    unsafe { raw::mh_rs_kernel_hsiphash_u32(value, key[0], key[1]) }
}

// The callbacks IPVS calls through the C scheduler object.

/// # Safety
///
/// Called by IPVS only, with a live service and the configuration mutex held.
#[no_mangle]
unsafe extern "C" fn mh_rs_init_service(svc: *mut raw::ip_vs_service) -> c_int {
    // SAFETY: IPVS passes a live service for this callback.
    let Some(svc) = (unsafe { Service::from_raw(svc) }) else {
        return EINVAL.to_errno();
    };
    let state = match Impl::init_service(&svc) {
        Ok(state) => state,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: The service is live; the registry keeps the pointer until
    // `mh_rs_done_service` removes it, before the state is retired.
    let ret = unsafe { raw::mh_rs_registry_add(svc.ptr.as_ptr(), state.ptr.as_ptr().cast()) };
    if ret < 0 {
        pr_err!(
            "{}: cannot set up the service (error {})\n",
            svc.name(),
            ret
        );
        // Never published: freed at once.
        drop(state);
        return ret;
    }
    svc.set_sched_data(state.into_raw().cast());
    0
}

/// # Safety
///
/// Called by IPVS only, with a live service and the configuration mutex held,
/// after a successful `mh_rs_init_service`.
#[no_mangle]
unsafe extern "C" fn mh_rs_done_service(svc: *mut raw::ip_vs_service) {
    // SAFETY: IPVS passes a live service for this callback.
    let Some(svc) = (unsafe { Service::from_raw(svc) }) else {
        return;
    };
    let data = svc
        .sched_data()
        .cast::<RcuNode<<Impl as Callbacks>::State>>();
    svc.set_sched_data(ptr::null_mut());
    if let Some(ptr) = NonNull::new(data) {
        // SAFETY: Plain FFI call; after it no /proc reader can reach the state.
        unsafe { raw::mh_rs_registry_del(data.cast()) };
        // INVARIANT: `init_service` stored a node leaked from an `RcuBox`;
        // schedulers may still read it, so it is retired, not dropped.
        RcuBox { ptr }.retire();
    }
}

/// # Safety
///
/// Called by IPVS only, with a live service and the configuration mutex held.
#[no_mangle]
unsafe extern "C" fn mh_rs_dest_changed(
    svc: *mut raw::ip_vs_service,
    _dest: *mut raw::ip_vs_dest,
) -> c_int {
    // SAFETY: IPVS passes a live service for this callback.
    let Some(svc) = (unsafe { Service::from_raw(svc) }) else {
        return EINVAL.to_errno();
    };
    let Some(state) = svc.state_locked::<<Impl as Callbacks>::State>() else {
        return EINVAL.to_errno();
    };
    match Impl::dest_changed(&svc, state) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// # Safety
///
/// Called by IPVS only, in softirq context under RCU, with a live service,
/// packet and parsed header.
#[no_mangle]
unsafe extern "C" fn mh_rs_schedule(
    svc: *mut raw::ip_vs_service,
    skb: *const raw::sk_buff,
    iph: *mut raw::ip_vs_iphdr,
) -> *mut raw::ip_vs_dest {
    // SAFETY: IPVS passes a live service for this callback.
    let Some(svc) = (unsafe { Service::from_raw(svc) }) else {
        return ptr::null_mut();
    };
    let mut flow = Flow(raw::mh_rs_flow::default());
    // SAFETY: `skb` and `iph` are the packet being scheduled and its parsed
    // header, valid for this call; the helper only reads them.
    unsafe { raw::mh_rs_flow_of(skb, iph, &mut flow.0) };
    let guard = rcu::Guard::new();
    let dest = svc
        .state::<<Impl as Callbacks>::State>(&guard)
        .and_then(|state| Impl::schedule(&svc, state, &flow, &guard));
    match dest {
        // IPVS takes its own reference for the connection while still under
        // RCU, before the server's memory can be freed.
        Some(dest) => dest.ptr.as_ptr(),
        None => ptr::null_mut(),
    }
}

/// # Safety
///
/// Called by the /proc show helper only, with a state pointer from the
/// registry (live while the registry lock is held) and its seq_file.
#[no_mangle]
unsafe extern "C" fn mh_rs_state_show(state: *const c_void, seq: *mut raw::seq_file) {
    let node = state.cast::<RcuNode<<Impl as Callbacks>::State>>();
    // SAFETY: The registry holds only live states while its lock is held.
    let Some(node) = (unsafe { node.as_ref() }) else {
        return;
    };
    let Some(ptr) = NonNull::new(seq) else {
        return;
    };
    // INVARIANT: The seq_file of the show call in progress.
    let mut out = SeqFile {
        ptr,
        _p: PhantomData,
    };
    Impl::show(&node.value, &mut out);
}
