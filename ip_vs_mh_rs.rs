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
//! laid out like net/netfilter/ipvs/ip_vs_mh.c. Its only `unsafe` is the
//! promise the scheduler's registration asks for (made at module init, kept
//! by the module's value); all the rest is in `bindings/`.
//!
//! Each service is in one of two modes. The default, sorted, follows the
//! out-of-tree backport and differs from the in-tree C scheduler:
//!
//! - the client's source port is always hashed (TCP, UDP, SCTP); ICMP errors
//!   hash like the flow they are about; `-b mh-port` is accepted and changes
//!   nothing;
//! - a server's current weight counts: weight 0 takes no slots (clean drain);
//! - servers are sorted by address and port before the table is filled, so
//!   the table does not depend on the order they were added in.
//!
//! Upstream mode (`-b flag-3`, a flag the C scheduler ignores, or
//! `upstream=1` for every service) is the C scheduler's table and lookup,
//! bit for bit, for fleets that replace C directors one by one: IPVS list
//! order, the port hashed only with `mh-port`, `last_weight` (a server
//! drained to 0 keeps its slots and is skipped at lookup).
//!
//! In both modes every change builds a new table off to the side and
//! publishes it with RCU; if building fails, the previous table keeps
//! serving and the rebuild is retried; a slot holds a 2-byte server index,
//! not an 8-byte pointer.

use core::net::IpAddr;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use kernel::prelude::*;
use kernel::rbtree::RBTree;
use kernel::seq_file::{seq_print, SeqFile};
use kernel::sync::{new_mutex, Arc, Mutex};

#[path = "maglev/maglev.rs"]
pub mod maglev;

mod bindings;

use bindings::dest::{Dest, DestEntry, DestInfo, DestRefs};
use bindings::packet::Flow;
use bindings::percpu::PerCpuCounters;
use bindings::pernet::{NetState, PerNet, PerNetId};
use bindings::rcu::{RcuBox, RcuPtr, ReadLock, Unpublish, Unpublishing};
use bindings::scheduler::{Ctl, DestChange, Registration, Scheduler};
use bindings::service::{SchedFlags, Service, ServiceLocked, ServiceName};
use maglev::{Addr, Hints, Order, TableSize, Walk, UNMATCHED};

/// The module's declaration, with PARAMS after `table_size`.
macro_rules! declare_module {
    ($($params:tt)*) => {
        module! {
            type: MhModule,
            name: "ip_vs_mh_rs",
            authors: ["The ip_vs_mh_rs developers"],
            description: "IPVS Maglev hashing scheduler (mh), in Rust",
            license: "GPL",
            alias: ["ip_vs_mh"],
            params: {
                table_size: u32 {
                    default: crate::KERNEL_TABLE_SIZE,
                    description: "Lookup table slots per service, one of the primes 251 509 1021 2039 4093 8191 16381 32749 65521 131071 (default: the size of the kernel's own ip_vs_mh, CONFIG_IP_VS_MH_TAB_INDEX)",
                },
                $($params)*
            },
        }
    };
}

// `upstream` and `list_order` are booleans, which the kernel crate's
// `module!` takes since Linux 7.3 (Kbuild detects it); before, C declares
// them (bindings/helpers.c, with the same descriptions).
#[cfg(mh_rs_rust_bool_params)]
declare_module! {
    upstream: bool {
        default: false,
        description: "1: every mh service in upstream mode, exactly as the in-tree C ip_vs_mh; 0 (default): only the services with the scheduler flag flag-3 (ipvsadm -b flag-3)",
    },
    list_order: bool {
        default: false,
        description: "Old name of upstream (list order is part of upstream mode)",
    },
}
#[cfg(not(mh_rs_rust_bool_params))]
declare_module! {}

/// Whether the module was loaded with `upstream=1` (or its old name
/// `list_order=1`).
fn upstream_param() -> bool {
    #[cfg(mh_rs_rust_bool_params)]
    let (upstream, list_order) = (
        param::<bool>(module_parameters::upstream.value()),
        param::<bool>(module_parameters::list_order.value()),
    );
    #[cfg(not(mh_rs_rust_bool_params))]
    let (upstream, list_order) = (bindings::params::upstream(), bindings::params::list_order());
    upstream || list_order
}

/// The table size of the kernel's own C `ip_vs_mh`
/// (`CONFIG_IP_VS_MH_TAB_INDEX`, read when the module is built): the default
/// here too, so that upstream mode makes the C module's tables as it is.
const KERNEL_TABLE_SIZE: u32 = {
    let index = if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "8") {
        8
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "9") {
        9
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "10") {
        10
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "11") {
        11
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "13") {
        13
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "14") {
        14
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "15") {
        15
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "16") {
        16
    } else if cfg!(CONFIG_IP_VS_MH_TAB_INDEX = "17") {
        17
    } else {
        // The C module's own default (also without CONFIG_IP_VS_MH).
        12
    };
    match TableSize::from_index(index) {
        Some(size) => size.slots(),
        None => maglev::DEFAULT_TABLE_SIZE,
    }
};

/// How a service's table is built and looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The default: servers sorted, the port always hashed, current weights.
    Sorted,
    /// The in-tree C scheduler's: IPVS list order, the port hashed only with
    /// `mh-port`, `last_weight`, servers at weight 0 skipped at lookup.
    Upstream,
}

