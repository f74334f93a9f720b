// SPDX-License-Identifier: GPL-2.0

//! IPVS schedulers: the registration of a scheduler, its per-service state
//! and the callbacks IPVS makes.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)
//!
//! IPVS calls a scheduler's control-path callbacks (`init_service`,
//! `add_dest`, `del_dest`, `upd_dest`, `done_service`) in process context
//! with the namespace's configuration mutex (`service_mutex`) held, and its
//! `schedule` callback in softirq context inside an RCU read section, on any
//! CPU, concurrently with everything else. A [`Scheduler`]'s per-service
//! state is therefore split in two: [`Scheduler::Shared`], which the packet
//! path reads, and [`Scheduler::Private`], which only the control path
//! touches, one callback at a time, and gets as `&mut`.
//!
//! A scheduler may ask for a call back on the control path later
//! ([`Ctl::retry_in`]), for instance to retry a failed rebuild: IPVS ignores
//! what its `add_dest`/`del_dest`/`upd_dest` callbacks return. The call is
//! made from a work item that takes the configuration mutex with a trylock
//! (re-queuing itself while it is busy), so that `done_service`, which runs
//! with the mutex held, can disable it and wait.

use core::cell::UnsafeCell;
use core::marker::{PhantomData, PhantomPinned};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::ffi::{c_int, c_void};
use kernel::prelude::*;
use kernel::str::CStr;
use kernel::types::Opaque;
use kernel::ThisModule;

use super::dest::{Dest, DestEntry};
use super::packet::Flow;
use super::raw;
use super::rcu::{self, RcuBox, ReadLock, Unpublish, Unpublished, Unpublishing};
use super::service::{Service, ServiceLocked};
use super::work::DelayedWork;

/// What happened to a real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DestChange {
    /// It was added to the service (or brought back from IPVS's trash).
    Added,
    /// It was removed from the service (it is unlinked already).
    Removed,
    /// Its weight, thresholds or forwarding method were edited.
    Updated,
}

/// An IPVS scheduler.
pub(crate) trait Scheduler: Sized + 'static {
    /// The scheduler's name (`ipvsadm -s NAME`).
    const NAME: &'static CStr;
    /// Per-service state the packet path reads.
    type Shared: Send + Sync + Unpublish;
    /// Per-service state only the control path touches.
    type Private: Send;

    /// A service starts using the scheduler. An error fails the service's
    /// creation (or its switch to this scheduler).
    fn init_service(svc: &ServiceLocked<'_>) -> Result<(Self::Shared, Self::Private)>;

    /// One of the service's real servers changed. IPVS ignores the result.
    fn dest_changed(
        ctl: &Ctl<'_, Self>,
        private: &mut Self::Private,
        dest: DestEntry<'_>,
        change: DestChange,
    ) -> Result;

    /// The call asked for with [`Ctl::retry_in`].
    fn retry(ctl: &Ctl<'_, Self>, private: &mut Self::Private);

    /// The service stops using the scheduler. `Private` is dropped when
    /// this returns, `Shared` is unpublished ([`Unpublish`]) right after and
    /// freed once the packet path is done with it.
    fn done_service(ctl: &Ctl<'_, Self>, private: Self::Private);

    /// Picks a real server for a new connection, or `None`.
    fn schedule<'a>(
        svc: &Service<'a>,
        shared: &'a Self::Shared,
        flow: &Flow,
        lock: &'a ReadLock<'_>,
    ) -> Option<Dest<'a>>;
}

/// A service's state, pointed to by its `sched_data`.
///
/// # Invariants
///
/// `private` is accessed only with the service's configuration mutex held
/// (in a control-path callback, or in `run_retry` after taking it), hence
/// never concurrently; it is `None` after `done_service`. `svc` is the
/// service, live until `done_service` returns. `work` is initialised, and
/// disabled (neither queued nor running, for good) before the node is
/// retired.
struct ServiceNode<S: Scheduler> {
    work: DelayedWork,
    svc: NonNull<raw::ip_vs_service>,
    shared: S::Shared,
    private: UnsafeCell<Option<S::Private>>,
}

// SAFETY: `shared` is `Send + Sync`; `private` is `Send` and only accessed
// under the configuration mutex, one thread at a time; `svc` is only used
// by the control path under that mutex; `work` is thread-safe.
unsafe impl<S: Scheduler> Send for ServiceNode<S> {}
// SAFETY: As above.
unsafe impl<S: Scheduler> Sync for ServiceNode<S> {}

impl<S: Scheduler> Unpublish for ServiceNode<S> {
    fn unpublished<'a>(&'a self, u: &mut Unpublishing<'a>) {
        self.shared.unpublished(u);
    }
}

