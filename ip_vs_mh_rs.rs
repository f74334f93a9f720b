// SPDX-License-Identifier: GPL-2.0

//! IPVS Maglev hashing scheduler (`mh`), in Rust.
//!
//! Several directors behind ECMP must send each flow to the same real server
//! without sharing state, and a change of servers must move as few flows as
//! possible. Maglev hashing (Eisenbud et al., NSDI'16, section 3.4) gives
//! both: every director computes the same lookup table from the same servers,
//! and a new table differs from the old one mostly in the slots of the
//! servers that changed. The table and its hashing live in `maglev/maglev.rs`,
//! shared with the userspace model `mhsim`; this file is the scheduler glue,
//! laid out like net/netfilter/ipvs/ip_vs_mh.c.
//!
//! Where it differs from the in-tree C scheduler:
//!
//! - the client's source port is always hashed (TCP, UDP, SCTP); ICMP errors
//!   hash like the flow they are about; `-b mh-port` is accepted and changes
//!   nothing;
//! - a server's current weight counts: weight 0 takes no slots (clean drain);
//! - servers are sorted by address and port before the table is filled, so
//!   the table does not depend on the order they were added in
//!   (`list_order=1` fills in IPVS list order, exactly like the C module);
//! - every change builds a new table off to the side and publishes it with
//!   RCU; if building fails, the previous table keeps serving;
//! - a slot holds a 2-byte server index, not an 8-byte pointer.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::sync::rcu;

#[path = "maglev/maglev.rs"]
pub mod maglev;

mod bindings;

use bindings::{
    AddrText, Counter, Dest, DestInfo, DestRefs, Flow, PerCpuCounters, RcuBox, RcuPtr, SeqFile,
    Service, ServiceName, Unpublish,
};
use maglev::{Addr, Order, TableSize};

module! {
    type: MhModule,
    name: "ip_vs_mh_rs",
    authors: ["The ip_vs_mh_rs developers"],
    description: "IPVS Maglev hashing scheduler (mh), in Rust",
    license: "GPL",
    alias: ["ip_vs_mh"],
    params: {
        table_size: u32 {
            default: 4093,
            description: "Lookup table slots per service, one of the primes 251 509 1021 2039 4093 8191 16381 32749 65521 131071 (default 4093)",
        },
        list_order: bool {
            default: false,
            description: "Fill the table in IPVS list order, exactly like the in-tree C ip_vs_mh (default: sorted by address and port, the same on every director)",
        },
    },
}

/// The serving lookup table of one service.
struct MhTable {
    /// `M` slots, each an index into `dests` or [`maglev::EMPTY`].
    slots: KVVec<u16>,
    /// The servers in the order the table was built from.
    ///
    /// INVARIANT: holds a reference on every server a slot can name while
    /// the table is published, so the table never points to a freed
    /// `ip_vs_dest`; the references go back when the table is unpublished
    /// (see [`DestRefs::release`]).
    dests: DestRefs,
    /// What `/proc/net/ip_vs_mh` shows of each server, by index.
    records: KVec<ServerRecord>,
}

impl MhTable {
    /// The bytes the table holds: its node, 2 per slot, and the per-server
    /// arrays.
    fn bytes(&self) -> usize {
        RcuBox::<MhTable>::alloc_bytes()
            + self.slots.capacity() * core::mem::size_of::<u16>()
            + self.dests.bytes()
            + self.records.capacity() * core::mem::size_of::<ServerRecord>()
    }
}

impl Unpublish for MhTable {
    fn unpublished(&self) {
        self.dests.release();
    }
}

/// A real server as the table was built from it.
struct ServerRecord {
    addr: [u8; 16],
    ipv6: bool,
    port: u16,
    weight: i32,
    slots: u32,
}