impl Mode {
    /// The mode a service with `flags` wants: upstream with `flag-3` or the
    /// `upstream` parameter.
    fn of(flags: SchedFlags) -> Mode {
        if flags.flag3() || module_upstream() {
            Mode::Upstream
        } else {
            Mode::Sorted
        }
    }

    fn order(self) -> Order {
        match self {
            Mode::Sorted => Order::Sorted,
            Mode::Upstream => Order::List,
        }
    }

    /// The weight of a server the table is built with.
    fn table_weight(self, info: &DestInfo) -> i32 {
        match self {
            Mode::Sorted => info.weight,
            Mode::Upstream => info.last_weight,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Sorted => "sorted",
            Mode::Upstream => "upstream",
        }
    }
}

/// The packet path's counters, by index in [`MhService::counters`].
const DECISIONS: usize = 0;
const FALLBACKS: usize = 1;
const REFUSALS: usize = 2;

/// The first retry of a failed rebuild waits this long; each further
/// failure doubles the wait, up to [`RETRY_MAX_MS`]. The tests' build (test
/// hooks, see Kbuild) waits 10 s, so that the fault-injection suite can watch
/// the previous table serve meanwhile.
const RETRY_FIRST_MS: u32 = if cfg!(mh_rs_test_hooks) { 10_000 } else { 10 };
const RETRY_MAX_MS: u32 = 5000;

/// The tests' build only: a rebuild of a service on this virtual port holds
/// its namespace's rebuild state for [`SLOW_REBUILD_MS`] before it starts,
/// so that tests/reliability/rebuild-isolation.sh can show that a long
/// rebuild holds up no other namespace. (Rebuilds run in process context,
/// from IPVS's configuration calls or the retry work: they may sleep.)
#[cfg(mh_rs_test_hooks)]
const SLOW_REBUILD_PORT: u16 = 65001;
#[cfg(mh_rs_test_hooks)]
const SLOW_REBUILD_MS: i64 = 5000;

/// The serving lookup table of one service.
struct MhTable {
    /// The mode it was built in.
    mode: Mode,
    /// `M` slots, each an index into `dests` or [`maglev::EMPTY`].
    slots: KVVec<u16>,
    /// The servers in the order the table was built from (IPVS list order),
    /// each with what `/proc/net/ip_vs_mh` shows of it.
    ///
    /// INVARIANT: holds a reference on every server a slot can name while
    /// the table is published, so the table never points to a freed
    /// `ip_vs_dest`; the references go back when the table is unpublished
    /// (see `DestRefs::release`).
    dests: DestRefs<ServerRecord>,
}

impl MhTable {
    /// The bytes the table holds: its node, 2 per slot, the server array.
    fn bytes(&self) -> usize {
        RcuBox::<MhTable>::alloc_bytes()
            + self.slots.capacity() * core::mem::size_of::<u16>()
            + self.dests.bytes()
    }
}

impl Unpublish for MhTable {
    fn unpublished<'a>(&'a self, u: &mut Unpublishing<'a>) {
        u.release(&self.dests);
    }
}

/// A real server as the table was built from it.
struct ServerRecord {
    /// Its address, port and weights when the table was built.
    info: DestInfo,
    /// The weight the table was built with (per the table's mode).
    weight: i32,
    /// Slots it holds.
    slots: u32,
    /// Its walk over the table, which the next rebuild reuses instead of
    /// hashing the server again.
    walk: Walk,
    /// Its position in the population order, from which the next rebuild
    /// predicts its own.
    rank: u16,
}

/// What the fill made of one server, by input index.
#[derive(Clone, Copy, Default)]
struct BuiltServer {
    claimed: u32,
    walk: Walk,
    rank: u16,
}

/// Per-service state the packet path and `/proc/net/ip_vs_mh` read.
struct MhService {
    /// The service, e.g. `TCP 192.0.2.1:80` (it cannot change).
    name: ServiceName,
    size: TableSize,
    /// The mode of the last rebuild (while there is no table, /proc shows it).
    upstream: AtomicBool,
    /// The serving table; `None` while the service has no real server.
    table: RcuPtr<MhTable>,
    /// Packet-path counters: decisions, fallbacks taken, refusals.
    counters: PerCpuCounters<3>,
    /// Tables published so far.
    rebuilds: AtomicU64,
    /// When the last table was published (seconds since boot).
    last_rebuild: AtomicI64,
    /// Slots that changed owner in the last rebuild.
    last_moved: AtomicU64,
    /// The last rebuild failed: the serving table is older than the
    /// configuration, and a retry is pending.
    stale: AtomicBool,
}

impl Unpublish for Arc<MhService> {
    /// The service stops using the scheduler: its table goes, with its
    /// references on the real servers.
    fn unpublished<'a>(&'a self, u: &mut Unpublishing<'a>) {
        u.retire(&self.table);
    }
}

/// Per-service state of the control path.
struct MhPrivate {
    /// The namespace's services and rebuild workspace.
    net: Arc<NetServices>,
    /// The service's key in `net`'s registry.
    key: u64,
    /// The wait before the next retry of a failed rebuild (0: none failed).
    retry_ms: u32,
}

