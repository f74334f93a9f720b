// SPDX-License-Identifier: GPL-2.0

//! Maglev consistent hashing, computed exactly as the IPVS `mh` scheduler
//! (`net/netfilter/ipvs/ip_vs_mh.c`) computes it.
//!
//! # The idea
//!
//! Maglev (Eisenbud et al., "Maglev: A Fast and Reliable Software Network
//! Load Balancer", NSDI 2016, section 3.4) maps clients to servers through a
//! lookup table whose length `M` is a prime. Each server derives, from two
//! hashes of its own identity, a walk over the table: it starts at `offset`
//! and moves by a fixed `skip` (between 1 and `M - 1`) each step, wrapping
//! around. Because `M` is prime, every such walk visits each slot exactly
//! once, so the walk is a permutation of the slots: the server's order of
//! preference.
//!
//! The table is filled in rounds. In each round every server, in a fixed
//! order, claims the next slots of its walk that nobody holds yet (a
//! weighted server claims several in a row). Filling stops the moment the
//! last slot is taken. A client is then served by `table[hash(client) % M]`.
//!
//! Why this shape: every server gets nearly the same number of slots (scaled
//! by weight), a lookup is one hash and one array read, and because each
//! server's preference order depends only on that server, adding or
//! removing one server changes the owners of few slots besides its own.
//! Unlike a hash ring this trades a little disruption for near-perfect
//! balance.
//!
//! # What this module reproduces
//!
//! With [`Order::List`] and the servers given in IPVS list order,
//! [`build_table`] yields the same table as the C module on a 64-bit
//! little-endian kernel (x86_64), with [`Server::weight`] standing for the
//! weight the C code reads (upstream that is `last_weight`, the latest
//! non-zero weight, so a server set to weight 0 keeps its slots there; the
//! caller decides which weight to pass):
//!
//! * hashing: [`hash_key`] feeds the kernel's 64-bit `hsiphash` (which is
//!   SipHash-1-3 there, see [`hsiphash`]) with one host-order `u32`: the
//!   wrapping sum of an offset, the port and the address folded to 32 bits;
//! * `offset = hash_key(.., HASH1) % M`, `skip = hash_key(.., HASH2) % (M - 1) + 1`;
//! * weights are divided by their greatest common divisor and shifted right
//!   so that the largest fits in `TAB_BITS` bits (`TAB_BITS` is half the
//!   table index, see [`TableSize::tab_bits`]); a positive weight that
//!   shifts down to zero still gets one turn, a weight `<= 0` gets none;
//! * population: round after round over the servers in order, each server
//!   with `t` turns claims `t` slots in a row, and the build stops as soon
//!   as all `M` slots are claimed, possibly in the middle of a server's
//!   turns.
//!
//! [`Order::Sorted`] populates in (family, address, port) order instead, so
//! that the table does not depend on the order the servers were added in.
//!
//! Nothing here allocates, panics on caller input or uses floating point:
//! the same file is compiled into the kernel module.
#![forbid(unsafe_code)]

use core::fmt;
use core::num::{NonZeroU16, NonZeroU32};

/// Valid table sizes (primes), for table index 8..=17 in this order.
pub const TABLE_SIZES: [u32; 10] = [
    251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
];

/// Table index of `TABLE_SIZES[0]` (the kernel's `CONFIG_IP_VS_MH_TAB_INDEX`).
pub const FIRST_TABLE_INDEX: u32 = 8;

/// The table size the kernel uses by default (table index 12).
pub const DEFAULT_TABLE_SIZE: u32 = 4093;

/// Marker in a table slot that holds no server.
pub const EMPTY: u16 = u16::MAX;

/// Most servers a table can refer to: indices must stay below [`EMPTY`].
pub const MAX_SERVERS: usize = EMPTY as usize - 1;

/// A validated table size: one of [`TABLE_SIZES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSize {
    /// `M`.
    m: NonZeroU32,
    /// `M - 1`, the modulus of a walk's stride.
    m1: NonZeroU32,
    /// Kernel table index, 8..=17.
    index: u32,
    /// `u64::MAX / M + 1`, with which [`TableSize::reduce`] computes `% M`
    /// by two multiplications instead of a division (Lemire, Kaser and
    /// Kurz, "Faster remainder by direct computation", 2019).
    inverse: u64,
    /// `u64::MAX / (M - 1) + 1`, the same for `% (M - 1)`.
    inverse1: u64,
}

/// The default size, checked when this file is compiled.
const DEFAULT_SIZE: TableSize = match TableSize::new(DEFAULT_TABLE_SIZE) {
    Some(s) => s,
    None => panic!("DEFAULT_TABLE_SIZE is not in TABLE_SIZES"),
};

impl TableSize {
    /// The size at position `i` of [`TABLE_SIZES`].
    const fn at(i: usize) -> Option<TableSize> {
        if i >= TABLE_SIZES.len() {
            return None;
        }
        let m = TABLE_SIZES[i];
        let (Some(nz), Some(nz1)) = (NonZeroU32::new(m), NonZeroU32::new(m.saturating_sub(1)))
        else {
            return None;
        };
        Some(TableSize {
            m: nz,
            m1: nz1,
            index: FIRST_TABLE_INDEX.wrapping_add(i as u32),
            inverse: (u64::MAX / nz.get() as u64).wrapping_add(1),
            inverse1: (u64::MAX / nz1.get() as u64).wrapping_add(1),
        })
    }

    /// The size with `m` slots, or `None` unless `m` is in [`TABLE_SIZES`].
    pub const fn new(m: u32) -> Option<TableSize> {
        let mut i = 0;
        while i < TABLE_SIZES.len() {
            if TABLE_SIZES[i] == m {
                return TableSize::at(i);
            }
            i = i.wrapping_add(1);
        }
        None
    }

    /// The size for a kernel table index (`CONFIG_IP_VS_MH_TAB_INDEX`,
    /// 8..=17), or `None` outside that range.
    pub const fn from_index(index: u32) -> Option<TableSize> {
        if index < FIRST_TABLE_INDEX {
            return None;
        }
        TableSize::at((index - FIRST_TABLE_INDEX) as usize)
    }

    /// Number of slots, `M`.
    pub const fn slots(self) -> u32 {
        self.m.get()
    }

    /// `h % M`, exactly, for every `h` (the method is exact for 32-bit
    /// dividends and divisors; the tests compare it with `%`).
    #[inline]
    pub const fn reduce(self, h: u32) -> u32 {
        fastmod(h, self.inverse, self.m.get())
    }