/// Per-service state (`sched_data`).
struct MhService {
    /// The service, e.g. `TCP 192.0.2.1:80` (it cannot change).
    name: ServiceName,
    size: TableSize,
    order: Order,
    /// The serving table; `None` while the service has no real server.
    table: RcuPtr<MhTable>,
    /// Packet-path counters: decisions, fallbacks taken, refusals.
    counters: PerCpuCounters,
    /// Tables published so far.
    rebuilds: AtomicU64,
    /// When the last table was published (seconds since boot).
    last_rebuild: AtomicI64,
    /// Slots that changed owner in the last rebuild.
    last_moved: AtomicU64,
    /// A digest of what the serving table was built from (servers, their
    /// identities and weights), so that edits which change none of it
    /// (thresholds, forwarding method) rebuild nothing.
    built_from: AtomicU64,
    /// Set after a failed rebuild, so that failures are logged once.
    failing: AtomicBool,
}

impl Unpublish for MhService {
    /// The service stops using the scheduler: its table goes, with its
    /// references on the real servers.
    fn unpublished(&self) {
        if let Some(table) = self.table.replace(None) {
            table.retire();
        }
    }
}

/// The valid `table_size` values, for messages.
const SIZES_TEXT: &str = "251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071";

fn module_config() -> Result<(TableSize, Order)> {
    let m = module_parameters::table_size.value();
    let size = TableSize::new(m).ok_or(EINVAL)?;
    let order = if module_parameters::list_order.value() {
        Order::List
    } else {
        Order::Sorted
    };
    Ok((size, order))
}

/// The address a service hashes: IPv4 services hash the first four bytes,
/// even of an IPv6 real server (as the C module does with `svc->af`).
fn hash_addr(ipv6: bool, bytes: [u8; 16]) -> Addr {
    if ipv6 {
        Addr::V6(bytes)
    } else {
        Addr::V4([bytes[0], bytes[1], bytes[2], bytes[3]])
    }
}

/// FNV-1a over the build inputs, in list order.
fn inputs_digest(infos: &[DestInfo]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for info in infos {
        eat(&info.identity().to_ne_bytes());
        eat(&info.addr());
        eat(&info.port().to_ne_bytes());
        eat(&info.weight().to_ne_bytes());
    }
    h
}

/// Memory a rebuild works in, kept from one rebuild to the next: the server
/// snapshot, the core's input and its scratch arrays. IPVS makes its control
/// path changes one at a time, under its configuration mutex, so one
/// workspace serves every service (of every namespace); the lock around it
/// is never contended. It grows to the largest service built, is released
/// when a rebuild fails (memory is short) and when the module unloads.
///
/// Without it a rebuild made ten allocations; now it makes four (the table,
/// its server references and records, and their node), which matters where
/// allocations are slow (KASAN, kmemleak).
pub(crate) struct Workspace {
    infos: KVec<DestInfo>,
    servers: KVVec<maglev::Server>,
    bitmap: KVVec<u64>,
    setup: KVVec<maglev::DestSetup>,
    order: KVVec<u16>,
    /// Slots per server of the new table, for its records.
    counts: KVVec<u32>,
}

impl Workspace {
    /// An empty workspace: no memory until the first rebuild.
    pub(crate) const fn new() -> Self {
        Workspace {
            infos: KVec::new(),
            servers: KVVec::new(),
            bitmap: KVVec::new(),
            setup: KVVec::new(),
            order: KVVec::new(),
            counts: KVVec::new(),
        }
    }
}

/// Builds the table of `servers` (the core allocates nothing: its scratch
/// arrays come from the workspace).
fn build_table(
    size: TableSize,
    servers: &[maglev::Server],
    order: Order,
    bitmap: &mut KVVec<u64>,
    setup: &mut KVVec<maglev::DestSetup>,
    scratch_order: &mut KVVec<u16>,
) -> Result<(KVVec<u16>, maglev::BuildStats)> {
    let n = servers.len();
    // Shrinking keeps the capacity; only growth allocates.
    bitmap.resize(size.bitmap_words(), 0, GFP_KERNEL)?;
    setup.resize(n, maglev::DestSetup::default(), GFP_KERNEL)?;
    scratch_order.resize(n, 0, GFP_KERNEL)?;
    let mut slots = KVVec::from_elem(maglev::EMPTY, size.slots() as usize, GFP_KERNEL)?;
    let stats = maglev::build_table(
        size,
        servers,
        order,
        &mut slots,
        maglev::Scratch {
            bitmap,
            setup,
            order: scratch_order,
        },
    )
    .map_err(|_| EINVAL)?;
    Ok((slots, stats))
}

