// SPDX-License-Identifier: GPL-2.0

//! Per-network-namespace state of the module, shown in a file of each
//! namespace's `/proc/net`.
//!
//! C headers: [`include/net/netns/generic.h`](srctree/include/net/netns/generic.h),
//! [`include/linux/proc_fs.h`](srctree/include/linux/proc_fs.h)
//!
//! Each namespace gets an `Arc<T>` when it is created (or when the module
//! registers, for the namespaces that exist then), kept in the namespace's
//! `net_generic` slot until the namespace goes (or the module does).
//! Whoever needs the state beyond that takes its own reference with
//! [`PerNet::get`]: IPVS tears a namespace's services down only after the
//! module's exit callback has run (pernet operations exit in the reverse
//! order of their registration), so those services must keep the state
//! alive themselves.

use core::cell::UnsafeCell;
use core::marker::{PhantomData, PhantomPinned};
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

use kernel::ffi::{c_int, c_uint, c_void};
use kernel::prelude::*;
use kernel::seq_file::SeqFile;
use kernel::str::CStr;
use kernel::sync::Arc;
use kernel::types::Opaque;

use super::raw;
use super::rcu::ReadLock;

/// A network namespace, alive for `'a`.
///
/// # Invariants
///
/// `ptr` points to a live `struct net` for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct NetRef<'a> {
    ptr: NonNull<raw::net>,
    _p: PhantomData<&'a raw::net>,
}

impl NetRef<'_> {
    /// # Safety
    ///
    /// `ptr` must be a namespace that stays alive for the chosen lifetime.
    pub(super) unsafe fn from_raw(ptr: NonNull<raw::net>) -> Self {
        // INVARIANT: By the caller's guarantee.
        NetRef {
            ptr,
            _p: PhantomData,
        }
    }
}

/// The `net_generic` slot number of a [`NetState`] type, given by the kernel
/// when the state is registered. The module declares one as a `static`.
pub(crate) struct PerNetId {
    id: UnsafeCell<c_uint>,
    /// [`FREE`], [`REGISTERING`], [`OPEN`] or [`CLOSING`].
    state: AtomicU8,
}

/// Not registered.
const FREE: u8 = 0;
/// Being registered: the kernel has the slot number (it writes `id` before
/// it calls `init` for any namespace) but [`PerNet::get`] is not open yet.
const REGISTERING: u8 = 1;
/// Registered: [`PerNet::get`] may read `id`.
const OPEN: u8 = 2;
/// Being unregistered: [`PerNet::get`] is closed again.
const CLOSING: u8 = 3;

// SAFETY: `id` is written by the kernel during `register_pernet_subsys()`
// (state REGISTERING), before it calls the callbacks, which read it; other
// readers (`PerNet::get`) read it only in state OPEN, which is set after the
// registration returned and left before unregistering. Only one
// registration can use the static at a time (`state` is taken with a
// compare-exchange).
unsafe impl Sync for PerNetId {}

impl PerNetId {
    /// A slot number not registered yet.
    pub(crate) const fn new() -> Self {
        PerNetId {
            id: UnsafeCell::new(0),
            state: AtomicU8::new(FREE),
        }
    }

    /// The slot number, for the callbacks the kernel makes once it has set
    /// it.
    fn for_callbacks(&self) -> c_uint {
        // SAFETY: Written by the kernel before it calls any callback (see
        // `Sync`), not changed while the callbacks can run.
        unsafe { *self.id.get() }
    }

    /// The slot number, while the registration is open.
    fn get(&self) -> Option<c_uint> {
        (self.state.load(Ordering::Acquire) == OPEN).then(|| self.for_callbacks())
    }
}

/// State the module keeps for each network namespace.
pub(crate) trait NetState: Send + Sync + Sized + 'static {
    /// The `net_generic` slot of the state (a `static` of the module).
    fn id() -> &'static PerNetId;
    /// The name of the state's file in each namespace's `/proc/net`.
    const PROC_NAME: &'static CStr;
    /// The state of a new namespace.
    fn new() -> Result<Arc<Self>>;
    /// Writes the contents of the namespace's `/proc/net` file.
    fn show(&self, out: &SeqFile);
}

