// SPDX-License-Identifier: GPL-2.0

//! Values published to RCU readers, and retired after a grace period.
//!
//! C header: [`include/linux/rcupdate.h`](srctree/include/linux/rcupdate.h)
//!
//! The control path builds a value in an [`RcuBox`], publishes it in an
//! [`RcuPtr`] and, when it replaces it, gets the old one back as an
//! [`Unpublished`]: that can only be retired, which gives back at once what
//! must not outlive the publication ([`Unpublish`]) and frees the memory
//! after a grace period. Readers borrow the published value for as long as
//! they hold a [`ReadLock`] and the pointer.
//!
//! The kernel crate of Linux 7.3 has the read-side guard but no RCU-protected
//! pointer or deferred free, so they are here. [`ReadLock`] is the evidence
//! readers show: taken with the kernel's [`rcu::Guard`], or, on the packet
//! path, the read section IPVS itself holds around a scheduler.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};

use kernel::prelude::*;
use kernel::sync::rcu;
use kernel::types::Opaque;

use super::raw;

/// Evidence that the RCU read-side lock is held on this CPU for `'a`.
pub(crate) struct ReadLock<'a> {
    /// Not `Send`: the lock is held by this CPU/thread.
    _p: PhantomData<(&'a (), *mut ())>,
}

impl ReadLock<'_> {
    /// Runs `f` inside a read section of its own.
    pub(crate) fn with<R>(f: impl FnOnce(&ReadLock<'_>) -> R) -> R {
        let _guard = rcu::Guard::new();
        // The guard holds the read lock until the end of this function.
        f(&ReadLock { _p: PhantomData })
    }

    /// The read section the caller is already in.
    ///
    /// # Safety
    ///
    /// The RCU read-side lock must be held on this CPU for the chosen
    /// lifetime (IPVS calls a scheduler's `schedule` inside the netfilter
    /// hook's read section).
    pub(super) unsafe fn assume() -> Self {
        ReadLock { _p: PhantomData }
    }
}

/// What a value published to RCU readers does when it is unpublished, before
/// the grace period after which its memory is freed: hand its own counted
/// references ([`super::dest::DestRefs`]) and the values it publishes itself
/// ([`RcuPtr`]) to `u`, which gives the references back and retires the
/// nested values (see [`super::dest::DestRefs::release`] for why this cannot
/// wait for the grace period).
///
/// The value is dropped later, in an RCU callback: its `Drop` must be fine
/// in atomic context, on any CPU (hence `Send`).
pub(crate) trait Unpublish: Send {
    /// Called once, on the control path, when the value is retired.
    fn unpublished<'a>(&'a self, u: &mut Unpublishing<'a>);
}

/// Something whose counted references [`Unpublishing`] gives back.
pub(super) trait Release {
    /// Gives the references back, once.
    fn release(&self);
}