impl Drop for MhPrivate {
    /// The service leaves the namespace's registry (after this no /proc
    /// reader finds it): it stops using the scheduler, or failed to start.
    fn drop(&mut self) {
        self.net.services.lock().remove(&self.key);
    }
}

/// What limits the real servers of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    /// The table's slots: each server needs one (a larger `table_size`
    /// names more).
    Slots,
    /// A slot's 2-byte server index, one value of which means empty
    /// (tables above 65 535 slots; nothing names more).
    Index,
}

/// The most real servers a table of `size` can name, and what sets it.
fn server_limit(size: TableSize) -> (usize, Limit) {
    let m = size.slots() as usize;
    if m <= maglev::MAX_SERVERS {
        (m, Limit::Slots)
    } else {
        (maglev::MAX_SERVERS, Limit::Index)
    }
}

/// The valid `table_size` values, for messages.
const SIZES_TEXT: &str = "251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071";

// A parameter's value: Linux 7.3 returns it, 7.2 a reference to it.
fn param<T: Copy>(value: impl core::borrow::Borrow<T>) -> T {
    *value.borrow()
}

/// The `table_size` parameter, checked.
fn module_size() -> Result<TableSize> {
    TableSize::new(param::<u32>(module_parameters::table_size.value())).ok_or(EINVAL)
}

/// Whether `upstream=1` (or its old name `list_order=1`), as read when the
/// module was loaded (the parameters cannot change afterwards). The packet
/// path asks on every decision: a parameter's value is read through an
/// out-of-line call, this copy with one load.
static MODULE_UPSTREAM: AtomicBool = AtomicBool::new(false);

fn module_upstream() -> bool {
    MODULE_UPSTREAM.load(Ordering::Relaxed)
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

/// A server's address as the service hashes it: C hashes the 16-byte union
/// holding the server's address the way of the service's family, so a
/// tunnel server of the other family (an IPv4 service with an IPv6 server)
/// hashes the first four bytes, or the IPv4 address and twelve zero bytes.
fn server_addr(service_ipv6: bool, addr: IpAddr) -> Addr {
    let bytes = match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    };
    hash_addr(service_ipv6, bytes)
}

/// A server's own address, which sorted mode orders servers by.
fn own_addr(addr: IpAddr) -> Addr {
    match addr {
        IpAddr::V4(a) => Addr::V4(a.octets()),
        IpAddr::V6(a) => Addr::V6(a.octets()),
    }
}

/// Memory a rebuild works in, kept from one rebuild to the next in each
/// namespace: the servers as the core takes them, their identities, the
/// core's scratch arrays. IPVS makes a namespace's changes one at a time,
/// under its configuration mutex, so one workspace serves the namespace;
/// its lock is never contended. It grows to the largest service built in
/// the namespace and goes with the namespace.
///
/// Without it a rebuild made ten allocations; now it makes three (the
/// table, its server array, their node), which matters where allocations
/// are slow (KASAN, kmemleak).
struct Workspace {
    servers: KVVec<maglev::Server>,
    /// The servers' own addresses (family first), which sorted mode orders
    /// them by: a tunnel server's hashed address can equal another's.
    keys: KVVec<Addr>,
    /// The servers' identities and table weights, in list order.
    idents: KVVec<(usize, i32)>,
    setup: KVVec<maglev::DestSetup>,
    order: KVVec<maglev::SortKey>,
    /// What the fill made of each server of the new table, for its records.
    built: KVVec<BuiltServer>,
    /// Hints from the serving table: the walks of the servers it has too,
    /// by new index, ...
    walks: KVVec<Walk>,
    /// ... its population order in new indices, the new servers after ...
    hint: KVVec<u16>,
    /// ... each of its servers' new index ...
    remap: KVVec<u16>,
    /// ... and each new server's index in it (both [`UNMATCHED`] for a
    /// server the other table lacks).
    back: KVVec<u16>,
}

impl Workspace {
    /// An empty workspace: no memory until the first rebuild.
    const fn new() -> Self {
        Workspace {
            servers: KVVec::new(),
            keys: KVVec::new(),
            idents: KVVec::new(),
            setup: KVVec::new(),
            order: KVVec::new(),
            built: KVVec::new(),
            walks: KVVec::new(),
            hint: KVVec::new(),
            remap: KVVec::new(),
            back: KVVec::new(),
        }
    }
}

/// The services of one network namespace, and its rebuild workspace.
#[pin_data]
struct NetServices {
    /// The namespace's `mh` services, in the order they were created, for
    /// `/proc/net/ip_vs_mh`.
    #[pin]
    services: Mutex<RBTree<u64, Arc<MhService>>>,
    #[pin]
    workspace: Mutex<Workspace>,
    /// The key of the next service in `services`.
    next_key: AtomicU64,
}

/// The `net_generic` slot of [`NetServices`].
static NET_SERVICES: PerNetId = PerNetId::new();