    /// `h % (M - 1)`, exactly, as [`TableSize::reduce`] (a walk's stride).
    #[inline]
    pub const fn reduce_m1(self, h: u32) -> u32 {
        fastmod(h, self.inverse1, self.m1.get())
    }

    /// The kernel table index (8..=17) this size corresponds to.
    pub const fn index(self) -> u32 {
        self.index
    }

    /// `TAB_BITS`: half the table index. Weights are scaled so that the
    /// largest turn count fits in this many bits.
    pub const fn tab_bits(self) -> u32 {
        self.index / 2
    }
}

/// `h % d` from `inverse = u64::MAX / d + 1` (Lemire, Kaser and Kurz): exact
/// for every 32-bit `h` and `d`.
#[inline]
const fn fastmod(h: u32, inverse: u64, d: u32) -> u32 {
    let low = inverse.wrapping_mul(h as u64);
    // The high half of a 64 x 32-bit product is below d.
    ((low as u128 * d as u128) >> 64) as u32
}

impl Default for TableSize {
    /// [`DEFAULT_TABLE_SIZE`] slots.
    fn default() -> Self {
        DEFAULT_SIZE
    }
}

/// An address as bytes in network order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Addr {
    /// An IPv4 address.
    V4([u8; 4]),
    /// An IPv6 address.
    V6([u8; 16]),
}

impl Addr {
    /// The address folded to a host-order `u32`, as the scheduler hashes
    /// it: the IPv4 address itself, or the XOR of the four 32-bit words of
    /// an IPv6 address (each read big-endian).
    pub const fn fold(&self) -> u32 {
        match self {
            Addr::V4(b) => u32::from_be_bytes(*b),
            Addr::V6(b) => {
                let w0 = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                let w1 = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                let w2 = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                let w3 = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
                w0 ^ w1 ^ w2 ^ w3
            }
        }
    }

    /// Whether this is an IPv6 address.
    pub const fn is_v6(&self) -> bool {
        matches!(self, Addr::V6(_))
    }
}

/// One real server as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Server {
    /// The server's address.
    pub addr: Addr,
    /// The server's port, in host order.
    pub port: u16,
    /// The weight the table is built with. `<= 0` means no slots.
    pub weight: i32,
}

/// The order in which servers take their turns while the table is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Order {
    /// By (address family, address bytes, port), IPv4 before IPv6; ties
    /// keep their input order. The table then does not depend on the
    /// order of the input.
    #[default]
    Sorted,
    /// As given. With the servers in IPVS list order this is what the C
    /// module does.
    List,
}

/// A server's walk over the table: the slot it starts at and its stride.
/// It depends only on the server's hashed address, its port and `M`, so a
/// caller that keeps it from one build to the next (see [`Hints`]) saves
/// the two hashes per server that computing it costs.
///
/// `Walk::default()` is no walk ("not known"): a build computes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walk {
    offset: u32,
    skip: u32,
}

impl Walk {
    /// The walk of the server with `addr` (as hashed) and `port` in a
    /// table of `size`: `offset = hash_key(.., HASH1) % M`,
    /// `skip = hash_key(.., HASH2) % (M - 1) + 1`.
    #[inline]
    pub fn of(size: TableSize, addr: &Addr, port: u16) -> Walk {
        Walk {
            offset: size.reduce(hash_key(addr, port, &HASH1, 0)),
            // The remainder is below M - 1: adding 1 never wraps.
            skip: size
                .reduce_m1(hash_key(addr, port, &HASH2, 0))
                .wrapping_add(1),
        }
    }

    /// First slot of the walk.
    pub const fn offset(&self) -> u32 {
        self.offset
    }

    /// Stride of the walk, in `1..M`.
    pub const fn skip(&self) -> u32 {
        self.skip
    }

    /// Whether this can be a walk over `m` slots: the fill relies on
    /// `offset < m` and `1 <= skip < m` (not on the hashes).
    const fn fits(&self, m: u32) -> bool {
        self.offset < m && self.skip >= 1 && self.skip < m
    }
}

/// Per-server scratch state for one build: where the server's walk over
/// the table starts, its stride, where it is now, how many slots it claims
/// per round and claimed in all.
#[derive(Clone, Copy, Debug, Default)]
pub struct DestSetup {
    offset: u32,
    skip: u32,
    perm: u32,
    turns: u32,
    /// Slots the server claimed in this build.
    claimed: u32,
    /// The server's index in the input: what its slots hold.
    index: u16,
}

impl DestSetup {
    /// First slot of the server's walk.
    pub const fn offset(&self) -> u32 {
        self.offset
    }

    /// Stride of the server's walk, in `1..M`.
    pub const fn skip(&self) -> u32 {
        self.skip
    }

    /// The server's walk, to give the next build as a hint.
    pub const fn walk(&self) -> Walk {
        Walk {
            offset: self.offset,
            skip: self.skip,
        }
    }

    /// Position of the walk when the build ended.
    pub const fn perm(&self) -> u32 {
        self.perm
    }

    /// Slots claimed per round; 0 for a server that gets none.
    pub const fn turns(&self) -> u32 {
        self.turns
    }

    /// Slots of the table that hold the server after the build: what
    /// [`count_slots`] would count for it, without a pass over the table.
    pub const fn claimed(&self) -> u32 {
        self.claimed
    }

    /// The server's index in the input (the build's `servers`); the
    /// entries of [`Scratch::setup`] are in population order.
    pub const fn index(&self) -> u16 {
        self.index
    }
}

/// What a caller may know from an earlier build of the same table size,
/// to make a build cheaper. Hints never change the table that a build
/// without them makes, provided every given walk is the server's own
/// ([`Walk::of`] of its hashed address and port at this size): a walk that
/// cannot be one ([`Walk::default()`], or out of range) is computed again,
/// and an order that is not the population order is ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// Per server, in input order, its walk or [`Walk::default()`]. Shorter
    /// than the input: the servers past its end are computed.
    pub walks: &'a [Walk],
    /// The expected population order of [`Order::Sorted`] as input
    /// indices, e.g. the previous build's order with a new server at the
    /// end. Checked: if it is not a permutation of the input that a few
    /// moves bring into sort order, the build sorts as without it.
    pub order: &'a [u16],
}

