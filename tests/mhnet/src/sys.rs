// SPDX-License-Identifier: GPL-2.0
//! The few socket calls std does not offer, declared by hand against glibc
//! (std links it anyway), so that mhnet needs no crate.
//!
//! std cannot set an option between socket() and bind() (SO_REUSEADDR,
//! IPV6_V6ONLY, IP_FREEBIND), bind a TCP socket before connecting it, set
//! SO_LINGER on stable, or reply to a UDP datagram from the address it was
//! sent to (IP_PKTINFO). The constants and layouts are Linux's generic ones
//! (x86, arm, riscv, ...), which the guard below enforces.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::{c_int, c_ulong, c_void};
use std::time::{Duration, Instant};

#[cfg(not(target_os = "linux"))]
compile_error!("mhnet is Linux-only");
#[cfg(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc64",
    target_arch = "powerpc",
    target_arch = "powerpc64"
))]
compile_error!("mhnet's socket constants are those of Linux's generic ABI");

const AF_INET: c_int = 2;
const AF_INET6: c_int = 10;
const SOCK_STREAM: c_int = 1;
const SOCK_DGRAM: c_int = 2;
const SOCK_NONBLOCK: c_int = 0o4000;
const SOCK_CLOEXEC: c_int = 0o2000000;

const SOL_SOCKET: c_int = 1;
const SO_REUSEADDR: c_int = 2;
const SO_LINGER: c_int = 13;
const SOL_IP: c_int = 0;
const IP_PKTINFO: c_int = 8;
const IP_FREEBIND: c_int = 15;
const SOL_IPV6: c_int = 41;
const IPV6_V6ONLY: c_int = 26;
const IPV6_RECVPKTINFO: c_int = 49;
const IPV6_PKTINFO: c_int = 50;
const IPV6_FREEBIND: c_int = 78;

const EINPROGRESS: i32 = 115;
const EINTR: i32 = 4;
const POLLOUT: i16 = 4;

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

#[repr(C)]
struct Linger {
    l_onoff: c_int,
    l_linger: c_int,
}

#[repr(C)]
struct IoVec {
    iov_base: *mut c_void,
    iov_len: usize,
}

#[repr(C)]
struct MsgHdr {
    msg_name: *mut c_void,
    msg_namelen: u32,
    msg_iov: *mut IoVec,
    msg_iovlen: usize,
    msg_control: *mut c_void,
    msg_controllen: usize,
    msg_flags: c_int,
}

