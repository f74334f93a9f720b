// SPDX-License-Identifier: GPL-2.0

//! Delayed work items: a function that the system workqueue runs later, in
//! process context.
//!
//! C header: [`include/linux/workqueue.h`](srctree/include/linux/workqueue.h)
//!
//! The kernel crate's `workqueue` module (Linux 7.3) queues `Arc`-owned
//! items but cannot disable them and wait, which an owner that frees the
//! item itself needs; this is the small raw version the scheduler
//! abstraction embeds in its per-service state.

use kernel::types::Opaque;

use super::raw;

/// A `struct delayed_work`, embedded in its owner.
///
/// # Invariants
///
/// The item is initialised with its function ([`DelayedWork::init`]) before
/// any other method is called, and stays at its address until its owner
/// disables it with [`DelayedWork::disable_sync`] and frees it (the contract
/// of [`DelayedWork::uninit`], the only way to make one).
#[repr(transparent)]
pub(crate) struct DelayedWork {
    work: Opaque<raw::delayed_work>,
}

// SAFETY: The workqueue functions may be called from any thread, on an item
// owned by any thread.
unsafe impl Send for DelayedWork {}
// SAFETY: As above: every method takes `&self` and calls a workqueue
// function that synchronises itself.
unsafe impl Sync for DelayedWork {}

impl DelayedWork {
    /// An item to be initialised in place by [`DelayedWork::init`].
    ///
    /// # Safety
    ///
    /// The caller must call [`DelayedWork::init`] once the item is at its
    /// final address and before it calls any other method or lets anyone
    /// else reach the item, and must not move it afterwards until
    /// [`DelayedWork::disable_sync`] has returned.
    pub(super) unsafe fn uninit() -> Self {
        DelayedWork {
            work: Opaque::zeroed(),
        }
    }

    /// Initialises the item with the function the workqueue calls.
    ///
    /// # Safety
    ///
    /// The item must be at its final address, not queued, and stay there
    /// until it is disabled with [`DelayedWork::disable_sync`]; `func` must
    /// be sound to call with a pointer to this item's `work_struct`.
    pub(super) unsafe fn init(&self, func: unsafe extern "C" fn(*mut raw::work_struct)) {
        // SAFETY: As the caller guarantees.
        unsafe { raw::mh_rs_delayed_work_init(self.work.get(), Some(func)) };
    }

    /// Queues the item to run in `delay_ms` milliseconds, unless it is
    /// already queued (or disabled). Any context.
    pub(super) fn schedule(&self, delay_ms: u32) {
        // SAFETY: Initialised and at a stable address (type invariant).
        unsafe { raw::mh_rs_delayed_work_queue(self.work.get(), delay_ms) };
    }

    /// Takes the item off the queue if it is queued, without waiting for it
    /// if it runs. Any context.
    pub(super) fn cancel(&self) {
        // SAFETY: Initialised (type invariant).
        unsafe { raw::cancel_delayed_work(self.work.get()) };
    }

    /// Disables the item for good and waits until it is neither queued nor
    /// running (it may try to queue itself meanwhile: it is not queued).
    /// Later [`DelayedWork::schedule`] calls do nothing. Process context.
    pub(super) fn disable_sync(&self) {
        // SAFETY: Initialised (type invariant).
        unsafe { raw::disable_delayed_work_sync(self.work.get()) };
    }

    /// The item whose `work_struct` is `work`.
    pub(super) fn from_work(work: *mut raw::work_struct) -> *const DelayedWork {
        // A `delayed_work` starts with its `work_struct` (asserted in
        // mod.rs), and `DelayedWork` is only that.
        work.cast::<DelayedWork>()
    }
}
