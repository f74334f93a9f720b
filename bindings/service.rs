// SPDX-License-Identifier: GPL-2.0

//! Virtual services (`struct ip_vs_service`), as a scheduler sees them: on
//! the control path, with the namespace's configuration mutex held, and on
//! the packet path.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)

use core::fmt;
use core::marker::PhantomData;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::ptr::{self, NonNull};

use kernel::prelude::*;

use super::dest::DestEntry;
use super::pernet::NetRef;
use super::work::DelayedWork;
use super::{layout, raw};

/// The scheduler flags of a service (`ipvsadm -b`), which IPVS leaves to
/// the scheduler to interpret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SchedFlags(u32);

impl SchedFlags {
    /// Scheduler flag 1 (`flag-1`, the `mh-fallback` of the mh scheduler).
    pub(crate) fn flag1(self) -> bool {
        self.0 & raw::IP_VS_SVC_F_SCHED1 != 0
    }

    /// Scheduler flag 2 (`flag-2`, `mh-port`).
    pub(crate) fn flag2(self) -> bool {
        self.0 & raw::IP_VS_SVC_F_SCHED2 != 0
    }

    /// Scheduler flag 3 (`flag-3`).
    pub(crate) fn flag3(self) -> bool {
        self.0 & raw::IP_VS_SVC_F_SCHED3 != 0
    }
}

/// Reads a service's flags: `ipvsadm -E` may edit them at any time, and a
/// scheduler sees either value, like the C schedulers' plain reads.
///
/// # Safety
///
/// `svc` must point to a live service.
unsafe fn read_flags(svc: NonNull<raw::ip_vs_service>) -> SchedFlags {
    // SAFETY: Live (caller); an aligned `unsigned int`, read whole.
    let flags = unsafe { ptr::read_volatile(&raw const (*svc.as_ptr()).flags) };
    SchedFlags(flags)
}

/// The `next` of a `struct list_head` (opaque to bindgen), at the offset
/// the C compiler gave it.
///
/// # Safety
///
/// `link` must point to a live `struct list_head` that nobody writes
/// meanwhile.
unsafe fn list_next(link: *mut raw::list_head) -> *mut raw::list_head {
    // SAFETY: A pointer-sized, aligned field of the live entry (caller), at
    // the offset bindings/layout.c computed.
    unsafe {
        link.byte_add(layout::LIST_NEXT)
            .cast::<*mut raw::list_head>()
            .read()
    }
}

/// A virtual service on the control path: borrowed for a callback during
/// which IPVS holds the namespace's configuration mutex (`service_mutex`),
/// so that its real servers do not change.
///
/// # Invariants
///
/// `ptr` points to a live service for `'a`, whose namespace's
/// configuration mutex is held for `'a`.
pub(crate) struct ServiceLocked<'a> {
    ptr: NonNull<raw::ip_vs_service>,
    _p: PhantomData<&'a raw::ip_vs_service>,
}

impl<'a> ServiceLocked<'a> {
    /// # Safety
    ///
    /// `ptr` must be a live service whose namespace's configuration mutex
    /// the caller holds for `'a`.
    pub(super) unsafe fn from_raw(ptr: NonNull<raw::ip_vs_service>) -> Self {
        // SAFETY: In debug kernels, check the mutex the caller must hold.
        unsafe { raw::mh_rs_svc_assert_locked(ptr.as_ptr()) };
        // INVARIANT: By the caller's guarantee.
        ServiceLocked {
            ptr,
            _p: PhantomData,
        }
    }

    pub(super) fn as_ptr(&self) -> *mut raw::ip_vs_service {
        self.ptr.as_ptr()
    }

    /// The service's real servers, in IPVS list order (the newest first).
    ///
    /// The list is walked here rather than through a C helper per server:
    /// a rebuild walks it twice, a thousand servers long.
    pub(crate) fn dests(&self) -> impl Iterator<Item = DestEntry<'a>> + 'a {
        // SAFETY: The service is live for `'a` (type invariant); this only
        // takes the address of its list head.
        let head: *mut raw::list_head = unsafe { &raw mut (*self.ptr.as_ptr()).destinations };
        // SAFETY: The list is stable while the mutex is held, for `'a` (type
        // invariant): IPVS links and unlinks servers only under it.
        let mut next = unsafe { list_next(head) };
        core::iter::from_fn(move || {
            if next == head || next.is_null() {
                return None;
            }
            let link = next;
            // SAFETY: `link` is not the head, so it is the `n_list` of a
            // server linked in the service, live while the mutex is held;
            // its `next` is the following entry (or the head).
            next = unsafe { list_next(link) };
            // SAFETY: `link` is the `n_list` field of a `struct
            // ip_vs_dest` (container_of): going back by the field's offset
            // stays inside that server.
            let dest = unsafe { link.byte_sub(layout::DEST_N_LIST) }.cast::<raw::ip_vs_dest>();
            // SAFETY: A linked server stays live while the mutex is held.
            NonNull::new(dest).map(|p| unsafe { DestEntry::from_raw(p) })
        })
    }