/// Caller-provided working memory for [`build_table`].
pub struct Scratch<'a> {
    /// One entry per server, in population order: at least `servers.len()`.
    pub setup: &'a mut [DestSetup],
    /// The servers' sort keys, sorted into population order: at least
    /// `servers.len()` entries for [`Order::Sorted`]; unused (may be empty)
    /// for [`Order::List`].
    pub order: &'a mut [SortKey],
}

/// Why [`build_table`] refused to build. The table is untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// More servers than slots, or more than [`MAX_SERVERS`].
    TooManyServers,
    /// The table's length is not exactly `M`.
    TableLength,
    /// A scratch slice is too short.
    ScratchLength,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            BuildError::TooManyServers => "more servers than table slots",
            BuildError::TableLength => "table length is not the table size",
            BuildError::ScratchLength => "scratch buffer too short",
        };
        f.write_str(s)
    }
}

/// What a successful [`build_table`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuildStats {
    /// Servers that own at least one slot.
    pub servers: u32,
    /// Greatest common divisor of the positive weights (0 if none).
    pub gcd: i32,
    /// Right shift applied to `weight / gcd`.
    pub rshift: u32,
    /// Slots holding a server: `M`, or 0 when no weight is positive.
    pub filled: u32,
}

/// The scheduler's first hash key: `offset` of a server's walk, and the
/// slot of a client.
pub const HASH1: [u64; 2] = [2654435761, 2654435761];

/// The scheduler's second hash key: `skip` of a server's walk.
pub const HASH2: [u64; 2] = [2654446892, 2654446892];

/// SipHash state (four 64-bit words).
#[derive(Clone, Copy)]
struct Sip {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl Sip {
    const fn new(key: &[u64; 2]) -> Sip {
        // The initial words spell "somepseudorandomlygeneratedbytes".
        Sip {
            v0: 0x736f_6d65_7073_6575 ^ key[0],
            v1: 0x646f_7261_6e64_6f6d ^ key[1],
            v2: 0x6c79_6765_6e65_7261 ^ key[0],
            v3: 0x7465_6462_7974_6573 ^ key[1],
        }
    }

    #[inline(always)]
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    /// Absorbs one 8-byte message word with a single round (the "1" of
    /// SipHash-1-3).
    #[inline(always)]
    fn absorb(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.v0 ^= m;
    }

    /// Absorbs the last word `b` (length byte and tail) and runs the three
    /// finalisation rounds; the kernel keeps the low 32 bits.
    #[inline(always)]
    fn finish(mut self, b: u64) -> u32 {
        self.absorb(b);
        self.v2 ^= 0xff;
        self.round();
        self.round();
        self.round();
        (self.v0 ^ self.v1 ^ self.v2 ^ self.v3) as u32
    }
}

/// Little-endian value of up to 8 bytes.
fn le_word(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |acc, &byte| (acc << 8) | u64::from(byte))
}

/// The kernel's `hsiphash()` on 64-bit: SipHash-1-3 over `data` with the
/// 128-bit key `key` (the two words of `hsiphash_key_t`), returning the
/// low 32 bits of the 64-bit result. Input words are little-endian, as the
/// kernel reads them.
pub fn hsiphash(data: &[u8], key: &[u64; 2]) -> u32 {
    let mut s = Sip::new(key);
    let mut words = data.chunks_exact(8);
    for w in words.by_ref() {
        s.absorb(le_word(w));
    }
    // Only the low byte of the length survives the shift, as in C.
    let b = ((data.len() as u64) << 56) | le_word(words.remainder());
    s.finish(b)
}

/// [`hsiphash`] of the four bytes of `value` as a little-endian machine
/// stores them: what the kernel computes for `hsiphash(&v, sizeof(v), key)`
/// with a `u32 v` on x86_64.
#[inline]
pub fn hsiphash_u32(value: u32, key: &[u64; 2]) -> u32 {
    Sip::new(key).finish((4u64 << 56) | u64::from(value))
}

/// The scheduler's hash of an address and port: [`hsiphash_u32`] of the
/// wrapping sum `offset + port + addr.fold()` (port in host order, see
/// [`Addr::fold`]).
#[inline]
pub fn hash_key(addr: &Addr, port: u16, key: &[u64; 2], offset: u32) -> u32 {
    let v = offset
        .wrapping_add(u32::from(port))
        .wrapping_add(addr.fold());
    hsiphash_u32(v, key)
}

/// The slot a client maps to: `hash_key(addr, port, HASH1, 0) % M`.
///
/// `port` is the client's port in host order when the service hashes ports
/// (`mh-port`), and 0 otherwise.
#[inline]
pub fn slot_of(size: TableSize, addr: &Addr, port: u16) -> u32 {
    size.reduce(hash_key(addr, port, &HASH1, 0))
}

/// The server index in the client's slot, or `None` if that slot is
/// [`EMPTY`] or the table is too short to have it.
#[inline]
pub fn lookup(size: TableSize, table: &[u16], addr: &Addr, port: u16) -> Option<u16> {
    slot_entry(table, slot_of(size, addr, port))
}

#[inline]
fn slot_entry(table: &[u16], slot: u32) -> Option<u16> {
    match table.get(slot as usize) {
        Some(&idx) if idx != EMPTY => Some(idx),
        _ => None,
    }
}

/// Lookup with the C module's fallback (`mh-fallback`): the client's own
/// slot if `available` accepts its server; otherwise, for `offset` in
/// `0..M`, the slot `hash_key(client, HASH1, (offset + first_slot) % M) % M`,
/// returning the first server `available` accepts. The walk gives up at
/// an [`EMPTY`] slot. `None` if the client's own slot is empty, or nothing
/// acceptable was found.
pub fn lookup_fallback(
    size: TableSize,
    table: &[u16],
    addr: &Addr,
    port: u16,
    mut available: impl FnMut(u16) -> bool,
) -> Option<u16> {
    let first = slot_of(size, addr, port);
    let idx = slot_entry(table, first)?;
    if available(idx) {
        return Some(idx);
    }
    for offset in 0..size.slots() {
        // Both terms are below M <= 2^17: the sum never wraps.
        let roffset = size.reduce(offset.wrapping_add(first));
        let slot = size.reduce(hash_key(addr, port, &HASH1, roffset));
        let idx = slot_entry(table, slot)?;
        if available(idx) {
            return Some(idx);
        }
    }
    None
}

const fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let r = a % b;
        a = b;
        b = r;
    }
    a
}