#[repr(C)]
struct CmsgHdr {
    cmsg_len: usize,
    cmsg_level: c_int,
    cmsg_type: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct InPktinfo {
    ipi_ifindex: c_int,
    ipi_spec_dst: [u8; 4],
    ipi_addr: [u8; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct In6Pktinfo {
    ipi6_addr: [u8; 16],
    ipi6_ifindex: u32,
}

/// struct sockaddr_storage: large and aligned enough for either family.
#[repr(C, align(8))]
struct SockAddrStorage([u8; 128]);

extern "C" {
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: u32) -> c_int;
    fn bind(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    fn connect(fd: c_int, addr: *const c_void, len: u32) -> c_int;
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    fn poll(fds: *mut PollFd, nfds: c_ulong, timeout: c_int) -> c_int;
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
}

fn cvt(ret: c_int) -> io::Result<c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Encodes a socket address as struct sockaddr_in / sockaddr_in6.
fn sockaddr(addr: &SocketAddr) -> (SockAddrStorage, u32) {
    let mut st = SockAddrStorage([0; 128]);
    match addr {
        SocketAddr::V4(a) => {
            st.0[0..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            st.0[2..4].copy_from_slice(&a.port().to_be_bytes());
            st.0[4..8].copy_from_slice(&a.ip().octets());
            (st, 16)
        }
        SocketAddr::V6(a) => {
            st.0[0..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            st.0[2..4].copy_from_slice(&a.port().to_be_bytes());
            st.0[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            st.0[8..24].copy_from_slice(&a.ip().octets());
            st.0[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            (st, 28)
        }
    }
}

/// Decodes what recvmsg() wrote into a sockaddr_storage.
fn from_sockaddr(st: &SockAddrStorage) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([st.0[0], st.0[1]]) as c_int;
    let port = u16::from_be_bytes([st.0[2], st.0[3]]);
    match family {
        AF_INET => {
            let ip: [u8; 4] = st.0[4..8].try_into().ok()?;
            Some(SocketAddr::new(Ipv4Addr::from(ip).into(), port))
        }
        AF_INET6 => {
            let ip: [u8; 16] = st.0[8..24].try_into().ok()?;
            let flow = u32::from_be_bytes(st.0[4..8].try_into().ok()?);
            let scope = u32::from_ne_bytes(st.0[24..28].try_into().ok()?);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

fn set_int(fd: RawFd, level: c_int, name: c_int, val: c_int) -> io::Result<()> {
    // SAFETY: `val` lives across the call and its size is passed.
    let r = unsafe {
        setsockopt(
            fd,
            level,
            name,
            (&val as *const c_int).cast(),
            mem::size_of::<c_int>() as u32,
        )
    };
    cvt(r).map(drop)
}

/// A new socket of `addr`'s family, SO_REUSEADDR set, IPV6_V6ONLY for IPv6
/// (so that `[::]` and `0.0.0.0` listeners coexist), and IP_FREEBIND so that
/// an address still being configured (IPv6 DAD) does not fail the bind.
fn new_socket(addr: &SocketAddr, ty: c_int) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() { AF_INET } else { AF_INET6 };
    // SAFETY: plain syscall; a non-negative result is a new fd we own.
    let fd = cvt(unsafe { socket(domain, ty | SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    set_int(raw, SOL_SOCKET, SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        set_int(raw, SOL_IPV6, IPV6_V6ONLY, 1)?;
        // Best effort: IPV6_FREEBIND needs Linux 4.15, IP_FREEBIND applies
        // to IPv6 sockets too on older ones.
        if set_int(raw, SOL_IPV6, IPV6_FREEBIND, 1).is_err() {
            let _ = set_int(raw, SOL_IP, IP_FREEBIND, 1);
        }
    } else {
        let _ = set_int(raw, SOL_IP, IP_FREEBIND, 1);
    }
    Ok(fd)
}

fn bind_to(fd: &OwnedFd, addr: &SocketAddr) -> io::Result<()> {
    let (st, len) = sockaddr(addr);
    // SAFETY: `st` holds a valid sockaddr of `len` bytes.
    cvt(unsafe { bind(fd.as_raw_fd(), (&st as *const SockAddrStorage).cast(), len) }).map(drop)
}

/// A TCP listener on `addr` (SO_REUSEADDR, V6ONLY for IPv6).
pub fn tcp_listen(addr: &SocketAddr) -> io::Result<TcpListener> {
    let fd = new_socket(addr, SOCK_STREAM)?;
    bind_to(&fd, addr)?;
    // SAFETY: plain syscall on a socket we own.
    cvt(unsafe { listen(fd.as_raw_fd(), 4096) })?;
    Ok(TcpListener::from(fd))
}

/// A UDP socket bound to `addr`, with packet info enabled so that replies
/// can leave from the address each datagram was sent to ([`udp_recv`]).
pub fn udp_bind_server(addr: &SocketAddr) -> io::Result<UdpSocket> {
    let fd = new_socket(addr, SOCK_DGRAM)?;
    if addr.is_ipv4() {
        set_int(fd.as_raw_fd(), SOL_IP, IP_PKTINFO, 1)?;
    } else {
        set_int(fd.as_raw_fd(), SOL_IPV6, IPV6_RECVPKTINFO, 1)?;
    }
    bind_to(&fd, addr)?;
    Ok(UdpSocket::from(fd))
}

/// A UDP socket bound to `src` and connected to `dst` (so that only `dst`'s
/// replies arrive, and an ICMP port unreachable shows as ECONNREFUSED).
pub fn udp_connect_from(src: &SocketAddr, dst: &SocketAddr) -> io::Result<UdpSocket> {
    let fd = new_socket(src, SOCK_DGRAM)?;
    bind_to(&fd, src)?;
    let (st, len) = sockaddr(dst);
    // SAFETY: `st` holds a valid sockaddr of `len` bytes.
    cvt(unsafe { connect(fd.as_raw_fd(), (&st as *const SockAddrStorage).cast(), len) })?;
    Ok(UdpSocket::from(fd))
}

/// Error of a TCP connect that did not complete in time.
pub fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timeout")
}

/// A TCP connection from exactly `src` to `dst` (bound before connecting,
/// SO_REUSEADDR), within `timeout`. The returned stream is blocking.
pub fn tcp_connect_from(
    src: &SocketAddr,
    dst: &SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let fd = new_socket(src, SOCK_STREAM | SOCK_NONBLOCK)?;
    bind_to(&fd, src)?;
    let (st, len) = sockaddr(dst);
    // SAFETY: `st` holds a valid sockaddr of `len` bytes.
    let r = unsafe { connect(fd.as_raw_fd(), (&st as *const SockAddrStorage).cast(), len) };
    if r < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(EINPROGRESS) {
            return Err(err);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            let mut pfd = PollFd {
                fd: fd.as_raw_fd(),
                events: POLLOUT,
                revents: 0,
            };
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { poll(&mut pfd, 1, ms) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(EINTR) {
                    continue;
                }
                return Err(err);
            }
            if n > 0 {
                break;
            }
        }
    }
    let stream = TcpStream::from(fd);
    if let Some(err) = stream.take_error()? {
        return Err(err);
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}

/// SO_LINGER {on, 0}: closing the socket then sends an RST and leaves no
/// TIME_WAIT, so that the same 4-tuple can be used again at once.
pub fn set_linger_zero(fd: &impl AsRawFd) -> io::Result<()> {
    let l = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `l` lives across the call and its size is passed.
    let r = unsafe {
        setsockopt(
            fd.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&l as *const Linger).cast(),
            mem::size_of::<Linger>() as u32,
        )
    };
    cvt(r).map(drop)
}

/// Where a datagram came from and which local address it was sent to.
pub struct Received {
    pub len: usize,
    pub peer: SocketAddr,
    /// Destination address (and arrival interface), when the kernel said.
    local: Option<(IpAddr, u32)>,
}

const CMSG_SPACE: usize = 64;

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_SPACE]);

fn cmsg_align(len: usize) -> usize {
    let a = mem::size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// recvmsg() on a socket of [`udp_bind_server`].
pub fn udp_recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    let mut name = SockAddrStorage([0; 128]);
    let mut cbuf = CmsgBuf([0; CMSG_SPACE]);
    let mut iov = IoVec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = MsgHdr {
        msg_name: (&mut name as *mut SockAddrStorage).cast(),
        msg_namelen: 128,
        msg_iov: &mut iov,
        msg_iovlen: 1,
        msg_control: cbuf.0.as_mut_ptr().cast(),
        msg_controllen: CMSG_SPACE,
        msg_flags: 0,
    };
    // SAFETY: every pointer in `msg` points to a live buffer of the length
    // given beside it.
    let n = unsafe { recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = from_sockaddr(&name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))?;
    let mut local = None;
    let hdr = mem::size_of::<CmsgHdr>();
    let total = msg.msg_controllen.min(CMSG_SPACE);
    let mut off = 0;
    while off + hdr <= total {
        // SAFETY: `off + hdr <= total <= CMSG_SPACE`, and read_unaligned
        // needs no alignment.
        let c: CmsgHdr = unsafe { std::ptr::read_unaligned(cbuf.0.as_ptr().add(off).cast()) };
        if c.cmsg_len < hdr || off + c.cmsg_len > total {
            break;
        }
        let data = &cbuf.0[off + cmsg_align(hdr)..off + c.cmsg_len];
        if c.cmsg_level == SOL_IP
            && c.cmsg_type == IP_PKTINFO
            && data.len() >= mem::size_of::<InPktinfo>()
        {
            // SAFETY: `data` holds at least one in_pktinfo.
            let p: InPktinfo = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
            local = Some((IpAddr::from(p.ipi_addr), p.ipi_ifindex as u32));
        } else if c.cmsg_level == SOL_IPV6
            && c.cmsg_type == IPV6_PKTINFO
            && data.len() >= mem::size_of::<In6Pktinfo>()
        {
            // SAFETY: `data` holds at least one in6_pktinfo.
            let p: In6Pktinfo = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
            local = Some((IpAddr::from(p.ipi6_addr), p.ipi6_ifindex));
        }
        off += cmsg_align(c.cmsg_len);
    }
    Ok(Received {
        len: n as usize,
        peer,
        local,
    })
}

/// Sends `data` back to the sender of `rx`, from the local address `rx` was
/// sent to: a socket bound to `0.0.0.0` or `[::]` would otherwise answer a
/// datagram sent to a VIP on `lo` (direct routing) from its primary address,
/// which the client would not accept.
pub fn udp_reply(sock: &UdpSocket, rx: &Received, data: &[u8]) -> io::Result<()> {
    let (name, namelen) = sockaddr(&rx.peer);
    let mut iov = IoVec {
        iov_base: data.as_ptr() as *mut c_void,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; CMSG_SPACE]);
    let hdr = mem::size_of::<CmsgHdr>();
    let mut controllen = 0;
    match rx.local {
        Some((IpAddr::V4(ip), _)) if rx.peer.is_ipv4() => {
            let p = InPktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: ip.octets(),
                ipi_addr: [0; 4],
            };
            controllen = put_cmsg(&mut cbuf, SOL_IP, IP_PKTINFO, &p);
        }
        Some((IpAddr::V6(ip), ifindex)) if rx.peer.is_ipv6() => {
            // The interface only matters (and only fits) for link-local.
            let link_local = ip.segments()[0] & 0xffc0 == 0xfe80;
            let p = In6Pktinfo {
                ipi6_addr: ip.octets(),
                ipi6_ifindex: if link_local { ifindex } else { 0 },
            };
            controllen = put_cmsg(&mut cbuf, SOL_IPV6, IPV6_PKTINFO, &p);
        }
        _ => {}
    }
    debug_assert!(controllen == 0 || controllen > hdr);
    let msg = MsgHdr {
        msg_name: (&name as *const SockAddrStorage) as *mut c_void,
        msg_namelen: namelen,
        msg_iov: &mut iov,
        msg_iovlen: 1,
        msg_control: if controllen > 0 {
            cbuf.0.as_mut_ptr().cast()
        } else {
            std::ptr::null_mut()
        },
        msg_controllen: controllen,
        msg_flags: 0,
    };
    // SAFETY: every pointer in `msg` points to a live buffer of the length
    // given beside it; sendmsg only reads them.
    let n = unsafe { sendmsg(sock.as_raw_fd(), &msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes one control message holding `val`; returns its CMSG_SPACE.
fn put_cmsg<T: Copy>(cbuf: &mut CmsgBuf, level: c_int, ty: c_int, val: &T) -> usize {
    let hdr = mem::size_of::<CmsgHdr>();
    let len = cmsg_align(hdr) + mem::size_of::<T>();
    let space = cmsg_align(len);
    assert!(space <= CMSG_SPACE);
    let c = CmsgHdr {
        cmsg_len: len,
        cmsg_level: level,
        cmsg_type: ty,
    };
    // SAFETY: `space <= CMSG_SPACE`, both writes are in bounds, and
    // write_unaligned needs no alignment.
    unsafe {
        std::ptr::write_unaligned(cbuf.0.as_mut_ptr().cast(), c);
        std::ptr::write_unaligned(cbuf.0.as_mut_ptr().add(cmsg_align(hdr)).cast(), *val);
    }
    space
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for s in [
            "127.0.0.1:4000",
            "[::1]:65535",
            "[fd00:2::11]:80",
            "0.0.0.0:0",
        ] {
            let a: SocketAddr = s.parse().unwrap();
            let (st, len) = sockaddr(&a);
            assert_eq!(len, if a.is_ipv4() { 16 } else { 28 });
            assert_eq!(from_sockaddr(&st), Some(a));
        }
    }

    #[test]
    fn layouts() {
        assert_eq!(mem::size_of::<InPktinfo>(), 12);
        assert_eq!(mem::size_of::<In6Pktinfo>(), 20);
        assert_eq!(mem::size_of::<Linger>(), 8);
        assert_eq!(mem::size_of::<PollFd>(), 8);
        assert_eq!(mem::size_of::<CmsgHdr>(), mem::size_of::<usize>() + 8);
    }
}