impl NetState for NetServices {
    fn id() -> &'static PerNetId {
        &NET_SERVICES
    }
    const PROC_NAME: &'static CStr = c"ip_vs_mh";

    fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            pin_init!(NetServices {
                services <- new_mutex!(RBTree::new()),
                workspace <- new_mutex!(Workspace::new()),
                next_key: AtomicU64::new(0),
            }),
            GFP_KERNEL,
        )
    }

    /// `/proc/net/ip_vs_mh`: the format's version, what its columns are, and
    /// then each service's records (README.md documents them).
    fn show(&self, out: &SeqFile) {
        seq_print!(out, "# ip_vs_mh_rs 3\n");
        seq_print!(
            out,
            "# S proto address size mode rebuilds last_rebuild moved decisions fallbacks refusals bytes stale\n"
        );
        seq_print!(
            out,
            "# D address weight table_weight slots slot_share weight_share\n"
        );
        let services = self.services.lock();
        for service in services.values() {
            service.write_records(out);
        }
    }
}

impl NetServices {
    /// The bytes the registry takes per service (its node).
    fn entry_bytes() -> usize {
        // A red-black tree node: the links and the key/value pair.
        3 * core::mem::size_of::<usize>() + core::mem::size_of::<(u64, Arc<MhService>)>()
    }
}

/// Builds the table of `servers` (the core allocates nothing: its scratch
/// arrays come from the workspace).
fn build_table(
    size: TableSize,
    servers: &[maglev::Server],
    keys: Option<&[Addr]>,
    hints: Hints<'_>,
    order: Order,
    setup: &mut KVVec<maglev::DestSetup>,
    scratch_order: &mut KVVec<maglev::SortKey>,
) -> Result<(KVVec<u16>, maglev::BuildStats)> {
    let n = servers.len();
    // Shrinking keeps the capacity; only growth allocates.
    setup.resize(n, maglev::DestSetup::default(), GFP_KERNEL)?;
    scratch_order.resize(n, maglev::SortKey::default(), GFP_KERNEL)?;
    let mut slots = KVVec::from_elem(maglev::EMPTY, size.slots() as usize, GFP_KERNEL)?;
    let stats = maglev::build_table_hinted(
        size,
        servers,
        keys,
        hints,
        order,
        &mut slots,
        maglev::Scratch {
            setup,
            order: scratch_order,
        },
    )
    .map_err(|_| EINVAL)?;
    Ok((slots, stats))
}

/// Why a rebuild did not publish a table.
enum RebuildError {
    /// More real servers than a table can name: nothing to retry until the
    /// configuration changes.
    TooMany { servers: usize },
    /// Out of memory, or the like: retried later.
    Failed(Error),
}

impl From<Error> for RebuildError {
    fn from(e: Error) -> Self {
        RebuildError::Failed(e)
    }
}

impl From<kernel::alloc::AllocError> for RebuildError {
    fn from(e: kernel::alloc::AllocError) -> Self {
        RebuildError::Failed(e.into())
    }
}

/// What a successful rebuild did.
enum Rebuilt {
    /// A new table is serving.
    Published,
    /// The serving table was already built from the current servers and
    /// weights.
    Unchanged,
}

impl MhService {
    /// Builds a table for the service's current servers and publishes it.
    /// On error nothing changes: the previous table keeps serving.
    fn rebuild(&self, svc: &ServiceLocked<'_>, net: &NetServices) -> Result<Rebuilt, RebuildError> {
        let mut work = net.workspace.lock();
        #[cfg(mh_rs_test_hooks)]
        if self.name.port() == SLOW_REBUILD_PORT {
            kernel::time::delay::fsleep(kernel::time::Delta::from_millis(SLOW_REBUILD_MS));
        }
        self.rebuild_in(svc, &mut work)
    }