/// The control path's view of a service using scheduler `S`: the service
/// itself, with its configuration mutex held, and its shared state.
pub(crate) struct Ctl<'a, S: Scheduler> {
    svc: ServiceLocked<'a>,
    node: &'a ServiceNode<S>,
}

impl<'a, S: Scheduler> Ctl<'a, S> {
    /// The service.
    pub(crate) fn service(&self) -> &ServiceLocked<'a> {
        &self.svc
    }

    /// The service's shared state.
    pub(crate) fn shared(&self) -> &'a S::Shared {
        &self.node.shared
    }

    /// Asks for [`Scheduler::retry`] in `delay_ms` milliseconds (unless a
    /// call is already pending; never once the service is done).
    pub(crate) fn retry_in(&self, delay_ms: u32) {
        self.node.work.schedule(delay_ms);
    }

    /// Withdraws a pending [`Scheduler::retry`] call, if it has not started
    /// (one that has will run).
    pub(crate) fn retry_not_needed(&self) {
        self.node.work.cancel();
    }
}

/// The kernel's `struct ip_vs_scheduler`, at a stable address.
struct SchedOps {
    ops: Opaque<raw::ip_vs_scheduler>,
    _pin: PhantomPinned,
}

// SAFETY: IPVS reads the object from any CPU; nothing in it is tied to a
// thread.
unsafe impl Send for SchedOps {}
// SAFETY: As above; Rust does not access it after registration.
unsafe impl Sync for SchedOps {}

/// A registered scheduler: IPVS can bind services to it while this lives.
///
/// # Invariants
///
/// `ops` is registered with IPVS, with the callbacks of `S`.
pub(crate) struct Registration<S: Scheduler> {
    ops: Pin<KBox<SchedOps>>,
    _p: PhantomData<S>,
}