impl MhService {
    /// Builds a table for the service's current servers and publishes it.
    /// On error nothing changes: the previous table keeps serving.
    fn rebuild(&self, svc: &Service<'_>) -> Result {
        bindings::with_workspace(|work| {
            let result = self.rebuild_in(svc, work);
            if result.is_err() {
                *work = Workspace::new();
            }
            result
        })
    }

    fn rebuild_in(&self, svc: &Service<'_>, work: &mut Workspace) -> Result {
        let Workspace {
            infos,
            servers,
            bitmap,
            setup,
            order,
            counts,
        } = work;
        svc.dests(infos)?;
        let digest = inputs_digest(infos);
        if digest == self.built_from.load(Ordering::Relaxed) {
            return Ok(());
        }

        let n = infos.len();
        let m = self.size.slots() as usize;
        if n > m || n > maglev::MAX_SERVERS {
            pr_err!(
                "{}: {} real servers do not fit in a table of {} slots (table_size); the previous table keeps serving\n",
                svc.name(),
                n,
                m
            );
            return Err(EINVAL);
        }

        let ipv6 = svc.is_ipv6();
        servers.clear();
        servers.reserve(n, GFP_KERNEL)?;
        for info in infos.iter() {
            servers.push(
                maglev::Server {
                    addr: hash_addr(ipv6, info.addr()),
                    port: info.port(),
                    weight: info.weight(),
                },
                GFP_KERNEL,
            )?;
        }
        let (slots, stats) = build_table(self.size, servers, self.order, bitmap, setup, order)?;

        let new = if n == 0 {
            None
        } else {
            counts.resize(n, 0, GFP_KERNEL)?;
            maglev::count_slots(&slots, counts);
            let mut dests = DestRefs::with_capacity(n)?;
            let mut records = KVec::with_capacity(n, GFP_KERNEL)?;
            for (info, &count) in infos.iter().zip(counts.iter()) {
                dests.push(info)?;
                records.push(
                    ServerRecord {
                        addr: info.addr(),
                        ipv6: info.is_ipv6(),
                        port: info.port(),
                        weight: info.weight(),
                        slots: count,
                    },
                    GFP_KERNEL,
                )?;
            }
            Some(RcuBox::new(
                MhTable {
                    slots,
                    dests,
                    records,
                },
                GFP_KERNEL,
            )?)
        };

        let moved = moved_slots(self.table.get_locked(), new.as_deref(), m);
        if let Some(old) = self.table.replace(new) {
            old.retire();
        }
        self.built_from.store(digest, Ordering::Relaxed);
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
        self.last_rebuild
            .store(bindings::boottime_seconds(), Ordering::Relaxed);
        self.last_moved.store(moved as u64, Ordering::Relaxed);
        pr_debug!(
            "{}: table rebuilt: {} servers ({} with slots), {} of {} slots changed owner\n",
            svc.name(),
            n,
            stats.servers,
            moved,
            m
        );
        Ok(())
    }

    /// Rebuilds, logging a failure once until a rebuild succeeds again.
    fn rebuild_logged(&self, svc: &Service<'_>) -> Result {
        let result = self.rebuild(svc);
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    pr_info!("{}: table rebuilt again\n", svc.name());
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    pr_err!(
                        "{}: cannot rebuild the lookup table (error {}); the previous table keeps serving\n",
                        svc.name(),
                        e.to_errno()
                    );
                }
            }
        }
        result
    }
}