    fn rebuild_in(
        &self,
        svc: &ServiceLocked<'_>,
        work: &mut Workspace,
    ) -> Result<Rebuilt, RebuildError> {
        let Workspace {
            servers,
            keys,
            idents,
            setup,
            order,
            built,
            walks,
            hint,
            remap,
            back,
        } = work;
        let n = svc.num_dests();
        let m = self.size.slots() as usize;
        let (limit, _) = server_limit(self.size);
        if n > limit {
            return Err(RebuildError::TooMany { servers: n });
        }

        let ipv6 = svc.is_ipv6();
        let mode = Mode::of(svc.flags());
        self.upstream
            .store(mode == Mode::Upstream, Ordering::Relaxed);
        servers.clear();
        keys.clear();
        idents.clear();
        servers.reserve(n, GFP_KERNEL)?;
        keys.reserve(n, GFP_KERNEL)?;
        idents.reserve(n, GFP_KERNEL)?;
        for entry in svc.dests() {
            let info = entry.info();
            let weight = mode.table_weight(&info);
            servers.push(
                maglev::Server {
                    addr: server_addr(ipv6, info.addr),
                    port: info.port,
                    weight,
                },
                GFP_KERNEL,
            )?;
            keys.push(own_addr(info.addr), GFP_KERNEL)?;
            idents.push((entry.identity(), weight), GFP_KERNEL)?;
        }
        if self.serves(mode, idents) {
            return Ok(Rebuilt::Unchanged);
        }

        // The table's node first: it is the one allocation here without a
        // vmalloc fallback, so when memory is short the rebuild fails
        // before the fill's work.
        let mut new = if n == 0 {
            None
        } else {
            Some(RcuBox::new(
                MhTable {
                    mode,
                    slots: KVVec::new(),
                    dests: DestRefs::with_capacity(0)?,
                },
                GFP_KERNEL,
            )?)
        };
        // What the serving table knows: the walks of the servers it shares
        // with the new one, its population order, which of its servers are
        // which. Sized here, outside the read section, where allocating is
        // allowed; only a rebuild, under the mutex the caller holds,
        // replaces the table, so its server count cannot change meanwhile.
        let old_n = ReadLock::with(|lock| self.table.get(lock).map_or(0, |t| t.dests.len()));
        walks.resize(n, Walk::default(), GFP_KERNEL)?;
        hint.resize(n.max(old_n), 0, GFP_KERNEL)?;
        remap.resize(old_n, UNMATCHED, GFP_KERNEL)?;
        back.resize(n, UNMATCHED, GFP_KERNEL)?;
        let (exact, hint_len) = ReadLock::with(|lock| {
            carry_over(self.table.get(lock), idents, walks, hint, remap, back)
        });
        // Shrinking keeps the capacity (KVVec::truncate is not in 7.2).
        hint.resize(hint_len, 0, GFP_KERNEL)?;
        let hints = Hints { walks, order: hint };
        let (slots, stats) = build_table(
            self.size,
            servers,
            Some(keys),
            hints,
            mode.order(),
            setup,
            order,
        )?;
        if let Some(table) = new.as_deref_mut() {
            built.resize(n, BuiltServer::default(), GFP_KERNEL)?;
            // The setup is in population order: k is the server's rank.
            for (k, ds) in (0..n).zip(setup.iter()) {
                if let Some(b) = built.get_mut(usize::from(ds.index())) {
                    *b = BuiltServer {
                        claimed: ds.claimed(),
                        walk: ds.walk(),
                        // k < n <= maglev::MAX_SERVERS.
                        rank: u16::try_from(k).unwrap_or(UNMATCHED),
                    };
                }
            }
            let mut dests = DestRefs::with_capacity(n)?;
            for (entry, b) in svc.dests().zip(built.iter()) {
                let info = entry.info();
                dests.push(
                    &entry,
                    ServerRecord {
                        weight: mode.table_weight(&info),
                        info,
                        slots: b.claimed,
                        walk: b.walk,
                        rank: b.rank,
                    },
                )?;
            }
            table.slots = slots;
            table.dests = dests;
        }

        let moved = ReadLock::with(|lock| match (self.table.get(lock), new.as_deref()) {
            (Some(old), Some(new)) if exact => {
                usize::try_from(maglev::changed_slots(&old.slots, &new.slots, remap)).unwrap_or(m)
            }
            (old, new) => moved_slots(old, new, m),
        });
        if let Some(old) = self.table.replace(new) {
            old.retire();
        }
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
        Ok(Rebuilt::Published)
    }

    /// Whether the serving table was built in `mode` from exactly these
    /// servers (by identity, in this order) with these weights.
    fn serves(&self, mode: Mode, idents: &[(usize, i32)]) -> bool {
        ReadLock::with(|lock| match self.table.get(lock) {
            None => idents.is_empty(),
            Some(table) => {
                table.mode == mode
                    && table.dests.len() == idents.len()
                    && table.dests.iter().zip(idents.iter()).all(
                        |((dest, record), &(id, weight))| {
                            dest.identity() == id && record.weight == weight
                        },
                    )
            }
        })
    }

    /// Rebuilds, and on failure keeps the previous table serving, says so
    /// once and asks for a retry.
    fn rebuild_logged(&self, ctl: &Ctl<'_, MhScheduler>, private: &mut MhPrivate) {
        let svc = ctl.service();
        match self.rebuild(svc, &private.net) {
            Ok(how) => {
                if self.stale.swap(false, Ordering::Relaxed) {
                    match how {
                        Rebuilt::Published => pr_info!("{}: table rebuilt again\n", svc.name()),
                        Rebuilt::Unchanged => pr_info!(
                            "{}: the serving table matches the configuration again\n",
                            svc.name()
                        ),
                    }
                }
                if private.retry_ms != 0 {
                    // A change rebuilt the table before the retry did.
                    ctl.retry_not_needed();
                    private.retry_ms = 0;
                }
            }
            Err(e) => {
                let first = !self.stale.swap(true, Ordering::Relaxed);
                match e {
                    RebuildError::TooMany { servers } => {
                        if first {
                            self.log_too_many(svc, servers, "; the previous table keeps serving");
                        }
                    }
                    RebuildError::Failed(e) => {
                        if first {
                            pr_err!(
                                "{}: cannot rebuild the lookup table (error {}); the previous table keeps serving, retrying\n",
                                svc.name(),
                                e.to_errno()
                            );
                        }
                        private.retry_ms = next_retry(private.retry_ms);
                        ctl.retry_in(private.retry_ms);
                    }
                }
            }
        }
    }