impl<S: Scheduler> Registration<S> {
    /// Registers the scheduler. `EEXIST` if IPVS already has a scheduler of
    /// that name.
    ///
    /// # Safety
    ///
    /// From here on services can bind to the scheduler, and IPVS holds the
    /// module, not this value, while they do (`unregister_ip_vs_scheduler`
    /// does not look for them). So the caller must:
    ///
    /// - call it as the last step of the module's init that can fail (if the
    ///   init failed after it, the module would go with services bound);
    /// - keep the value until the module's exit, and drop it there before
    ///   anything the callbacks of `S` use (such as a [`super::pernet::PerNet`]
    ///   state, whose `get` relies on this).
    pub(crate) unsafe fn register(module: &'static ThisModule) -> Result<Self> {
        let ops = KBox::pin(
            SchedOps {
                ops: Opaque::zeroed(),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        )?;
        // SAFETY: `ops` is zeroed and stays at its address until `drop`
        // unregisters it; the name is a static C string; the module is
        // this one; the callbacks match IPVS's prototypes.
        let ret = unsafe {
            raw::mh_rs_sched_register(
                ops.ops.get(),
                S::NAME.as_char_ptr(),
                module.as_ptr().cast(),
                Some(init_service::<S>),
                Some(done_service::<S>),
                Some(add_dest::<S>),
                Some(del_dest::<S>),
                Some(upd_dest::<S>),
                Some(schedule::<S>),
            )
        };
        match ret {
            0 => {}
            // IPVS says EINVAL when a scheduler of the same name exists (the
            // object itself is valid: an initialised, unlinked list head).
            r if r == EINVAL.to_errno() => return Err(EEXIST),
            r => return Err(Error::from_errno(r)),
        }
        // INVARIANT: Registered just above.
        Ok(Registration {
            ops,
            _p: PhantomData,
        })
    }
}

impl<S: Scheduler> Drop for Registration<S> {
    fn drop(&mut self) {
        // Only at module exit (`register`'s contract), and IPVS holds the
        // module while a service uses the scheduler: no service uses it now.
        // SAFETY: Registered (type invariant).
        unsafe { raw::unregister_ip_vs_scheduler(self.ops.ops.get()) };
        // The services' states are freed by RCU callbacks: wait for them
        // before the module's code goes away.
        rcu::barrier();
    }
}

/// A service's `sched_data`, accessed atomically: the packet path reads it
/// while the control path writes it.
///
/// # Safety
///
/// `svc` must be a live service.
unsafe fn sched_data(svc: *mut raw::ip_vs_service) -> &'static AtomicPtr<c_void> {
    // SAFETY: A live service's pointer-sized, aligned field, which IPVS itself
    // does not touch while a scheduler is bound; it lives as long as the
    // service, and callers use the reference only during a callback.
    unsafe { AtomicPtr::from_ptr(&raw mut (*svc).sched_data) }
}

/// The service's node, on the control path.
///
/// # Safety
///
/// `svc` must be a live service bound to `S`, with its configuration mutex
/// held by the caller.
unsafe fn node_locked<'a, S: Scheduler>(svc: &ServiceLocked<'a>) -> Option<&'a ServiceNode<S>> {
    // SAFETY: Live; `sched_data` is written only by `init_service` and
    // `done_service`, under the mutex the caller holds.
    let data = unsafe { sched_data(svc.as_ptr()) }
        .load(Ordering::Relaxed)
        .cast::<ServiceNode<S>>();
    // SAFETY: Null or the node `init_service` published for a service bound
    // to `S` (only `S`'s callbacks are installed in `S`'s registration), freed
    // only after `done_service`, which cannot run meanwhile.
    unsafe { data.as_ref() }
}