/// Index (1-based) of the highest set bit, 0 for 0: the kernel's `fls()`.
const fn fls(x: u32) -> u32 {
    // leading_zeros() <= 32: never wraps.
    u32::BITS.wrapping_sub(x.leading_zeros())
}

/// Greatest common divisor of the positive weights, 0 if there is none.
pub fn weight_gcd(servers: &[Server]) -> u32 {
    servers
        .iter()
        .filter_map(|s| u32::try_from(s.weight).ok())
        .filter(|&w| w > 0)
        .fold(0, gcd)
}

/// How far `weight / gcd` is shifted right so that the largest one fits in
/// [`TableSize::tab_bits`] bits: `max(0, fls(max_weight / gcd) - tab_bits)`,
/// and 0 when `gcd` is 0.
pub fn weight_rshift(size: TableSize, servers: &[Server], gcd: u32) -> u32 {
    let max = servers
        .iter()
        .filter_map(|s| u32::try_from(s.weight).ok())
        .max()
        .unwrap_or(0);
    match max.checked_div(gcd) {
        Some(mw) => fls(mw).saturating_sub(size.tab_bits()),
        None => 0,
    }
}

/// Slots a server with `weight` claims per round: `(weight / gcd) >> rshift`,
/// at least 1 for a positive weight, 0 for a weight `<= 0`.
pub const fn turns_for(weight: i32, gcd: u32, rshift: u32) -> u32 {
    if weight <= 0 || gcd == 0 {
        return 0;
    }
    let t = match (weight as u32 / gcd).checked_shr(rshift) {
        Some(t) => t,
        None => 0,
    };
    if t == 0 {
        1
    } else {
        t
    }
}

/// A server's place in [`Order::Sorted`]: family, address bytes (of the
/// server's own address, see [`build_table_keyed`]), port, then input
/// position, so that equal addresses and ports keep their input order.
/// Flat integers, compared in the order of the fields: a rebuild of a
/// thousand servers added in random order makes some 20 000 comparisons.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    v6: bool,
    /// The address bytes as a big-endian number (IPv4's four first), which
    /// orders like the bytes.
    addr: u128,
    port: u16,
    /// Position in the input.
    index: u16,
}

impl SortKey {
    fn new(addr: &Addr, port: u16, index: u16) -> Self {
        let (v6, addr) = match addr {
            Addr::V4(b) => (false, u128::from(u32::from_be_bytes(*b)) << 96),
            Addr::V6(b) => (true, u128::from_be_bytes(*b)),
        };
        SortKey {
            v6,
            addr,
            port,
            index,
        }
    }

    /// The server's position in the input: after an [`Order::Sorted`]
    /// build, the scratch's keys in turn give the population order.
    pub const fn index(&self) -> u16 {
        self.index
    }
}

/// Whether every key of `v` is below the next.
fn strictly_increasing(v: &[SortKey]) -> bool {
    v.windows(2).all(|w| matches!(*w, [a, b] if a < b))
}

/// Sorts `v` ascending: in one pass when it is in order already, or in
/// reverse order, as servers added in address order are (IPVS lists the
/// newest first); by [`heap_sort`] otherwise.
fn sort_keys(v: &mut [SortKey]) {
    if strictly_increasing(v) {
        return;
    }
    if v.windows(2).all(|w| matches!(*w, [a, b] if a > b)) {
        v.reverse();
        return;
    }
    heap_sort(v);
}

/// Sorts `v` ascending: a heap sort, which needs no memory, takes
/// O(n log n) and, unlike the core library's sorts, has no panic path
/// (objtool, in the kernel, does not know those as noreturn).
fn heap_sort<T: Copy + Ord>(v: &mut [T]) {
    let n = v.len();
    let sift = |v: &mut [T], mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        let (Some(&c), Some(&r)) = (v.get(child), v.get(root)) else {
            break;
        };
        let mut big = c;
        if let Some(&c2) = v.get(child + 1) {
            if child + 1 < end && c < c2 {
                child += 1;
                big = c2;
            }
        }
        if r >= big {
            break;
        }
        v.swap(root, child);
        root = child;
    };
    for root in (0..n / 2).rev() {
        sift(v, root, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(v, 0, end);
    }
}

/// Advances `perm` along a walk of stride `skip` to the first slot of
/// `table` nobody has claimed yet ([`EMPTY`]) and returns it: the table
/// being filled is its own map of claimed slots. Called only while some
/// slot is free, so the walk finds one within `m` steps: it is a
/// permutation of `0..m` (`m` prime, `1 <= skip < m`, `perm < m`, as
/// `build_table_keyed` sets them up).
///
/// Most of a build is spent here, so each step is one load and one branch:
/// the wrap is a conditional subtraction, and a slot outside the table
/// (not reachable: `perm < m` is the table's length) reads as free, for
/// the caller's bounds-checked write to refuse.
#[inline]
fn next_free(mut perm: u32, skip: u32, table: &[u16], m: u32) -> u32 {
    while *table.get(perm as usize).unwrap_or(&EMPTY) != EMPTY {
        // perm and skip are below M <= 2^17: the sum never wraps, and it
        // is below 2M; past M, subtracting M gives the smaller number
        // (below M it wraps around to a larger one).
        let next = perm.wrapping_add(skip);
        perm = next.min(next.wrapping_sub(m));
    }
    perm
}

/// Fills `table` (length exactly `M`) with indices into `servers` (their
/// position as given, whatever `order` is), or [`EMPTY`] everywhere when
/// no server has a positive weight.
///
/// Everything is validated before the table is written: on error the table
/// is untouched (scratch may have been written).
pub fn build_table(
    size: TableSize,
    servers: &[Server],
    order: Order,
    table: &mut [u16],
    scratch: Scratch<'_>,
) -> Result<BuildStats, BuildError> {
    build_table_keyed(size, servers, None, order, table, scratch)
}

/// [`build_table`], with [`Order::Sorted`] sorting the servers by `keys`
/// (one per server: its own address, family first) and port instead of by
/// the address it is hashed with. They differ for a server of the other
/// family than its service's (a tunnel server): an IPv6 server of an IPv4
/// service hashes its first four bytes, so two such servers can hash
/// alike, and only their full addresses order them whatever their input
/// order. `keys` shorter than `servers` is [`BuildError::ScratchLength`].
pub fn build_table_keyed(
    size: TableSize,
    servers: &[Server],
    keys: Option<&[Addr]>,
    order: Order,
    table: &mut [u16],
    scratch: Scratch<'_>,
) -> Result<BuildStats, BuildError> {
    build_table_hinted(size, servers, keys, Hints::default(), order, table, scratch)
}