    /// Says why no table can be built for `servers` real servers: the table
    /// is too small (a larger `table_size` helps), or the service has more
    /// than a slot's 2-byte index can name (nothing helps). `then` ends the
    /// message.
    fn log_too_many(&self, svc: &ServiceLocked<'_>, servers: usize, then: &str) {
        let slots = self.size.slots();
        let (limit, why) = server_limit(self.size);
        if why == Limit::Index {
            pr_err!(
                "{}: {} real servers, but a service can have {} at most (a slot holds a 2-byte server index){}\n",
                svc.name(),
                servers,
                limit,
                then
            );
        } else {
            pr_err!(
                "{}: {} real servers, but a table of {} slots can name {} at most (a larger table_size names more){}\n",
                svc.name(),
                servers,
                slots,
                limit,
                then
            );
        }
    }

    /// The mode of the last rebuild.
    fn mode_now(&self) -> Mode {
        if self.upstream.load(Ordering::Relaxed) {
            Mode::Upstream
        } else {
            Mode::Sorted
        }
    }

    /// The service's `/proc/net/ip_vs_mh` records: one `S` line, then a `D`
    /// line per real server of the serving table, with its current weight
    /// and the weight the table was built with.
    fn write_records(&self, out: &SeqFile) {
        let [decisions, fallbacks, refusals] = self.counters.sum();
        ReadLock::with(|lock| {
            let table = self.table.get(lock);
            // What the module allocated for the service, allocator rounding
            // aside: the state, its counters and registry entry, the table.
            let bytes = core::mem::size_of::<MhService>()
                + self.counters.bytes()
                + NetServices::entry_bytes()
                + table.map_or(0, MhTable::bytes);
            seq_print!(
                out,
                "S {} {} {} {} {} {} {} {} {} {} {}\n",
                self.name,
                self.size.slots(),
                // A service without servers has no table: the mode it would
                // be built in.
                table.map_or(self.mode_now(), |t| t.mode).name(),
                self.rebuilds.load(Ordering::Relaxed),
                self.last_rebuild.load(Ordering::Relaxed),
                self.last_moved.load(Ordering::Relaxed),
                decisions,
                fallbacks,
                refusals,
                bytes,
                u8::from(self.stale.load(Ordering::Relaxed))
            );
            let Some(table) = table else {
                return;
            };
            let total_weight: u64 = table
                .dests
                .iter()
                .map(|(_, r)| u64::try_from(r.weight).unwrap_or(0))
                .sum();
            for (dest, r) in table.dests.iter() {
                let weight = u64::try_from(r.weight).unwrap_or(0);
                seq_print!(
                    out,
                    "D {} {} {} {} {} {}\n",
                    HostPort(r.info.addr, r.info.port),
                    dest.weight(),
                    r.weight,
                    r.slots,
                    Percent(u64::from(r.slots), u64::from(self.size.slots())),
                    Percent(weight, total_weight)
                );
            }
        });
    }
}

/// The wait before the next retry, after one of `previous` ms failed.
fn next_retry(previous: u32) -> u32 {
    if previous == 0 {
        RETRY_FIRST_MS
    } else {
        previous.saturating_mul(2).min(RETRY_MAX_MS)
    }
}

/// `192.0.2.1:80` or `[2001:db8::1]:80`.
struct HostPort(IpAddr, u16);

impl kernel::fmt::Display for HostPort {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{}:{}", a, self.1),
            IpAddr::V6(a) => write!(f, "[{}]:{}", a, self.1),
        }
    }
}

/// `part / whole` as a percentage with two decimals, without floating point.
struct Percent(u64, u64);