/// The unpublishing of one value: what its [`Unpublish`] hook hands over.
///
/// Only this module makes one, only for a value no new reader can find, and
/// the references are given back only after the hook has returned, so that
/// no code of the hook can look at released servers.
///
/// Only sets stored in the value itself are taken: a set reached through a
/// pointer (an `Arc`, a `KBox`) may be reachable from elsewhere too, by code
/// that is no RCU reader of this value and would look at its servers after
/// IPVS freed them. The lifetime alone cannot say so (a reference through
/// an `Arc` field has the hook's lifetime too), so [`Unpublishing::release`]
/// checks that the set lies within the value's memory.
pub(crate) struct Unpublishing<'a> {
    /// The value's memory: the addresses of its inline fields.
    value: core::ops::Range<usize>,
    /// No reader can reach the value any more (it is being freed): nor can
    /// one reach what it publishes, which is then freed at once too.
    unreachable: bool,
    /// At most this many sets per value.
    sets: [Option<&'a dyn Release>; 4],
    _invariant: PhantomData<fn(&'a ()) -> &'a ()>,
}

impl<'a> Unpublishing<'a> {
    fn new<T>(value: &T, unreachable: bool) -> Self {
        let start = ptr::from_ref(value).addr();
        Unpublishing {
            value: start..start + core::mem::size_of::<T>(),
            unreachable,
            sets: [None; 4],
            _invariant: PhantomData,
        }
    }

    /// Gives the references of `refs`, a field of the value being
    /// unpublished, back once the hook has returned. A set that is not
    /// inside the value, or a fifth one, is refused with an error message:
    /// it gives its references back when it is dropped, after the grace
    /// period (late for IPVS at namespace teardown, see
    /// [`super::dest::DestRefs::release`], but no server is freed early).
    pub(crate) fn release<T: Send>(&mut self, refs: &'a super::dest::DestRefs<T>) {
        let start = ptr::from_ref(refs).addr();
        let end = start + core::mem::size_of::<super::dest::DestRefs<T>>();
        if start < self.value.start || end > self.value.end {
            pr_err!("bug: a real server set handed over that is not the unpublished value's own\n");
            return;
        }
        match self.sets.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(refs),
            None => pr_err!("bug: more than 4 real server sets in one unpublished value\n"),
        }
    }

    /// Unpublishes the value `ptr` publishes and retires it: after a grace
    /// period, or at once where the value being unpublished is itself
    /// unreachable (then so is this one, which readers could only find
    /// through it; and no RCU callback is queued from inside one, where
    /// [`barrier`] may already have returned).
    pub(crate) fn retire<T: Unpublish>(&mut self, ptr: &'a RcuPtr<T>) {
        if let Some(old) = ptr.replace(None) {
            if self.unreachable {
                // SAFETY: Unreachable, as `self`'s value is (`self.unreachable`).
                unsafe { old.free_unreachable() };
            } else {
                old.retire();
            }
        }
    }

    /// Runs `value`'s hook, then gives back what it handed over.
    /// `unreachable`: no reader can reach `value` any more.
    fn run<T: Unpublish>(value: &T, unreachable: bool) {
        let mut u = Unpublishing::new(value, unreachable);
        value.unpublished(&mut u);
        for refs in u.sets.into_iter().flatten() {
            refs.release();
        }
    }
}

/// A heap value with room for an RCU callback, not (or no longer) visible to
/// readers: it is owned, and dropping it frees it at once.
///
/// # Invariants
///
/// `ptr` is a `KBox<RcuNode<T>>` leaked by [`RcuBox::new`], owned by this
/// value, and no reader can reach it.
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
        // INVARIANT: Leaked here, owned by the new value, not published.
        Ok(RcuBox {
            ptr: NonNull::from(KBox::leak(node)),
        })
    }

    /// The bytes one `RcuBox<T>` allocates.
    pub(crate) const fn alloc_bytes() -> usize {
        core::mem::size_of::<RcuNode<T>>()
    }

    fn into_raw(self) -> NonNull<RcuNode<T>> {
        let ptr = self.ptr;
        core::mem::forget(self);
        ptr
    }

    /// Publishes the value through a raw pointer that C code keeps and
    /// readers follow (IPVS's `sched_data`). Take it back with
    /// [`Unpublished::from_published`].
    pub(crate) fn into_published(self) -> NonNull<T>
    where
        T: Unpublish,
    {
        let node = self.into_raw();
        // SAFETY: A valid node: the pointer to its field is valid too.
        unsafe { NonNull::new_unchecked(&raw mut (*node.as_ptr()).value) }
    }
}

impl<T> core::ops::Deref for RcuBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: Owned and valid by the type invariant.
        unsafe { &self.ptr.as_ref().value }
    }
}

impl<T> core::ops::DerefMut for RcuBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: Owned, valid and unreachable by readers (type invariant):
        // this is the only access.
        unsafe { &mut self.ptr.as_mut().value }
    }
}

impl<T> Drop for RcuBox<T> {
    fn drop(&mut self) {
        // SAFETY: Owned, leaked from a `KBox` and unreachable by readers, by
        // the type invariant.
        drop(unsafe { KBox::from_raw(self.ptr.as_ptr()) });
    }
}

/// A value taken out of an [`RcuPtr`]: readers that found it before may
/// still use it, so it can only be retired.
///
/// # Invariants
///
/// `ptr` is a node leaked from an [`RcuBox`], owned by this value; readers
/// may hold references to its value until a grace period has passed.
#[must_use = "an unpublished value must be retired"]
pub(crate) struct Unpublished<T: Unpublish> {
    ptr: NonNull<RcuNode<T>>,
}