impl MhService {
    /// The service's `/proc/net/ip_vs_mh` records: one `S` line, then a `D`
    /// line per real server (the header lines written by the C side name
    /// the columns; README.md documents them).
    fn write_records(&self, out: &mut SeqFile<'_>) -> core::fmt::Result {
        let counts = self.counters.sum();
        let order = if self.order == Order::List {
            "list"
        } else {
            "sorted"
        };
        let guard = rcu::Guard::new();
        let table = self.table.get(&guard);
        // What the module allocated for the service, allocator rounding
        // aside: the state, its counters and registry entry, the table.
        let bytes = RcuBox::<MhService>::alloc_bytes()
            + self.counters.bytes()
            + bindings::registry_entry_bytes()
            + table.map_or(0, MhTable::bytes);
        writeln!(
            out,
            "S {} {} {} {} {} {} {} {} {} {}",
            self.name.as_str(),
            self.size.slots(),
            order,
            self.rebuilds.load(Ordering::Relaxed),
            self.last_rebuild.load(Ordering::Relaxed),
            self.last_moved.load(Ordering::Relaxed),
            counts.decisions,
            counts.fallbacks,
            counts.refusals,
            bytes
        )?;
        let Some(table) = table else {
            return Ok(());
        };
        let total_weight: u64 = table
            .records
            .iter()
            .map(|r| u64::try_from(r.weight).unwrap_or(0))
            .sum();
        for r in table.records.iter() {
            let weight = u64::try_from(r.weight).unwrap_or(0);
            writeln!(
                out,
                "D {} {} {} {} {}",
                AddrText::new(r.ipv6, &r.addr, r.port).as_str(),
                r.weight,
                r.slots,
                Percent(u64::from(r.slots), u64::from(self.size.slots())),
                Percent(weight, total_weight)
            )?;
        }
        Ok(())
    }
}

/// `part / whole` as a percentage with two decimals, without floating point.
struct Percent(u64, u64);

impl core::fmt::Display for Percent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hundredths = self
            .0
            .saturating_mul(10_000)
            .checked_div(self.1)
            .unwrap_or(0);
        write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

/// How many slots name a different server in `new` than in `old`.
fn moved_slots(old: Option<&MhTable>, new: Option<&MhTable>, m: usize) -> usize {
    let owner = |t: Option<&MhTable>, i: usize| -> Option<usize> {
        let t = t?;
        let idx = *t.slots.get(i)?;
        t.dests.get(usize::from(idx)).map(|d| d.identity())
    };
    (0..m).filter(|&i| owner(old, i) != owner(new, i)).count()
}

/// The scheduler.
struct MhScheduler;

impl bindings::Callbacks for MhScheduler {
    type State = MhService;

    fn init_service(svc: &Service<'_>) -> Result<RcuBox<MhService>> {
        let (size, order) = module_config()?;
        let state = PerCpuCounters::new()
            .and_then(|counters| {
                RcuBox::new(
                    MhService {
                        name: svc.name(),
                        size,
                        order,
                        table: RcuPtr::new(),
                        counters,
                        rebuilds: AtomicU64::new(0),
                        last_rebuild: AtomicI64::new(0),
                        last_moved: AtomicU64::new(0),
                        built_from: AtomicU64::new(inputs_digest(&[])),
                        failing: AtomicBool::new(false),
                    },
                    GFP_KERNEL,
                )
            })
            .inspect_err(|e| {
                pr_err!(
                    "{}: cannot set up the service (error {})\n",
                    svc.name(),
                    e.to_errno()
                );
            })?;
        state.rebuild_logged(svc)?;
        Ok(state)
    }

    fn dest_changed(svc: &Service<'_>, state: &MhService) -> Result {
        state.rebuild_logged(svc)
    }

    fn show(state: &MhService, out: &mut SeqFile<'_>) {
        // Write errors cannot happen: seq_file notes an overflow itself.
        let _ = state.write_records(out);
    }

    #[inline]
    fn schedule<'a>(
        svc: &Service<'_>,
        state: &'a MhService,
        flow: &Flow,
        guard: &'a rcu::Guard,
    ) -> Option<Dest<'a>> {
        let dest = state.table.get(guard).and_then(|table| {
            let addr = hash_addr(svc.is_ipv6(), flow.addr());
            let usable = |i: u16| {
                table
                    .dests
                    .get(usize::from(i))
                    .is_some_and(|d| d.available())
            };
            let idx = match maglev::lookup(state.size, &table.slots, &addr, flow.port()) {
                Some(i) if usable(i) => Some(i),
                Some(_) if svc.fallback() => {
                    let i = maglev::lookup_fallback(
                        state.size,
                        &table.slots,
                        &addr,
                        flow.port(),
                        usable,
                    );
                    if i.is_some() {
                        state.counters.inc(Counter::Fallback);
                    }
                    i
                }
                _ => None,
            };
            table.dests.get(usize::from(idx?))
        });
        if dest.is_some() {
            state.counters.inc(Counter::Decision);
        } else {
            state.counters.inc(Counter::Refusal);
            svc.no_destination();
        }
        dest
    }
}