impl kernel::fmt::Display for Percent {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let hundredths = self
            .0
            .saturating_mul(10_000)
            .checked_div(self.1)
            .unwrap_or(0);
        write!(f, "{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

/// Carries over from the serving table `old` what the next build can reuse
/// for the servers `idents` (identity and weight, in IPVS list order):
/// [`maglev::match_servers`] matches both tables' servers in `remap` (old
/// to new) and `back` (new to old); `walks[j]` becomes the walk of new
/// server `j` if `old` has it ([`Walk::default()`] otherwise), and `hint`
/// the population order of `old` in new indices, followed by the new
/// servers. Allocates nothing: it runs in an RCU read section, with
/// `walks` and `back` sized to the new servers, `remap` to `old`'s and
/// `hint` to the larger of both counts (anything else gives no hints).
///
/// Returns whether the match is exact (every server both tables have was
/// found) and the length of `hint`.
fn carry_over(
    old: Option<&MhTable>,
    idents: &[(usize, i32)],
    walks: &mut [Walk],
    hint: &mut [u16],
    remap: &mut [u16],
    back: &mut [u16],
) -> (bool, usize) {
    walks.fill(Walk::default());
    let Some(old) = old else {
        return (false, 0);
    };
    let old_n = old.dests.len();
    let n = idents.len();
    if remap.len() != old_n || walks.len() != n || back.len() != n || hint.len() < old_n.max(n) {
        return (false, 0);
    }
    let exact = maglev::match_servers(
        |i| old.dests.get(i).map(|(d, _)| d.identity()),
        |j| idents.get(j).map(|&(id, _)| id),
        remap,
        back,
    );
    for (w, &o) in walks.iter_mut().zip(back.iter()) {
        if let Some((_, rec)) = old.dests.get(usize::from(o)) {
            *w = rec.walk;
        }
    }

    // The old population order in new indices, the servers that went left
    // out, then the new servers (which the build's sort puts in place).
    for ((_, rec), &r) in old.dests.iter().zip(remap.iter()) {
        if let Some(h) = hint.get_mut(usize::from(rec.rank)) {
            *h = r;
        }
    }
    let mut len: usize = 0;
    for r in 0..old_n {
        if let Some(&v) = hint.get(r) {
            if v != UNMATCHED {
                if let Some(h) = hint.get_mut(len) {
                    *h = v;
                }
                len = len.wrapping_add(1);
            }
        }
    }
    for (j, &o) in (0..n).zip(back.iter()) {
        if o == UNMATCHED {
            if let (Some(h), Ok(jj)) = (hint.get_mut(len), u16::try_from(j)) {
                *h = jj;
            }
            len = len.wrapping_add(1);
        }
    }
    (exact, len.min(hint.len()))
}

/// How many slots name a different server in `new` than in `old`.
fn moved_slots(old: Option<&MhTable>, new: Option<&MhTable>, m: usize) -> usize {
    let owner = |t: Option<&MhTable>, i: usize| -> Option<usize> {
        let t = t?;
        let idx = *t.slots.get(i)?;
        t.dests.get(usize::from(idx)).map(|(d, _)| d.identity())
    };
    (0..m).filter(|&i| owner(old, i) != owner(new, i)).count()
}

/// The scheduler.
struct MhScheduler;

impl Scheduler for MhScheduler {
    // A test-only build (Kbuild's MH_RS_ALT_NAME) takes another name, to
    // run beside the in-tree C "mh" in one kernel.
    #[cfg(not(mh_rs_alt_name))]
    const NAME: &'static CStr = c"mh";
    #[cfg(mh_rs_alt_name)]
    const NAME: &'static CStr = c"mhrs";
    type Shared = Arc<MhService>;
    type Private = MhPrivate;

    fn init_service(svc: &ServiceLocked<'_>) -> Result<(Arc<MhService>, MhPrivate)> {
        let setup = || -> Result<(Arc<MhService>, MhPrivate)> {
            let size = module_size()?;
            let net = svc
                .net()
                .and_then(PerNet::<NetServices>::get)
                .ok_or(EINVAL)?;
            let service = Arc::new(
                MhService {
                    name: svc.name(),
                    size,
                    upstream: AtomicBool::new(Mode::of(svc.flags()) == Mode::Upstream),
                    table: RcuPtr::new(),
                    counters: PerCpuCounters::new()?,
                    rebuilds: AtomicU64::new(0),
                    last_rebuild: AtomicI64::new(0),
                    last_moved: AtomicU64::new(0),
                    stale: AtomicBool::new(false),
                },
                GFP_KERNEL,
            )?;
            let key = net.next_key.fetch_add(1, Ordering::Relaxed);
            net.services
                .lock()
                .try_create_and_insert(key, service.clone(), GFP_KERNEL)?;
            Ok((
                service,
                MhPrivate {
                    net,
                    key,
                    retry_ms: 0,
                },
            ))
        };
        let (service, private) = setup().inspect_err(|e| {
            pr_err!(
                "{}: cannot set up the service (error {})\n",
                svc.name(),
                e.to_errno()
            );
        })?;
        // The first table: a failure fails the service's creation, as the C
        // module's does (dropping `private` unlists the service).
        if let Err(e) = service.rebuild(svc, &private.net) {
            let e = match e {
                RebuildError::TooMany { servers } => {
                    service.log_too_many(svc, servers, "");
                    EINVAL
                }
                RebuildError::Failed(e) => {
                    pr_err!(
                        "{}: cannot build the lookup table (error {})\n",
                        svc.name(),
                        e.to_errno()
                    );
                    e
                }
            };
            return Err(e);
        }
        Ok((service, private))
    }

    fn dest_changed(
        ctl: &Ctl<'_, Self>,
        private: &mut MhPrivate,
        _dest: DestEntry<'_>,
        _change: DestChange,
    ) -> Result {
        ctl.shared().rebuild_logged(ctl, private);
        Ok(())
    }

    fn retry(ctl: &Ctl<'_, Self>, private: &mut MhPrivate) {
        ctl.shared().rebuild_logged(ctl, private);
    }

    fn done_service(_ctl: &Ctl<'_, Self>, private: MhPrivate) {
        drop(private);
    }

    #[inline]
    fn schedule<'a>(
        svc: &Service<'a>,
        state: &'a Arc<MhService>,
        flow: &Flow,
        lock: &'a ReadLock<'_>,
    ) -> Option<Dest<'a>> {
        let flags = svc.flags();
        let dest = state.table.get(lock).and_then(|table| {
            if Mode::of(flags) != table.mode && !state.stale.load(Ordering::Relaxed) {
                // `ipvsadm -E` switched the service's mode (flag-3) without
                // telling the scheduler: rebuild soon; this table serves
                // until then. (After a failed rebuild its own retry, or
                // the next change, rebuilds: not every packet.)
                svc.retry_soon();
            }
            let addr = hash_addr(svc.is_ipv6(), flow.addr());
            let port = match table.mode {
                Mode::Sorted => flow.port(),
                Mode::Upstream if flags.flag2() => flow.port(),
                Mode::Upstream => 0,
            };
            // Sorted: a server drained to weight 0 keeps serving the slots
            // of the table built before IPVS told us; a change takes effect
            // when its table is published, so a drain refuses nobody.
            // Upstream: as the C module, a server at weight 0 keeps its
            // slots and is skipped.
            let usable = |i: u16| {
                table.dests.get(usize::from(i)).is_some_and(|(d, _)| {
                    d.in_service() && (table.mode == Mode::Sorted || d.weight() > 0)
                })
            };
            let idx = match maglev::lookup(state.size, &table.slots, &addr, port) {
                Some(i) if usable(i) => Some(i),
                Some(_) if flags.flag1() => {
                    let i = maglev::lookup_fallback(state.size, &table.slots, &addr, port, usable);
                    if i.is_some() {
                        state.counters.inc(FALLBACKS);
                    }
                    i
                }
                _ => None,
            };
            table.dests.get(usize::from(idx?)).map(|(d, _)| d)
        });
        if dest.is_some() {
            state.counters.inc(DECISIONS);
        } else {
            state.counters.inc(REFUSALS);
            svc.no_destination();
        }
        dest
    }
}

