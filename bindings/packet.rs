// SPDX-License-Identifier: GPL-2.0

//! What a packet is scheduled on: its client's address and port.
//!
//! C header: [`include/net/ip_vs.h`](srctree/include/net/ip_vs.h)

use core::ptr;

use super::{layout, raw};

/// `IP_VS_HDR_INVERSE`: the parsed header is an ICMP error's embedded
/// packet, whose destination is the flow's client.
const HDR_INVERSE: i32 = raw::IP_VS_HDR_INVERSE as i32;

const PROTO_TCP: i16 = raw::IPPROTO_TCP as i16;
const PROTO_UDP: i16 = raw::IPPROTO_UDP as i16;
const PROTO_SCTP: i16 = raw::IPPROTO_SCTP as i16;

/// The client of a packet being scheduled: for an ICMP error about a flow
/// (an "inverse" header) the client is the embedded packet's destination.
pub(crate) struct Flow {
    /// The address bytes in network order (IPv4 in the first four).
    addr: [u8; 16],
    /// The port in network order (0 for protocols without ports).
    port: u16,
}

impl Flow {
    /// Reads the client of the packet `skb` whose header IPVS parsed into
    /// `iph`, for a service of family `af`.
    ///
    /// Read here rather than by a C helper: this runs for every new
    /// connection, and the ports are almost always in the packet's linear
    /// part, which `skb_header_pointer()` reads in place; only a packet
    /// whose transport header is not there takes the helper (which copies
    /// it out of the fragments).
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
        // SAFETY: IPVS filled these fields of `iph` before calling the
        // scheduler (caller), and nothing writes them during the call. Each
        // is read alone, through the raw pointer: for IPv4 the addresses'
        // last 12 bytes may never have been written.
        let hdr_flags = unsafe { (*iph).hdr_flags };
        // SAFETY: As above.
        let protocol = unsafe { (*iph).protocol };
        // SAFETY: As above.
        let l4_off = unsafe { (*iph).len };
        let inverse = hdr_flags & HDR_INVERSE != 0;
        let from = if inverse {
            // SAFETY: As above; no reference is made, only a place.
            unsafe { &raw const (*iph).daddr }
        } else {
            // SAFETY: As above.
            unsafe { &raw const (*iph).saddr }
        };
        let mut addr = [0u8; 16];
        if af == super::AF_INET6 {
            // SAFETY: IPVS wrote all 16 bytes for an IPv6 service.
            addr = unsafe { (*from).in6.in6_u.u6_addr8 };
        } else {
            // SAFETY: IPVS wrote the first four bytes (`ip`) for IPv4; the
            // rest is not read.
            let ip = unsafe { (*from).ip };
            if let Some(first) = addr.get_mut(..4) {
                first.copy_from_slice(&ip.to_ne_bytes());
            }
        }
        let port = match protocol {
            PROTO_TCP | PROTO_UDP | PROTO_SCTP => {
                // SAFETY: The packet IPVS passed (caller), with its
                // transport header at `l4_off`.
                match unsafe { ports(skb, l4_off) } {
                    // Source and destination port, in network order.
                    Some([src, dst]) => {
                        if inverse {
                            dst
                        } else {
                            src
                        }
                    }
                    // Too short to have ports.
                    None => 0,
                }
            }
            _ => 0,
        };
        Flow { addr, port }
    }

    /// The client's address bytes in network order (IPv4 in the first
    /// four, the rest zero).
    #[inline]
    pub(crate) fn addr(&self) -> [u8; 16] {
        self.addr
    }

    /// The client's port in host order (0 for protocols without ports).
    #[inline]
    pub(crate) fn port(&self) -> u16 {
        u16::from_be(self.port)
    }
}

/// The two 16-bit words at `off` of `skb` (the ports of a TCP, UDP or SCTP
/// header there), or `None` if the packet ends before them: read in place
/// when the linear part (the head, `skb_headlen()` bytes from `skb->data`)
/// holds them, as `skb_header_pointer()` does, else copied out of the
/// fragments by the C helper.
///
/// # Safety
///
/// `skb` must be a live `struct sk_buff` that nobody changes during the
/// call.
#[inline]
unsafe fn ports(skb: *const raw::sk_buff, off: u32) -> Option<[u16; 2]> {
    let base = skb.cast::<u8>();
    // SAFETY: `len`, `data_len` and `data` are fields of the live `skb`
    // (caller), at the offsets the C compiler gave them (bindings/layout.c,
    // sizes checked in bindings/mod.rs), aligned as C aligns them.
    let (len, data_len, data) = unsafe {
        (
            base.add(layout::SKB_LEN).cast::<u32>().read(),
            base.add(layout::SKB_DATA_LEN).cast::<u32>().read(),
            base.add(layout::SKB_DATA).cast::<*const u8>().read(),
        )
    };
    // skb_headlen(), and what of it is left after `off`.
    let in_head = len
        .checked_sub(data_len)
        .and_then(|head| head.checked_sub(off))
        .is_some_and(|room| room >= 4);
    if in_head {
        // SAFETY: The head holds `skb_headlen()` bytes from `data`, of
        // which the four at `off` are in range (checked above); any
        // alignment.
        return Some(unsafe { ptr::read_unaligned(data.add(off as usize).cast::<[u16; 2]>()) });
    }
    // SAFETY: Live packet (caller); the helper writes at most 4 bytes.
    unsafe { copied_ports(skb, off) }
}

/// [`ports`] of a packet whose head does not hold them.
///
/// # Safety
///
/// As [`ports`].
#[cold]
unsafe fn copied_ports(skb: *const raw::sk_buff, off: u32) -> Option<[u16; 2]> {
    let mut buf = [0u8; 4];
    // SAFETY: Live packet (caller); `buf` has room for the 4 bytes the
    // helper writes.
    if !unsafe { raw::mh_rs_skb_copy4(skb, off, buf.as_mut_ptr()) } {
        return None;
    }
    Some([
        u16::from_ne_bytes([buf[0], buf[1]]),
        u16::from_ne_bytes([buf[2], buf[3]]),
    ])
}