/// [`build_table_keyed`] with what an earlier build left ([`Hints`]): the
/// same table, for less work. The scratch's `setup` then holds, in
/// population order, each server's index, walk and claimed slots: what the
/// caller keeps for the next build's hints.
pub fn build_table_hinted(
    size: TableSize,
    servers: &[Server],
    keys: Option<&[Addr]>,
    hints: Hints<'_>,
    order: Order,
    table: &mut [u16],
    scratch: Scratch<'_>,
) -> Result<BuildStats, BuildError> {
    let m = size.slots();
    let n = servers.len();
    if n > m as usize || n > MAX_SERVERS {
        return Err(BuildError::TooManyServers);
    }
    if table.len() != m as usize {
        return Err(BuildError::TableLength);
    }
    let setup = scratch
        .setup
        .get_mut(..n)
        .ok_or(BuildError::ScratchLength)?;
    if keys.is_some_and(|k| k.len() < n) {
        return Err(BuildError::ScratchLength);
    }
    let key_of = |i: usize, s: &Server| -> SortKey {
        let addr = keys.and_then(|k| k.get(i)).unwrap_or(&s.addr);
        // i < n <= MAX_SERVERS.
        SortKey::new(addr, s.port, u16::try_from(i).unwrap_or(EMPTY))
    };
    // Population position -> index into `servers`: the servers' sort keys,
    // sorted.
    let perm_order: Option<&[SortKey]> = match order {
        Order::List => None,
        Order::Sorted => {
            let o = scratch
                .order
                .get_mut(..n)
                .ok_or(BuildError::ScratchLength)?;
            if !sort_hinted(o, hints.order, servers, &key_of) {
                // (A bounded range, unlike enumerate(), needs no overflow check.)
                for ((i, s), slot) in (0..n).zip(servers.iter()).zip(o.iter_mut()) {
                    *slot = key_of(i, s);
                }
                sort_keys(o);
            }
            Some(o)
        }
    };
    let index_at = |k: usize| -> usize {
        match perm_order {
            None => k,
            Some(o) => o.get(k).map_or(usize::MAX, |key| usize::from(key.index)),
        }
    };

    let g = weight_gcd(servers);
    let rshift = weight_rshift(size, servers, g);
    for (k, ds) in (0..n).zip(setup.iter_mut()) {
        let i = index_at(k);
        *ds = match servers.get(i) {
            Some(s) => {
                let walk = match hints.walks.get(i) {
                    Some(w) if w.fits(m) => *w,
                    _ => Walk::of(size, &s.addr, s.port),
                };
                DestSetup {
                    offset: walk.offset,
                    skip: walk.skip,
                    perm: walk.offset,
                    turns: turns_for(s.weight, g, rshift),
                    claimed: 0,
                    // i < n <= MAX_SERVERS.
                    index: u16::try_from(i).unwrap_or(EMPTY),
                }
            }
            None => DestSetup::default(),
        };
    }

    table.fill(EMPTY);
    let mut stats = BuildStats {
        servers: 0,
        gcd: i32::try_from(g).unwrap_or(i32::MAX),
        rshift,
        filled: 0,
    };
    if g == 0 {
        return Ok(stats);
    }

    (stats.filled, stats.servers) = fill(table, setup, m);
    Ok(stats)
}

/// Sorts `o` (exactly one key per server) from the hinted population order
/// `hint`: the keys laid out in that order, then an insertion sort that
/// gives up after about two moves per server, as one server added anywhere
/// needs at most one per server. Returns whether `o` is now the servers'
/// keys in strictly increasing order; the keys are distinct (they end with
/// the input index), so that also proves `hint` was a permutation. On
/// `false`, `o` holds garbage for the caller to rebuild.
fn sort_hinted(
    o: &mut [SortKey],
    hint: &[u16],
    servers: &[Server],
    key_of: &impl Fn(usize, &Server) -> SortKey,
) -> bool {
    if hint.len() != o.len() || o.is_empty() {
        return false;
    }
    for (slot, &i) in o.iter_mut().zip(hint.iter()) {
        let Some(s) = servers.get(usize::from(i)) else {
            return false;
        };
        *slot = key_of(usize::from(i), s);
    }
    let budget = o.len().saturating_mul(2).saturating_add(16);
    insertion_sort_within(o, budget) && strictly_increasing(o)
}

/// Insertion sort of `v`, ascending, giving up (`false`, `v` a permutation
/// of what it was no more) once it has moved more than `budget` elements.
fn insertion_sort_within<T: Copy + Ord>(v: &mut [T], budget: usize) -> bool {
    let mut moves: usize = 0;
    for i in 1..v.len() {
        let Some(&x) = v.get(i) else {
            return false;
        };
        let mut j = i;
        while j > 0 {
            // j > 0: never wraps.
            let Some(&prev) = v.get(j.wrapping_sub(1)) else {
                return false;
            };
            if prev <= x {
                break;
            }
            if let Some(slot) = v.get_mut(j) {
                *slot = prev;
            }
            j = j.wrapping_sub(1);
            moves = moves.saturating_add(1);
            if moves > budget {
                return false;
            }
        }
        if let Some(slot) = v.get_mut(j) {
            *slot = x;
        }
    }
    true
}

/// The population: round after round, each server in `setup` order claims
/// its turns' worth of the next free slots of its walk, until all `m` slots
/// of `table` (all [`EMPTY`]) are claimed. Returns the slots filled and the
/// servers that claimed slots in the first round. A function of its own so
/// that the walk's state stays in registers.
#[inline(never)]
fn fill(table: &mut [u16], setup: &mut [DestSetup], m: u32) -> (u32, u32) {
    let (mut filled, mut servers): (u32, u32) = (0, 0);
    let mut first_round = true;
    'fill: loop {
        let before = filled;
        for ds in setup.iter_mut() {
            if first_round && ds.turns > 0 {
                // At most n <= MAX_SERVERS.
                servers = servers.wrapping_add(1);
            }
            // The walk's state in locals while the server claims its turns.
            let (mut perm, skip) = (ds.perm, ds.skip);
            let start = filled;
            for _ in 0..ds.turns {
                // Some slot is free: fewer than M are filled.
                perm = next_free(perm, skip, table, m);
                let Some(slot) = table.get_mut(perm as usize) else {
                    // Not reachable: the walk stays in the table.
                    break;
                };
                *slot = ds.index;
                // At most M.
                filled = filled.wrapping_add(1);
                if filled == m {
                    break;
                }
            }
            ds.perm = perm;
            // This round's claims (filled only grows): the server's count
            // without a counter in the probe loop.
            ds.claimed = ds.claimed.wrapping_add(filled.wrapping_sub(start));
            if filled == m || filled.wrapping_sub(start) < ds.turns {
                break 'fill;
            }
        }
        if filled == before {
            // No server has turns (the caller returns before then).
            break;
        }
        first_round = false;
    }
    (filled, servers)
}