/// The registration of a [`NetState`]: while it lives, every namespace has
/// its state and file.
///
/// # Invariants
///
/// `ops` is registered with the kernel, with `T::id()` as its slot, for as
/// long as this value lives.
pub(crate) struct PerNet<T: NetState> {
    ops: Pin<KBox<PernetOps>>,
    _p: PhantomData<T>,
}

/// The kernel's `struct pernet_operations`, at a stable address.
struct PernetOps {
    ops: Opaque<raw::pernet_operations>,
    _pin: PhantomPinned,
}

// SAFETY: The kernel reads the operations from any CPU; nothing in them is
// tied to a thread.
unsafe impl Send for PernetOps {}
// SAFETY: As above; Rust never accesses them after registration.
unsafe impl Sync for PernetOps {}

/// The slot number `id` of `net`.
///
/// # Safety
///
/// `net` must be a live namespace and `id` the slot number of a registered
/// state, for as long as the reference is used.
unsafe fn slot<T: NetState>(net: *mut raw::net, id: c_uint) -> Option<&'static AtomicPtr<T>> {
    // SAFETY: `net` is a live namespace (caller); the slot exists for every
    // namespace while the state is registered, and is pointer-sized.
    let p = unsafe { raw::mh_rs_net_generic(net, id) };
    // SAFETY: A live, aligned, pointer-sized slot, only accessed atomically
    // by this module; it lives as long as the namespace (caller).
    NonNull::new(p).map(|p| unsafe { AtomicPtr::from_ptr(p.as_ptr().cast::<*mut T>()) })
}

impl<T: NetState> PerNet<T> {
    /// Registers the state: every namespace that exists now and every one
    /// created later gets its state and its `/proc/net` file.
    pub(crate) fn register() -> Result<Self> {
        let state = &T::id().state;
        state
            .compare_exchange(FREE, REGISTERING, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| EBUSY)?;
        let ops = match KBox::pin(
            PernetOps {
                ops: Opaque::zeroed(),
                _pin: PhantomPinned,
            },
            GFP_KERNEL,
        ) {
            Ok(ops) => ops,
            Err(e) => {
                state.store(FREE, Ordering::Release);
                return Err(e.into());
            }
        };
        // SAFETY: `ops` is zeroed and stays at its address until `drop`
        // unregisters it; `T::id()` is a static this registration owns (the
        // state above); the callbacks match the C prototypes.
        let ret = unsafe {
            raw::mh_rs_pernet_register(
                ops.ops.get(),
                T::id().id.get(),
                Some(init::<T>),
                Some(exit::<T>),
            )
        };
        if ret < 0 {
            state.store(FREE, Ordering::Release);
            return Err(Error::from_errno(ret));
        }
        state.store(OPEN, Ordering::Release);
        // INVARIANT: Registered just above.
        Ok(PerNet {
            ops,
            _p: PhantomData,
        })
    }

    /// The state of `net`, or `None` once the namespace is being torn down.
    pub(crate) fn get(net: NetRef<'_>) -> Option<Arc<T>> {
        let id = T::id().get()?;
        // SAFETY: A live namespace (`NetRef`), and `id` registered while the
        // registration is open, which it is until `drop`. A `NetRef` comes
        // from a service in a scheduler callback, and the scheduler is
        // unregistered before this state is dropped (the contract of
        // `Registration::register`): no caller is left by then.
        let slot = unsafe { slot::<T>(net.ptr.as_ptr(), id) }?;
        ReadLock::with(|_| {
            let ptr = NonNull::new(slot.load(Ordering::Acquire))?;
            // SAFETY: A non-null slot holds a reference from `Arc::into_raw`;
            // `exit` takes it out, then waits for a grace period before it
            // drops it, and this read section began before that grace
            // period ended: the state is alive; take a reference.
            let borrowed = unsafe { kernel::sync::ArcBorrow::from_raw(ptr.as_ptr()) };
            Some(borrowed.into())
        })
    }
}