/// The loaded module: the scheduler stays registered while it lives.
struct MhModule;

impl kernel::Module for MhModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let (size, order) = module_config().inspect_err(|_| {
            pr_err!(
                "table_size={} is not a valid table size; use one of {}\n",
                module_parameters::table_size.value(),
                SIZES_TEXT
            );
        })?;
        bindings::register().inspect_err(|e| {
            if *e == EEXIST {
                pr_err!(
                    "cannot register the IPVS scheduler 'mh': another 'mh' is already registered (is the in-tree ip_vs_mh loaded? 'rmmod ip_vs_mh')\n"
                );
            } else {
                pr_err!(
                    "cannot register the IPVS scheduler 'mh' (error {})\n",
                    e.to_errno()
                );
            }
        })?;
        let order = if order == Order::List {
            "list"
        } else {
            "sorted"
        };
        pr_info!(
            "IPVS scheduler 'mh' (Maglev hashing, Rust) registered: table_size={}, order={}\n",
            size.slots(),
            order
        );
        Ok(MhModule)
    }
}

impl Drop for MhModule {
    fn drop(&mut self) {
        bindings::unregister();
        pr_info!("IPVS scheduler 'mh' unregistered\n");
    }
}

#[kunit_tests(ip_vs_mh_rs)]
mod tests {
    use super::maglev::{self, Order, TableSize, HASH1, HASH2};
    use kernel::prelude::*;

    /// The core's hsiphash is the kernel's `hsiphash()`, bit for bit.
    #[test]
    fn hsiphash_matches_kernel() {
        let mut v: u32 = 0x1234_5678;
        for i in 0..2000u32 {
            for key in [
                &HASH1,
                &HASH2,
                &[0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908],
            ] {
                assert_eq!(
                    maglev::hsiphash_u32(v, key),
                    super::bindings::kernel_hsiphash_u32(v, key)
                );
            }
            // A cheap generator that also visits 0, small and huge values.
            v = if i % 100 == 0 {
                i
            } else {
                v.wrapping_mul(1_664_525).wrapping_add(1_013_904_223)
            };
        }
    }

    /// Tables built in the kernel equal the pinned known answers, with one
    /// set of scratch arrays reused across sizes, as the workspace is.
    #[test]
    fn known_answers() -> Result {
        let (mut bitmap, mut setup, mut order) = (KVVec::new(), KVVec::new(), KVVec::new());
        for ka in maglev::KNOWN_ANSWERS.iter() {
            let size = TableSize::new(ka.size).ok_or(EINVAL)?;
            let n = ka.len();
            let mut servers = KVVec::with_capacity(n, GFP_KERNEL)?;
            for i in 0..n {
                servers.push(ka.server(i).ok_or(EINVAL)?, GFP_KERNEL)?;
            }
            let (slots, stats) = super::build_table(
                size,
                &servers,
                ka.order,
                &mut bitmap,
                &mut setup,
                &mut order,
            )?;
            assert_eq!(stats, ka.stats);
            assert_eq!(maglev::table_fingerprint(&slots), ka.fingerprint);
            assert_eq!(&slots[..8], &ka.first[..]);
        }
        Ok(())
    }

    /// `table_size` accepts exactly the ten primes.
    #[test]
    fn table_size_validation() {
        for m in maglev::TABLE_SIZES {
            assert!(TableSize::new(m).is_some());
        }
        for m in [0, 1, 250, 252, 4092, 4096, 65536, 131072, u32::MAX] {
            assert!(TableSize::new(m).is_none());
        }
        assert_eq!(TableSize::default().slots(), 4093);
        assert!(Order::default() == Order::Sorted);
    }
}