// SAFETY: As for `RcuBox`: it owns a `T` (which is `Send`, see `Unpublish`).
unsafe impl<T: Unpublish> Send for Unpublished<T> {}

impl<T: Unpublish> Unpublished<T> {
    /// The value behind a pointer from [`RcuBox::into_published`], which
    /// its keeper no longer publishes.
    ///
    /// # Safety
    ///
    /// `ptr` must come from [`RcuBox::into_published`]; no new reader may
    /// find it any more, and it must not have been taken back before.
    pub(crate) unsafe fn from_published(ptr: NonNull<T>) -> Self {
        let offset = core::mem::offset_of!(RcuNode<T>, value);
        // SAFETY: `ptr` is the `value` field of a node (caller), `offset`
        // bytes into it.
        let node = unsafe { ptr.byte_sub(offset) }.cast::<RcuNode<T>>();
        // INVARIANT: The caller hands the node's ownership over.
        Unpublished { ptr: node }
    }

    /// Retires the value now: [`Unpublish::unpublished`] runs at once, the
    /// value is dropped after every reader that may still see it is done.
    pub(crate) fn retire(self) {
        drop(self);
    }

    /// Runs the hook and frees the value now.
    ///
    /// # Safety
    ///
    /// No reader may still hold a reference to the value: it was only
    /// reachable through a value that is itself past its grace period, or
    /// never published.
    unsafe fn free_unreachable(self) {
        let node = core::mem::ManuallyDrop::new(self).ptr;
        // SAFETY: Owned (type invariant; `self` is forgotten) and leaked from
        // a `KBox`; unreachable (caller).
        let node = unsafe { KBox::from_raw(node.as_ptr()) };
        Unpublishing::run(&node.value, true);
    }
}

impl<T: Unpublish> Drop for Unpublished<T> {
    fn drop(&mut self) {
        // SAFETY: The node is live (type invariant) and only shared with
        // readers, which the hook takes `&self` for.
        Unpublishing::run(&unsafe { self.ptr.as_ref() }.value, false);
        retire_node(self.ptr);
    }
}

/// Queues `node` to be freed after a grace period.
fn retire_node<T>(node: NonNull<RcuNode<T>>) {
    /// # Safety
    ///
    /// Only for `call_rcu`, with the head of a node given by `retire_node`.
    unsafe extern "C" fn free<T>(head: *mut raw::callback_head) {
        // `head` is the first field of a `#[repr(C)]` `RcuNode<T>`.
        let node = head.cast::<RcuNode<T>>();
        #[cfg(mh_rs_test_hooks)]
        {
            // SAFETY: The callback owns the node until it frees it.
            let delays = unsafe { &mut (*node).delays };
            if *delays > 0 {
                *delays -= 1;
                // SAFETY: The head is ours again now that its callback runs;
                // queue it once more, for the next grace period.
                unsafe { raw::call_rcu(head, Some(free::<T>)) };
                return;
            }
            test_hooks::freed();
        }
        // SAFETY: `retire_node` passed the head of a node leaked from a
        // `KBox`; RCU calls this once, after the grace period, when no
        // reader can hold a reference any more.
        drop(unsafe { KBox::from_raw(node) });
    }
    #[cfg(mh_rs_test_hooks)]
    test_hooks::retired();
    // SAFETY: The caller hands over the node; `call_rcu` owns its head until
    // the callback runs. `barrier()` waits for the callbacks before the
    // module's code goes away.
    unsafe {
        raw::call_rcu(
            Opaque::cast_into(&raw const (*node.as_ptr()).head),
            Some(free::<T>),
        )
    };
}

/// Waits until every value retired so far has been freed. Process context;
/// the module calls it before it unloads.
pub(crate) fn barrier() {
    rcu_barrier();
    #[cfg(mh_rs_test_hooks)]
    test_hooks::barrier();
}