/// The loaded module: the scheduler stays registered while it lives.
struct MhModule {
    /// Dropped first: no service can use the scheduler afterwards.
    _scheduler: Registration<MhScheduler>,
    _net: PerNet<NetServices>,
}

impl kernel::Module for MhModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        // Before the scheduler is registered: no callback runs before this.
        MODULE_UPSTREAM.store(upstream_param(), Ordering::Relaxed);
        let size = module_size().inspect_err(|_| {
            pr_err!(
                "table_size={} is not a valid table size; use one of {}\n",
                param::<u32>(module_parameters::table_size.value()),
                SIZES_TEXT
            );
        })?;
        let net = PerNet::<NetServices>::register().inspect_err(|e| {
            pr_err!(
                "cannot set up /proc/net/ip_vs_mh (error {})\n",
                e.to_errno()
            );
        })?;
        // SAFETY: The last step of the init that can fail; the registration
        // is kept in the module's value, whose first field it is: dropped at
        // exit, before the namespace state the callbacks use.
        let scheduler = unsafe { Registration::<MhScheduler>::register(module) }.inspect_err(|e| {
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
        pr_info!(
            "IPVS scheduler 'mh' (Maglev hashing, Rust) registered: table_size={}, mode={} ({})\n",
            size.slots(),
            if module_upstream() {
                "upstream"
            } else {
                "sorted"
            },
            if module_upstream() {
                "every service"
            } else {
                "upstream for services with flag-3"
            }
        );
        Ok(MhModule {
            _scheduler: scheduler,
            _net: net,
        })
    }
}

impl Drop for MhModule {
    fn drop(&mut self) {
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
        let (mut setup, mut order) = (KVVec::new(), KVVec::new());
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
                None,
                maglev::Hints::default(),
                ka.order,
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

    /// A pointer dropped while it still publishes a value (its owner was
    /// never shared, or is past its grace period: nothing can reach either)
    /// frees that value at once, and what that value publishes in turn: no
    /// RCU callback is queued from the drop, which may itself run in an RCU
    /// callback, after the module's last barrier.
    #[test]
    fn unreachable_nested_values_free_at_once() -> Result {
        use super::{RcuBox, RcuPtr, Unpublish, Unpublishing};
        use core::sync::atomic::{AtomicUsize, Ordering};

        static INNER_DROPS: AtomicUsize = AtomicUsize::new(0);
        struct Inner;
        impl Drop for Inner {
            fn drop(&mut self) {
                INNER_DROPS.fetch_add(1, Ordering::Relaxed);
            }
        }
        impl Unpublish for Inner {
            fn unpublished<'a>(&'a self, _u: &mut Unpublishing<'a>) {}
        }
        struct Outer {
            inner: RcuPtr<Inner>,
        }
        impl Unpublish for Outer {
            fn unpublished<'a>(&'a self, u: &mut Unpublishing<'a>) {
                u.retire(&self.inner);
            }
        }

        let outer = RcuPtr::new();
        let value = RcuBox::new(
            Outer {
                inner: RcuPtr::new(),
            },
            GFP_KERNEL,
        )?;
        assert!(value
            .inner
            .replace(Some(RcuBox::new(Inner, GFP_KERNEL)?))
            .is_none());
        assert!(outer.replace(Some(value)).is_none());
        let before = INNER_DROPS.load(Ordering::Relaxed);
        drop(outer);
        assert_eq!(INNER_DROPS.load(Ordering::Relaxed), before + 1);
        Ok(())
    }

    /// The server limit: the slots up to 65 521, the 2-byte index above
    /// (65 534 servers at 131 071 slots, which the kernel log says is a hard
    /// limit rather than a table size to raise).
    #[test]
    fn server_limits() -> Result {
        use super::{server_limit, Limit};
        for (m, limit, why) in [
            (251, 251, Limit::Slots),
            (4093, 4093, Limit::Slots),
            (65521, 65521, Limit::Slots),
            (131071, 65534, Limit::Index),
        ] {
            assert_eq!(server_limit(TableSize::new(m).ok_or(EINVAL)?), (limit, why));
        }
        assert_eq!(maglev::MAX_SERVERS, 65534);
        Ok(())
    }
}
