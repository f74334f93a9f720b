// SPDX-License-Identifier: GPL-2.0

//! What a packet is scheduled on: its client's address and port.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)

use core::ptr;

use super::raw;

/// The client of a packet being scheduled: for an ICMP error about a flow
/// (an "inverse" header) the client is the embedded packet's destination.
pub(crate) struct Flow(raw::mh_rs_flow);

impl Flow {
    /// Reads the client of the packet `skb` whose header IPVS parsed into
    /// `iph`, for a service of family `af`.
    ///
    /// # Safety
    ///
    /// `skb` and `iph` must be the packet and parsed header IPVS passed to
    /// the `schedule` callback, used during it.
    #[inline]
    pub(super) unsafe fn read(
        skb: *const raw::sk_buff,
        iph: *const raw::ip_vs_iphdr,
        af: u16,
    ) -> Self {
        // All 16 address bytes start initialised: the helper writes only
        // those of the family (4 for IPv4).
        let mut flow = Flow(raw::mh_rs_flow::default());
        // SAFETY: Valid packet and header (caller); the helper only reads
        // them and writes `flow`.
        unsafe { raw::mh_rs_flow_of(skb, iph, af, ptr::from_mut(&mut flow.0)) };
        flow
    }

    /// The client's address bytes in network order (IPv4 in the first
    /// four, the rest zero).
    #[inline]
    pub(crate) fn addr(&self) -> [u8; 16] {
        // SAFETY: Every member of the union is plain bytes over the same 16
        // bytes, all initialised (`read`).
        unsafe { self.0.addr.in6.in6_u.u6_addr8 }
    }

    /// The client's port in host order (0 for protocols without ports).
    #[inline]
    pub(crate) fn port(&self) -> u16 {
        u16::from_be(self.0.port)
    }
}