/// In [`match_servers`]' results: a server the other list does not have.
/// Never a server index (those are below [`MAX_SERVERS`], `EMPTY - 1`).
pub const UNMATCHED: u16 = EMPTY - 1;

/// How many unmatched servers [`match_servers`] compares on each side to
/// tell an exact match: a server removed and added back is unmatched on
/// both sides, which is only looked for among this many.
const MATCH_CHECKED: usize = 4;

/// Matches the servers of an earlier list (`old_id(i)`, the identity of its
/// server `i`, for `i < to_new.len()`) with those of the current one
/// (`new_id(j)`, `j < to_old.len()`): `to_new[i]` becomes the current index
/// of old server `i`, or [`UNMATCHED`], and `to_old[j]` the old index of
/// server `j`, or [`UNMATCHED`]. For the lists of a caller that adds
/// servers at the head and removes them anywhere (IPVS does): the servers
/// both lists have are then in the same order in both, after the added
/// ones, and one walk from the tails matches every one of them, whatever
/// the number of additions and removals.
///
/// Returns whether the match is exact: no identity is unmatched on both
/// sides. That fails for a server removed and added back (at the head)
/// between the lists, and is not looked into (`false`) when more than a
/// few servers are unmatched on a side, or an identity is missing. Whatever
/// the lists, matched servers have equal identities.
pub fn match_servers(
    old_id: impl Fn(usize) -> Option<usize>,
    new_id: impl Fn(usize) -> Option<usize>,
    to_new: &mut [u16],
    to_old: &mut [u16],
) -> bool {
    to_new.fill(UNMATCHED);
    to_old.fill(UNMATCHED);
    let (mut i, mut j) = (to_new.len(), to_old.len());
    let mut old_only = [0usize; MATCH_CHECKED];
    let mut n_old_only: usize = 0;
    let mut complete = true;
    while i > 0 && j > 0 {
        // i, j > 0: never wraps.
        let (pi, pj) = (i.wrapping_sub(1), j.wrapping_sub(1));
        let (Some(a), Some(b)) = (old_id(pi), new_id(pj)) else {
            return false;
        };
        if a == b {
            if let (Some(n), Some(o), Ok(vj), Ok(vi)) = (
                to_new.get_mut(pi),
                to_old.get_mut(pj),
                u16::try_from(pj),
                u16::try_from(pi),
            ) {
                *n = vj;
                *o = vi;
            }
            j = pj;
        } else {
            // Not at the tail of the current list: removed.
            match old_only.get_mut(n_old_only) {
                Some(slot) => *slot = a,
                None => complete = false,
            }
            n_old_only = n_old_only.saturating_add(1);
        }
        i = pi;
    }
    // Old servers left over were removed (the current list ran out); the
    // current list's first `j` servers were added.
    if i > MATCH_CHECKED.saturating_sub(n_old_only) || j > MATCH_CHECKED {
        return false;
    }
    for k in 0..i {
        let Some(a) = old_id(k) else {
            return false;
        };
        if let Some(slot) = old_only.get_mut(n_old_only) {
            *slot = a;
        }
        n_old_only = n_old_only.saturating_add(1);
    }
    complete
        && (0..j)
            .all(|k| new_id(k).is_some_and(|b| !old_only.iter().take(n_old_only).any(|&a| a == b)))
}

/// How many slots hold another server in `new` than in `old`, with `to_new`
/// mapping `old`'s server indices to `new`'s ([`UNMATCHED`] for a server
/// `new` lacks): one pass over both tables. [`EMPTY`] stays [`EMPTY`]; a
/// slot only one of them has counts as changed.
pub fn changed_slots(old: &[u16], new: &[u16], to_new: &[u16]) -> u32 {
    let mut changed: u32 = 0;
    for (&o, &n) in old.iter().zip(new.iter()) {
        let o = if o == EMPTY {
            EMPTY
        } else {
            to_new.get(usize::from(o)).copied().unwrap_or(UNMATCHED)
        };
        changed = changed.saturating_add(u32::from(o != n));
    }
    let extra = old.len().abs_diff(new.len());
    changed.saturating_add(u32::try_from(extra).unwrap_or(u32::MAX))
}

/// Counts the slots of each server: `counts[i]` becomes the number of
/// slots holding `i` (entries past `counts.len()` are not counted).
/// Returns the number of [`EMPTY`] slots.
pub fn count_slots(table: &[u16], counts: &mut [u32]) -> u32 {
    counts.fill(0);
    let mut empty: u32 = 0;
    for &idx in table {
        if idx == EMPTY {
            empty = empty.saturating_add(1);
        } else if let Some(c) = counts.get_mut(usize::from(idx)) {
            *c = c.saturating_add(1);
        }
    }
    empty
}