/// Runs `f` with the control path's view and private state of `svc`.
///
/// # Safety
///
/// `svc` must be a live service bound to `S` whose configuration mutex the
/// caller holds, for the whole call.
unsafe fn with_ctl<S: Scheduler, R>(
    svc: *mut raw::ip_vs_service,
    f: impl FnOnce(&Ctl<'_, S>, &mut S::Private) -> R,
) -> Option<R> {
    let svc = NonNull::new(svc)?;
    // SAFETY: Live and locked (caller).
    let svc = unsafe { ServiceLocked::from_raw(svc) };
    // SAFETY: As the caller guarantees.
    let node = unsafe { node_locked::<S>(&svc) }?;
    // SAFETY: The mutex is held (caller), so no other access to `private`
    // runs (type invariant of `ServiceNode`).
    let private = unsafe { &mut *node.private.get() }.as_mut()?;
    Some(f(&Ctl { svc, node }, private))
}

/// # Safety
///
/// Called by IPVS only, with a live service and its configuration mutex held.
unsafe extern "C" fn init_service<S: Scheduler>(svc: *mut raw::ip_vs_service) -> c_int {
    let Some(ptr) = NonNull::new(svc) else {
        return EINVAL.to_errno();
    };
    // SAFETY: Live and locked, as IPVS calls it.
    let locked = unsafe { ServiceLocked::from_raw(ptr) };
    let (shared, private) = match S::init_service(&locked) {
        Ok(state) => state,
        Err(e) => return e.to_errno(),
    };
    let node = match RcuBox::new(
        ServiceNode::<S> {
            // SAFETY: Initialised below, as soon as the node is boxed at its
            // final address, before anything can reach it; it is never moved
            // out of the box, and `done_service` disables it before the node
            // is freed.
            work: unsafe { DelayedWork::uninit() },
            svc: ptr,
            shared,
            private: UnsafeCell::new(Some(private)),
        },
        GFP_KERNEL,
    ) {
        Ok(node) => node,
        Err(e) => {
            pr_err!(
                "{}: cannot set up the service (error {})\n",
                locked.name(),
                e.to_errno()
            );
            return e.to_errno();
        }
    };
    // SAFETY: The node is at its final address (boxed), not queued, and is
    // disabled in `done_service` before it is freed; `run_retry::<S>` takes
    // a pointer to a `ServiceNode<S>`'s work item.
    unsafe { node.work.init(run_retry::<S>) };
    let data = node.into_published();
    // INVARIANT: `sched_data` now points to a node of `S`, under the mutex.
    // (IPVS publishes the scheduler itself only after this returns.)
    // SAFETY: Live.
    unsafe { sched_data(svc) }.store(data.as_ptr().cast(), Ordering::Release);
    0
}

/// # Safety
///
/// Called by IPVS only, with a live service and its configuration mutex held,
/// after a successful `init_service`.
unsafe extern "C" fn done_service<S: Scheduler>(svc: *mut raw::ip_vs_service) {
    let Some(ptr) = NonNull::new(svc) else {
        return;
    };
    // SAFETY: Live and locked, as IPVS calls it.
    let locked = unsafe { ServiceLocked::from_raw(ptr) };
    // SAFETY: As above.
    let Some(node) = (unsafe { node_locked::<S>(&locked) }) else {
        return;
    };
    // SAFETY: Locked: no other access to `private` (`ServiceNode`).
    let private = unsafe { &mut *node.private.get() }.take();
    let data = NonNull::from(node);
    if let Some(private) = private {
        S::done_service(&Ctl { svc: locked, node }, private);
    }
    // No retry may run or be queued from here on, whoever asks: the item is
    // disabled for good. It only takes the mutex with a trylock (and queues
    // itself again while it is busy, which the disabling stops), so waiting
    // for it while holding the mutex is fine.
    node.work.disable_sync();
    // IPVS unbound the scheduler (svc->scheduler is NULL) before calling
    // this; packets still being scheduled may read the node until a grace
    // period has passed, which retiring it waits for.
    // SAFETY: Live.
    unsafe { sched_data(svc) }.store(ptr::null_mut(), Ordering::Release);
    // SAFETY: `init_service` published the node with `into_published`; with
    // `sched_data` cleared no new reader finds it; it is taken back once.
    unsafe { Unpublished::from_published(data) }.retire();
}

/// # Safety
///
/// Called by IPVS only (`add_dest`/`del_dest`/`upd_dest`), with a live
/// service, its configuration mutex held, and the server that changed.
unsafe fn dest_changed<S: Scheduler>(
    svc: *mut raw::ip_vs_service,
    dest: *mut raw::ip_vs_dest,
    change: DestChange,
) -> c_int {
    let Some(dest) = NonNull::new(dest) else {
        return EINVAL.to_errno();
    };
    // SAFETY: IPVS keeps the server alive during the callback (linked, or
    // in its trash once removed), under the mutex it holds.
    let dest = unsafe { DestEntry::from_raw(dest) };
    // SAFETY: Live and locked, as IPVS calls it.
    let res = unsafe { with_ctl::<S, _>(svc, |ctl, p| S::dest_changed(ctl, p, dest, change)) };
    match res {
        Some(Ok(())) => 0,
        Some(Err(e)) => e.to_errno(),
        None => EINVAL.to_errno(),
    }
}

/// # Safety
///
/// As `dest_changed`.
unsafe extern "C" fn add_dest<S: Scheduler>(
    svc: *mut raw::ip_vs_service,
    dest: *mut raw::ip_vs_dest,
) -> c_int {
    // SAFETY: As IPVS calls it.
    unsafe { dest_changed::<S>(svc, dest, DestChange::Added) }
}

/// # Safety
///
/// As `dest_changed`.
unsafe extern "C" fn del_dest<S: Scheduler>(
    svc: *mut raw::ip_vs_service,
    dest: *mut raw::ip_vs_dest,
) -> c_int {
    // SAFETY: As IPVS calls it.
    unsafe { dest_changed::<S>(svc, dest, DestChange::Removed) }
}

/// # Safety
///
/// As `dest_changed`.
unsafe extern "C" fn upd_dest<S: Scheduler>(
    svc: *mut raw::ip_vs_service,
    dest: *mut raw::ip_vs_dest,
) -> c_int {
    // SAFETY: As IPVS calls it.
    unsafe { dest_changed::<S>(svc, dest, DestChange::Updated) }
}

/// The retry work item of a service.
///
/// # Safety
///
/// Called by the workqueue only, for the work item of a `ServiceNode<S>`.
unsafe extern "C" fn run_retry<S: Scheduler>(work: *mut raw::work_struct) {
    let item = DelayedWork::from_work(work);
    let offset = core::mem::offset_of!(ServiceNode<S>, work);
    // SAFETY: The item is the `work` field of a `ServiceNode<S>` (caller),
    // `offset` bytes into it; `done_service` disables the item and waits for
    // it before the node is retired, so the node is live.
    let node = unsafe { &*item.byte_sub(offset).cast::<ServiceNode<S>>() };
    let svc = node.svc;
    // The service is live until `done_service` returns, which waits for
    // this function. Its mutex may be held by a callback, `done_service`
    // included, which may be waiting for this function: never block on it.
    // SAFETY: A live service.
    if !unsafe { raw::mh_rs_svc_trylock(svc.as_ptr()) } {
        node.work.schedule(1);
        return;
    }
    // SAFETY: Live, and its mutex is held now, until the unlock below.
    unsafe {
        with_ctl::<S, _>(svc.as_ptr(), |ctl, p| S::retry(ctl, p));
        raw::mh_rs_svc_unlock(svc.as_ptr());
    }
}

/// # Safety
///
/// Called by IPVS only, in softirq context inside an RCU read section, with
/// a live service bound to `S`, and the packet and header being scheduled.
unsafe extern "C" fn schedule<S: Scheduler>(
    svc: *mut raw::ip_vs_service,
    skb: *const raw::sk_buff,
    iph: *mut raw::ip_vs_iphdr,
) -> *mut raw::ip_vs_dest {
    let Some(ptr) = NonNull::new(svc) else {
        return ptr::null_mut();
    };
    // SAFETY: IPVS calls `schedule` inside the netfilter hook's RCU read
    // section, which lasts for this call.
    let lock = unsafe { ReadLock::assume() };
    // SAFETY: Live for the call, as IPVS calls it; `af` never changes.
    let (data, af) = unsafe { (sched_data(svc).load(Ordering::Acquire), (*svc).af) };
    // SAFETY: `sched_data` is null or the published node of a service bound
    // to `S`, retired only after a grace period, which `lock` holds off.
    let Some(node) = (unsafe { data.cast::<ServiceNode<S>>().as_ref() }) else {
        return ptr::null_mut();
    };
    // SAFETY: The packet and header IPVS passed, for this call.
    let flow = unsafe { Flow::read(skb, iph, af) };
    // SAFETY: Live for this call; the node's retry item.
    let service = unsafe { Service::from_raw(ptr, &node.work) };
    match S::schedule(&service, &node.shared, &flow, &lock) {
        // IPVS takes its own reference for the connection while still in
        // the read section, before the server's memory can be freed.
        Some(dest) => dest.as_ptr(),
        None => ptr::null_mut(),
    }
}