impl<T: NetState> Drop for PerNet<T> {
    fn drop(&mut self) {
        T::id().state.store(CLOSING, Ordering::Release);
        // SAFETY: Registered (type invariant); this runs `exit` for every
        // namespace and waits for it.
        unsafe { raw::mh_rs_pernet_unregister(self.ops.ops.get()) };
        T::id().state.store(FREE, Ordering::Release);
    }
}

/// A namespace is created: make its state and its file.
///
/// # Safety
///
/// Called by the kernel only, with a new namespace.
unsafe extern "C" fn init<T: NetState>(net: *mut raw::net) -> c_int {
    let state = match T::new() {
        Ok(state) => state,
        Err(e) => return e.to_errno(),
    };
    // SAFETY: A live namespace; the kernel set the slot number before this.
    let Some(slot) = (unsafe { slot::<T>(net, T::id().for_callbacks()) }) else {
        return EINVAL.to_errno();
    };
    slot.store(Arc::into_raw(state).cast_mut(), Ordering::Release);
    let name = T::PROC_NAME.as_char_ptr();
    // SAFETY: A live namespace; the name is a static C string; `show` matches
    // the seq_file show prototype.
    let ret = unsafe { raw::mh_rs_proc_net_create(net, name, Some(show::<T>)) };
    if ret < 0 {
        drop_slot(slot);
        return ret;
    }
    0
}

/// A namespace goes (or the module does): remove its file, then drop the
/// namespace's reference on its state.
///
/// # Safety
///
/// Called by the kernel only, with a namespace that `init` succeeded for.
unsafe extern "C" fn exit<T: NetState>(net: *mut raw::net) {
    // SAFETY: A live namespace; removing the entry waits for its readers.
    unsafe { raw::mh_rs_proc_net_remove(net, T::PROC_NAME.as_char_ptr()) };
    // SAFETY: A live namespace; the slot number is set.
    if let Some(slot) = unsafe { slot::<T>(net, T::id().for_callbacks()) } {
        drop_slot(slot);
    }
}

/// Takes the reference out of a slot and drops it, once `PerNet::get`
/// calls that may have read it are done. Process context.
fn drop_slot<T: NetState>(slot: &AtomicPtr<T>) {
    let ptr = slot.swap(ptr::null_mut(), Ordering::AcqRel);
    if !ptr.is_null() {
        // Process context (the pernet callbacks).
        super::rcu::synchronize_rcu();
        // SAFETY: The slot owned a reference from `Arc::into_raw`; it is
        // taken out once, by the swap above, and no reader can still be
        // borrowing it.
        drop(unsafe { Arc::from_raw(ptr) });
    }
}

/// Shows the namespace's `/proc/net` file.
///
/// # Safety
///
/// Called by the seq_file code only, for the file `init` created.
unsafe extern "C" fn show<T: NetState>(seq: *mut raw::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: The file's seq_file belongs to a live namespace while it is
    // read (`exit` removes the file, waiting for readers, first).
    let net = unsafe { raw::mh_rs_seq_net(seq) };
    // SAFETY: As above; the slot number is set while the file exists.
    let Some(slot) = (unsafe { slot::<T>(net, T::id().for_callbacks()) }) else {
        return 0;
    };
    let ptr = slot.load(Ordering::Acquire);
    // SAFETY: The slot's reference is dropped only after the file is
    // removed, which waits for this reader.
    let Some(state) = (unsafe { ptr.as_ref() }) else {
        return 0;
    };
    // SAFETY: The seq_file of this show call, used by this thread only.
    let out = unsafe { SeqFile::from_raw(seq.cast()) };
    state.show(out);
    0
}