/// FNV-1a (32-bit) over the table, each entry as two little-endian bytes.
/// Used to pin known answers compactly.
pub fn table_fingerprint(table: &[u16]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &v in table {
        for byte in v.to_le_bytes() {
            h ^= u32::from(byte);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// The servers of a [`KnownAnswer`].
#[derive(Clone, Copy, Debug)]
pub enum KnownServers {
    /// Exactly these servers, in list order.
    Fixed(&'static [Server]),
    /// `count` IPv4 servers: server `i` has address `base + i` (as a
    /// big-endian `u32`, wrapping), port `port` and weight
    /// `1 + i % weight_mod` (weight 1 when `weight_mod` is 0).
    Generated {
        /// How many servers.
        count: u16,
        /// Address of server 0.
        base: [u8; 4],
        /// Port of every server.
        port: u16,
        /// Weights cycle through `1..=weight_mod`.
        weight_mod: u16,
    },
}

/// A pinned configuration and the table it must produce, shared by the
/// userspace tests and the in-kernel KUnit tests.
#[derive(Clone, Copy, Debug)]
pub struct KnownAnswer {
    /// Short name for reports.
    pub name: &'static str,
    /// Table size `M`.
    pub size: u32,
    /// Population order.
    pub order: Order,
    /// The servers, in list order.
    pub servers: KnownServers,
    /// Expected [`BuildStats`].
    pub stats: BuildStats,
    /// Expected [`table_fingerprint`] of the whole table.
    pub fingerprint: u32,
    /// Expected first eight slots.
    pub first: [u16; 8],
}

impl KnownAnswer {
    /// Number of servers.
    pub const fn len(&self) -> usize {
        match self.servers {
            KnownServers::Fixed(s) => s.len(),
            KnownServers::Generated { count, .. } => count as usize,
        }
    }

    /// Whether the configuration has no server.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Server `i`, or `None` past the end.
    pub fn server(&self, i: usize) -> Option<Server> {
        match self.servers {
            KnownServers::Fixed(s) => s.get(i).copied(),
            KnownServers::Generated {
                count,
                base,
                port,
                weight_mod,
            } => {
                if i >= usize::from(count) {
                    return None;
                }
                let i = u16::try_from(i).ok()?;
                let addr = u32::from_be_bytes(base).wrapping_add(u32::from(i));
                let weight = match NonZeroU16::new(weight_mod) {
                    None => 1,
                    Some(w) => i32::from(i % w).wrapping_add(1),
                };
                Some(Server {
                    addr: Addr::V4(addr.to_be_bytes()),
                    port,
                    weight,
                })
            }
        }
    }
}

const fn v4(a: [u8; 4], port: u16, weight: i32) -> Server {
    Server {
        addr: Addr::V4(a),
        port,
        weight,
    }
}

const fn v6(a: [u8; 16], port: u16, weight: i32) -> Server {
    Server {
        addr: Addr::V6(a),
        port,
        weight,
    }
}

/// 2001:db8::`last` as bytes.
const fn doc_v6(last: u8) -> [u8; 16] {
    [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, last,
    ]
}

const KA_THREE: [Server; 3] = [
    v4([10, 1, 0, 1], 80, 1),
    v4([10, 1, 0, 2], 80, 1),
    v4([10, 1, 0, 3], 80, 1),
];

const KA_WEIGHTED: [Server; 4] = [
    v4([192, 168, 10, 4], 8080, 4),
    v4([192, 168, 10, 1], 8080, 1),
    v4([192, 168, 10, 3], 8081, 3),
    v4([192, 168, 10, 2], 8082, 2),
];

const KA_ZERO: [Server; 5] = [
    v4([172, 16, 0, 10], 443, 5),
    v4([172, 16, 0, 11], 443, 0),
    v4([172, 16, 0, 12], 443, 10),
    v4([172, 16, 0, 13], 443, 0),
    v4([172, 16, 0, 14], 443, 15),
];

const KA_V6: [Server; 4] = [
    v6(doc_v6(0x20), 53, 2),
    v6(doc_v6(0x10), 53, 1),
    v6(doc_v6(0x10), 5353, 1),
    v6(doc_v6(0x30), 53, 3),
];

const KA_SHIFT: [Server; 4] = [
    v4([10, 9, 0, 1], 0, 65535),
    v4([10, 9, 0, 2], 0, 1000),
    v4([10, 9, 0, 3], 0, 1),
    v4([10, 9, 0, 4], 0, 40000),
];

const KA_ALL_ZERO: [Server; 2] = [v4([10, 0, 0, 1], 80, 0), v4([10, 0, 0, 2], 80, 0)];

/// Pinned configurations and the tables they produce.
///
/// The [`Order::List`] entries were checked against the unmodified C of
/// Linux 7.3 (`ip_vs_mh.c` and `lib/siphash.c` compiled in userspace), the
/// [`Order::Sorted`] one by giving that C the servers in sorted order. They
/// cover gcd > 1, zero weights, IPv6, a non-zero shift, no usable server,
/// as many servers as slots (where some servers get none) and the largest
/// table.
pub const KNOWN_ANSWERS: [KnownAnswer; 9] = [
    KnownAnswer {
        name: "three-equal-4093-list",
        size: 4093,
        order: Order::List,
        servers: KnownServers::Fixed(&KA_THREE),
        stats: BuildStats {
            servers: 3,
            gcd: 1,
            rshift: 0,
            filled: 4093,
        },
        fingerprint: 0x3b0e_ae5d,
        first: [2, 2, 2, 0, 2, 1, 2, 1],
    },
    KnownAnswer {
        name: "weighted-4093-list",
        size: 4093,
        order: Order::List,
        servers: KnownServers::Fixed(&KA_WEIGHTED),
        stats: BuildStats {
            servers: 4,
            gcd: 1,
            rshift: 0,
            filled: 4093,
        },
        fingerprint: 0xe2f2_421e,
        first: [1, 0, 2, 3, 0, 3, 0, 0],
    },
    KnownAnswer {
        name: "weighted-4093-sorted",
        size: 4093,
        order: Order::Sorted,
        servers: KnownServers::Fixed(&KA_WEIGHTED),
        stats: BuildStats {
            servers: 4,
            gcd: 1,
            rshift: 0,
            filled: 4093,
        },
        fingerprint: 0x315e_4c87,
        first: [1, 3, 2, 0, 0, 0, 2, 3],
    },
    KnownAnswer {
        name: "zero-weights-251-list",
        size: 251,
        order: Order::List,
        servers: KnownServers::Fixed(&KA_ZERO),
        stats: BuildStats {
            servers: 3,
            gcd: 5,
            rshift: 0,
            filled: 251,
        },
        fingerprint: 0x03e0_f529,
        first: [2, 2, 4, 4, 4, 4, 4, 4],
    },
    KnownAnswer {
        name: "ipv6-1021-list",
        size: 1021,
        order: Order::List,
        servers: KnownServers::Fixed(&KA_V6),
        stats: BuildStats {
            servers: 4,
            gcd: 1,
            rshift: 0,
            filled: 1021,
        },
        fingerprint: 0xa1ac_647e,
        first: [0, 3, 3, 2, 1, 3, 1, 3],
    },
    KnownAnswer {
        name: "rshift-65521-list",
        size: 65521,
        order: Order::List,
        servers: KnownServers::Fixed(&KA_SHIFT),
        stats: BuildStats {
            servers: 4,
            gcd: 1,
            rshift: 8,
            filled: 65521,
        },
        fingerprint: 0x1314_c386,
        first: [0, 3, 0, 3, 0, 3, 3, 0],
    },
    KnownAnswer {
        name: "all-zero-509-list",
        size: 509,
        order: Order::List,
        servers: KnownServers::Fixed(&KA_ALL_ZERO),
        stats: BuildStats {
            servers: 0,
            gcd: 0,
            rshift: 0,
            filled: 0,
        },
        fingerprint: 0xeb72_9d4b,
        first: [EMPTY; 8],
    },
    KnownAnswer {
        name: "n-equals-m-251-list",
        size: 251,
        order: Order::List,
        servers: KnownServers::Generated {
            count: 251,
            base: [10, 2, 0, 0],
            port: 80,
            weight_mod: 2,
        },
        stats: BuildStats {
            servers: 168,
            gcd: 1,
            rshift: 0,
            filled: 251,
        },
        fingerprint: 0x7c8d_2592,
        first: [79, 104, 51, 75, 130, 158, 122, 5],
    },
    KnownAnswer {
        name: "thousand-131071-list",
        size: 131071,
        order: Order::List,
        servers: KnownServers::Generated {
            count: 1000,
            base: [10, 3, 250, 0],
            port: 443,
            weight_mod: 7,
        },
        stats: BuildStats {
            servers: 1000,
            gcd: 1,
            rshift: 0,
            filled: 131071,
        },
        fingerprint: 0x29a0_883d,
        first: [634, 145, 446, 482, 315, 131, 181, 123],
    },
];

/// A pinned hash: `hash_key(addr, port, key, offset)` must equal `hash`.
/// The kernel side can recompute these with its own `hsiphash()`.
#[derive(Clone, Copy, Debug)]
pub struct HashVector {
    /// Address hashed.
    pub addr: Addr,
    /// Port hashed (host order).
    pub port: u16,
    /// Whether [`HASH2`] (instead of [`HASH1`]) is the key.
    pub second_key: bool,
    /// Offset added before hashing.
    pub offset: u32,
    /// Expected [`hash_key`] result.
    pub hash: u32,
}

/// Pinned [`hash_key`] values, checked against the C `ip_vs_mh_hashkey()`
/// of Linux 7.3 compiled in userspace.
pub const HASH_VECTORS: [HashVector; 6] = [
    HashVector {
        addr: Addr::V4([10, 1, 0, 1]),
        port: 80,
        second_key: false,
        offset: 0,
        hash: 0x17c8_7ac9,
    },
    HashVector {
        addr: Addr::V4([10, 1, 0, 1]),
        port: 80,
        second_key: true,
        offset: 0,
        hash: 0x6148_7d80,
    },
    HashVector {
        addr: Addr::V4([192, 0, 2, 7]),
        port: 0,
        second_key: false,
        offset: 17,
        hash: 0x7fc5_53ee,
    },
    HashVector {
        addr: Addr::V4([255, 255, 255, 255]),
        port: 65535,
        second_key: false,
        offset: 4092,
        hash: 0x3045_6135,
    },
    HashVector {
        addr: Addr::V6(doc_v6(1)),
        port: 53,
        second_key: false,
        offset: 0,
        hash: 0xc7cb_25e7,
    },
    HashVector {
        addr: Addr::V6(doc_v6(1)),
        port: 53,
        second_key: true,
        offset: 0,
        hash: 0xd99c_5595,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insertion_sort_sorts_within_its_budget() {
        let mut v = [3u32, 1, 2, 5, 4];
        assert!(insertion_sort_within(&mut v, 10));
        assert_eq!(v, [1, 2, 3, 4, 5]);
        // Reverse order of 6 needs 15 moves.
        let mut w = [6u32, 5, 4, 3, 2, 1];
        assert!(!insertion_sort_within(&mut w, 14));
        let mut w = [6u32, 5, 4, 3, 2, 1];
        assert!(insertion_sort_within(&mut w, 15));
        assert_eq!(w, [1, 2, 3, 4, 5, 6]);
    }

    fn four() -> [Server; 4] {
        [
            v4([10, 0, 0, 4], 80, 1),
            v4([10, 0, 0, 2], 80, 1),
            v4([10, 0, 0, 1], 80, 1),
            v4([10, 0, 0, 3], 80, 1),
        ]
    }

    #[test]
    fn order_hint_is_checked() {
        let servers = four();
        let key_of = |i: usize, s: &Server| SortKey::new(&s.addr, s.port, i as u16);
        let mut o = [SortKey::default(); 4];
        // The population order itself, and one server out of place.
        assert!(sort_hinted(&mut o, &[2, 1, 3, 0], &servers, &key_of));
        assert_eq!(o.map(|k| k.index()), [2, 1, 3, 0]);
        assert!(sort_hinted(&mut o, &[1, 3, 0, 2], &servers, &key_of));
        assert_eq!(o.map(|k| k.index()), [2, 1, 3, 0]);
        // Not a permutation: a repeated index, one out of range, too short.
        assert!(!sort_hinted(&mut o, &[2, 1, 1, 0], &servers, &key_of));
        assert!(!sort_hinted(&mut o, &[2, 1, 3, 4], &servers, &key_of));
        assert!(!sort_hinted(&mut o, &[2, 1, 3], &servers, &key_of));
    }

    #[test]
    fn given_walks_are_used() {
        // Two servers' walks swapped: a build that reads its hints makes
        // another table (which is why they must be the servers' own).
        let servers = four();
        let size = TableSize::new(251).unwrap();
        let mut walks: [Walk; 4] = servers.map(|s| Walk::of(size, &s.addr, s.port));
        let build = |walks: &[Walk]| {
            let mut table = [0u16; 251];
            let mut setup = [DestSetup::default(); 4];
            let mut order = [SortKey::default(); 4];
            build_table_hinted(
                size,
                &servers,
                None,
                Hints { walks, order: &[] },
                Order::Sorted,
                &mut table,
                Scratch {
                    setup: &mut setup,
                    order: &mut order,
                },
            )
            .unwrap();
            table
        };
        let own = build(&walks);
        assert_eq!(own, build(&[]));
        walks.swap(0, 1);
        assert_ne!(own, build(&walks));
    }

    #[test]
    fn walks_that_cannot_be_are_not_used() {
        assert!(!Walk::default().fits(251));
        assert!(!Walk {
            offset: 251,
            skip: 1
        }
        .fits(251));
        assert!(!Walk {
            offset: 0,
            skip: 251
        }
        .fits(251));
        assert!(Walk {
            offset: 250,
            skip: 250
        }
        .fits(251));
    }
}