    /// The number of real servers.
    pub(crate) fn num_dests(&self) -> usize {
        // SAFETY: Live, and written only under the mutex we hold.
        unsafe { (*self.ptr.as_ptr()).num_dests as usize }
    }

    /// Whether the service is IPv6.
    pub(crate) fn is_ipv6(&self) -> bool {
        // SAFETY: Live; `af` is set before the scheduler is bound.
        unsafe { (*self.ptr.as_ptr()).af == super::AF_INET6 }
    }

    /// The service's scheduler flags.
    pub(crate) fn flags(&self) -> SchedFlags {
        // SAFETY: Live by the type invariant.
        unsafe { read_flags(self.ptr) }
    }

    /// The service's name, e.g. `TCP 192.0.2.1:80` or `FWM 7`.
    pub(crate) fn name(&self) -> ServiceName {
        let s = self.ptr.as_ptr();
        // SAFETY: Live; these fields identify the service and do not change
        // while it exists.
        let (fwmark, protocol, port, addr) = unsafe {
            let addr = if (*s).af == super::AF_INET6 {
                IpAddr::V6(Ipv6Addr::from((*s).addr.in6.in6_u.u6_addr8))
            } else {
                IpAddr::V4(Ipv4Addr::from(u32::from_be((*s).addr.ip)))
            };
            ((*s).fwmark, (*s).protocol, u16::from_be((*s).port), addr)
        };
        ServiceName {
            fwmark,
            protocol,
            port,
            addr,
        }
    }

    /// The service's network namespace.
    pub(crate) fn net(&self) -> Option<NetRef<'a>> {
        // SAFETY: Live; a service's namespace outlives it.
        let net = unsafe { raw::mh_rs_svc_net(self.ptr.as_ptr()) };
        // SAFETY: The namespace of a live service is live for `'a`.
        NonNull::new(net).map(|net| unsafe { NetRef::from_raw(net) })
    }
}

/// A virtual service on the packet path: borrowed for one scheduling
/// decision, in softirq context under RCU.
///
/// # Invariants
///
/// `ptr` points to a live service for `'a`.
pub(crate) struct Service<'a> {
    ptr: NonNull<raw::ip_vs_service>,
    /// The scheduler's retry work item of the service.
    retry: &'a DelayedWork,
    _p: PhantomData<&'a raw::ip_vs_service>,
}

impl<'a> Service<'a> {
    /// # Safety
    ///
    /// `ptr` must be a service IPVS passed to the `schedule` callback, used
    /// only during it; `retry` its scheduler state's retry item.
    pub(super) unsafe fn from_raw(
        ptr: NonNull<raw::ip_vs_service>,
        retry: &'a DelayedWork,
    ) -> Self {
        // INVARIANT: IPVS keeps the service alive while it schedules.
        Service {
            ptr,
            retry,
            _p: PhantomData,
        }
    }

    /// Asks for the scheduler's `retry` call on the control path, soon
    /// (nothing if one is pending, or once the service is done: the item is
    /// disabled then). Any context.
    #[inline]
    pub(crate) fn retry_soon(&self) {
        self.retry.schedule(0);
    }

    /// Whether the service is IPv6.
    #[inline]
    pub(crate) fn is_ipv6(&self) -> bool {
        // SAFETY: Live; `af` never changes.
        unsafe { (*self.ptr.as_ptr()).af == super::AF_INET6 }
    }

    /// The service's scheduler flags.
    #[inline]
    pub(crate) fn flags(&self) -> SchedFlags {
        // SAFETY: Live by the type invariant.
        unsafe { read_flags(self.ptr) }
    }

    /// Reports "no destination available" (rate-limited by IPVS).
    pub(crate) fn no_destination(&self) {
        // SAFETY: The service is live and the message a static C string.
        unsafe {
            raw::ip_vs_scheduler_err(self.ptr.as_ptr(), c"no destination available".as_char_ptr())
        };
    }
}

/// A service's name for messages and `/proc`: `TCP 192.0.2.1:80`,
/// `UDP [2001:db8::1]:53`, `FWM 7` or `FWM6 7`.
#[derive(Clone, Copy)]
pub(crate) struct ServiceName {
    fwmark: u32,
    protocol: u16,
    port: u16,
    addr: IpAddr,
}

impl ServiceName {
    /// The virtual port (0 for a firewall-mark service).
    #[cfg_attr(
        not(mh_rs_test_hooks),
        expect(dead_code, reason = "only the tests' build asks")
    )]
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl kernel::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fwmark != 0 {
            let fam = if self.addr.is_ipv6() { "FWM6" } else { "FWM" };
            return write!(f, "{} {}", fam, self.fwmark);
        }
        let proto = match u32::from(self.protocol) {
            raw::IPPROTO_TCP => "TCP",
            raw::IPPROTO_UDP => "UDP",
            raw::IPPROTO_SCTP => "SCTP",
            _ => "IP",
        };
        match self.addr {
            IpAddr::V4(a) => write!(f, "{} {}:{}", proto, a, self.port),
            IpAddr::V6(a) => write!(f, "{} [{}]:{}", proto, a, self.port),
        }
    }
}