/// Waits for every RCU callback queued so far to have run: the kernel
/// crate's where it has one (Linux 7.3, Kbuild detects it), else the C
/// function. Process context.
fn rcu_barrier() {
    #[cfg(mh_rs_rust_rcu_barrier)]
    rcu::rcu_barrier();
    #[cfg(not(mh_rs_rust_rcu_barrier))]
    // SAFETY: No precondition but process context, which callers have.
    unsafe {
        raw::rcu_barrier()
    };
}

/// Waits for a grace period: every RCU read section begun before has
/// ended. The kernel crate's where it has one, as [`rcu_barrier`]. Process
/// context.
pub(crate) fn synchronize_rcu() {
    #[cfg(mh_rs_rust_rcu_barrier)]
    rcu::synchronize_rcu();
    #[cfg(not(mh_rs_rust_rcu_barrier))]
    // SAFETY: No precondition but process context, which callers have.
    unsafe {
        raw::synchronize_rcu()
    };
}

/// An RCU-protected pointer to a value published by the control path.
///
/// # Invariants
///
/// `ptr` is null or owns a node leaked from an [`RcuBox`], which readers
/// may reference until a grace period after it is replaced.
pub(crate) struct RcuPtr<T: Unpublish> {
    ptr: AtomicPtr<RcuNode<T>>,
    _p: PhantomData<T>,
}

// SAFETY: The pointer owns a `T` (sent with it) and shares it with readers
// on every CPU: `T` must be `Send` and `Sync`.
unsafe impl<T: Unpublish + Send + Sync> Send for RcuPtr<T> {}
// SAFETY: As above: `&RcuPtr<T>` gives `&T` to readers on any CPU and lets
// the control path replace (and so later drop) the `T` from any thread.
unsafe impl<T: Unpublish + Send + Sync> Sync for RcuPtr<T> {}

impl<T: Unpublish> RcuPtr<T> {
    /// An empty pointer.
    pub(crate) const fn new() -> Self {
        // INVARIANT: Null.
        RcuPtr {
            ptr: AtomicPtr::new(ptr::null_mut()),
            _p: PhantomData,
        }
    }

    /// The published value, borrowed while both the pointer and the guard
    /// are.
    #[inline]
    pub(crate) fn get<'a>(&'a self, _lock: &'a ReadLock<'_>) -> Option<&'a T> {
        // Acquire pairs with the release in `replace`: the reader sees the
        // value fully built (stronger than rcu_dereference's dependency order).
        let node = self.ptr.load(Ordering::Acquire);
        // SAFETY: A non-null pointer is a published node; it is freed only
        // after a grace period that follows its replacement, which the read
        // lock holds off, and not before `self` is dropped.
        unsafe { node.as_ref() }.map(|node| &node.value)
    }

    /// Publishes `new` and returns the previous value, which readers may
    /// still see.
    pub(crate) fn replace(&self, new: Option<RcuBox<T>>) -> Option<Unpublished<T>> {
        let new = new.map_or(ptr::null_mut(), |b| RcuBox::into_raw(b).as_ptr());
        // INVARIANT: The node of `new` is now owned by the pointer.
        let old = self.ptr.swap(new, Ordering::AcqRel);
        // INVARIANT: Ownership of `old` moves to the returned value.
        NonNull::new(old).map(|ptr| Unpublished { ptr })
    }
}

impl<T: Unpublish> Drop for RcuPtr<T> {
    fn drop(&mut self) {
        let node = *self.ptr.get_mut();
        if let Some(node) = NonNull::new(node) {
            // The owner is being dropped, so no reader can reach this pointer
            // any more: either it was never shared, or the owner itself was
            // retired and a grace period has passed. Unpublish and free now,
            // with whatever it publishes itself (which is no more reachable).
            // (An owner that was published should have retired this pointer
            // in its own hook: here, in its RCU callback, references go back
            // too late for IPVS, see `DestRefs::release`.)
            // SAFETY: The node is owned (type invariant) and unreachable.
            let node = unsafe { KBox::from_raw(node.as_ptr()) };
            Unpublishing::run(&node.value, true);
        }
    }
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
    static PENDING: AtomicUsize = AtomicUsize::new(0);

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
            super::rcu_barrier();
        }
        // The last callback counted itself freed before it freed the node:
        // wait until it has returned too.
        super::rcu_barrier();
    }
}
