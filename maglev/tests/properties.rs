// SPDX-License-Identifier: GPL-2.0

//! Property tests of the table build. The bounds asserted here are the ones
//! stated in docs/maglev.md.

mod common;

use std::collections::{HashMap, HashSet};

use maglev::{Addr, Order, Server, TableSize, EMPTY, TABLE_SIZES};
use proptest::prelude::*;

fn any_addr() -> impl Strategy<Value = Addr> {
    prop_oneof![
        3 => any::<[u8; 4]>().prop_map(Addr::V4),
        1 => any::<[u8; 16]>().prop_map(Addr::V6),
    ]
}

fn any_weight() -> impl Strategy<Value = i32> {
    prop_oneof![
        4 => 1..=10i32,
        2 => 0..=1i32,
        1 => 1..=100_000i32,
        1 => Just(i32::MAX),
        1 => -3..=0i32,
    ]
}

/// Table sizes up to 65521 (131071 is covered by the known answers; it is
/// slow in unoptimised test builds).
fn any_size() -> impl Strategy<Value = TableSize> {
    (0..9usize).prop_map(|i| TableSize::new(TABLE_SIZES[i]).expect("size"))
}

/// Up to 64 servers with distinct (address, port).
fn servers(max: usize) -> impl Strategy<Value = Vec<Server>> {
    prop::collection::vec((any_addr(), any::<u16>(), any_weight()), 1..=max).prop_map(|v| {
        let mut seen = HashSet::new();
        v.into_iter()
            .filter(|(a, p, _)| seen.insert((*a, *p)))
            .map(|(addr, port, weight)| Server { addr, port, weight })
            .collect()
    })
}

fn any_order() -> impl Strategy<Value = Order> {
    prop_oneof![Just(Order::List), Just(Order::Sorted)]
}

/// Turns per server, computed from the public formula helpers.
fn turns(size: TableSize, servers: &[Server]) -> Vec<u32> {
    let g = maglev::weight_gcd(servers);
    let s = maglev::weight_rshift(size, servers, g);
    servers
        .iter()
        .map(|x| maglev::turns_for(x.weight, g, s))
        .collect()
}

/// The table with each entry replaced by the server's identity.
fn by_identity(table: &[u16], servers: &[Server]) -> Vec<Option<(Addr, u16)>> {
    table
        .iter()
        .map(|&v| servers.get(usize::from(v)).map(|s| (s.addr, s.port)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every slot holds a server as soon as one weight is positive, and
    /// every entry is a valid index.
    #[test]
    fn every_slot_filled(size in any_size(), servers in servers(64), order in any_order()) {
        let (table, stats) = common::build(size, &servers, order).expect("build");
        let any_positive = servers.iter().any(|s| s.weight > 0);
        if any_positive {
            prop_assert_eq!(stats.filled, size.slots());
            prop_assert!(table.iter().all(|&v| usize::from(v) < servers.len()));
            prop_assert!(table.iter().all(|&v| servers[usize::from(v)].weight > 0));
        } else {
            prop_assert_eq!(stats.filled, 0);
            prop_assert!(table.iter().all(|&v| v == EMPTY));
        }
    }

    /// A server gets a slot exactly when it has turns and the servers
    /// before it in population order have fewer than M turns in all; so
    /// when the turns add up to at most M (always the case for <= 64
    /// servers and M >= 4093, where a server has at most 63 turns), every
    /// positive-weight server gets at least one slot.
    #[test]
    fn positive_weight_servers_get_slots(size in any_size(), servers in servers(64), order in any_order()) {
        let (table, stats, _, perm) = common::build_with_setup(size, &servers, order);
        let counts = common::slot_counts(&table, servers.len());
        let t = turns(size, &servers);
        let pop: Vec<usize> = match order {
            Order::List => (0..servers.len()).collect(),
            Order::Sorted => perm.iter().map(|&i| usize::from(i)).collect(),
        };
        let mut before: u64 = 0;
        let mut with_slots = 0;
        for &i in &pop {
            let expect = t[i] > 0 && before < u64::from(size.slots());
            prop_assert_eq!(counts[i] > 0, expect, "server {} turns {} before {}", i, t[i], before);
            with_slots += u32::from(expect);
            before += u64::from(t[i]);
        }
        prop_assert_eq!(stats.servers, with_slots);
        let total: u64 = t.iter().map(|&x| u64::from(x)).sum();
        if total <= u64::from(size.slots()) {
            for (i, s) in servers.iter().enumerate() {
                prop_assert_eq!(counts[i] > 0, s.weight > 0);
            }
        }
        if size.slots() >= 4093 {
            prop_assert!(t.iter().all(|&x| x < 1 << size.tab_bits()));
            prop_assert!(total <= u64::from(size.slots()));
        }
    }

    /// Shares follow the turns: with T the sum of turns and R = M / T
    /// (rounded down), a server with t turns owns between R*t and (R+1)*t
    /// slots, i.e. |slots - M*t/T| <= t. When no shift applies, t is
    /// weight / gcd, so this is a bound on the weight share.
    #[test]
    fn shares_follow_weights(size in any_size(), servers in servers(64), order in any_order()) {
        let (table, stats) = common::build(size, &servers, order).expect("build");
        let t = turns(size, &servers);
        let total: u64 = t.iter().map(|&x| u64::from(x)).sum();
        prop_assume!(total > 0);
        let m = u64::from(size.slots());
        let r = m / total;
        let counts = common::slot_counts(&table, servers.len());
        for i in 0..servers.len() {
            let (c, ti) = (u64::from(counts[i]), u64::from(t[i]));
            prop_assert!(r * ti <= c && c <= (r + 1) * ti,
                "server {}: {} slots, {} turns, R = {}", i, c, ti, r);
            // Same bound, scaled by T: |c*T - M*t| <= t*T.
            prop_assert!((c * total).abs_diff(m * ti) <= ti * total);
            if stats.rshift == 0 && servers[i].weight > 0 {
                prop_assert_eq!(ti, servers[i].weight as u64 / stats.gcd as u64);
            }
        }
    }

    /// Sorted order: the table (by server identity) is the same for every
    /// permutation of an input with distinct (address, port).
    #[test]
    fn sorted_is_permutation_invariant(
        size in any_size(),
        (servers, shuffled) in servers(40).prop_flat_map(|v| {
            let s = Just(v.clone());
            (s, Just(v).prop_shuffle())
        }),
    ) {
        let (a, _) = common::build(size, &servers, Order::Sorted).expect("build");
        let (b, _) = common::build(size, &shuffled, Order::Sorted).expect("build");
        prop_assert_eq!(by_identity(&a, &servers), by_identity(&b, &shuffled));
        // Input already in order, and in reverse order (the one-pass cases
        // of the sort).
        let mut ordered = servers.clone();
        ordered.sort_by_key(|s| (s.addr, s.port));
        let reversed: Vec<Server> = ordered.iter().rev().copied().collect();
        for input in [&ordered, &reversed] {
            let (c, _) = common::build(size, input, Order::Sorted).expect("build");
            prop_assert_eq!(by_identity(&a, &servers), by_identity(&c, input));
        }
    }

    /// The same input always gives the same table, whatever the scratch
    /// held before.
    #[test]
    fn deterministic(size in any_size(), servers in servers(64), order in any_order()) {
        let (a, sa) = common::build(size, &servers, order).expect("build");
        let mut b = vec![0x5a5a; size.slots() as usize];
        let mut setup = vec![maglev::DestSetup::default(); servers.len()];
        let mut perm = vec![maglev::SortKey::default(); servers.len()];
        // Dirty the scratch with another input's build first.
        let other: Vec<_> = servers.iter().rev().map(|s| maglev::Server { port: s.port ^ 1, ..*s }).collect();
        maglev::build_table(size, &other, maglev::Order::Sorted, &mut b, maglev::Scratch {
            setup: &mut setup, order: &mut perm,
        }).expect("build");
        let sb = maglev::build_table(size, &servers, order, &mut b, maglev::Scratch {
            setup: &mut setup, order: &mut perm,
        }).expect("build");
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(sa, sb);
    }
}

/// Builds with `hints` and returns the table and the setup (population
/// order).
fn build_hinted(
    size: TableSize,
    servers: &[Server],
    hints: maglev::Hints<'_>,
    order: Order,
) -> (Vec<u16>, maglev::BuildStats, Vec<maglev::DestSetup>) {
    let mut table = vec![0x5a5a; size.slots() as usize];
    let mut setup = vec![maglev::DestSetup::default(); servers.len()];
    let mut keys = vec![maglev::SortKey::default(); servers.len()];
    let stats = maglev::build_table_hinted(
        size,
        servers,
        None,
        hints,
        order,
        &mut table,
        maglev::Scratch {
            setup: &mut setup,
            order: &mut keys,
        },
    )
    .expect("build");
    (table, stats, setup)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Hints change nothing: the table and statistics equal those of a
    /// build without hints, whether the walks are the servers' own, not
    /// known or given for some servers only, and whether the order hint is
    /// the population order, that order with one server moved (as after
    /// an add), a shuffle of it or arbitrary indices; and each server's
    /// claimed count is its slot count.
    #[test]
    fn hints_change_nothing(
        size in any_size(),
        servers in servers(64),
        order in any_order(),
        seed in any::<u64>(),
        junk in prop::collection::vec(any::<u16>(), 0..=70),
    ) {
        let (plain, plain_stats, setup) = build_hinted(size, &servers, maglev::Hints::default(), order);
        let n = servers.len();
        let counts = common::slot_counts(&plain, n);
        for ds in &setup {
            prop_assert_eq!(ds.claimed(), counts[usize::from(ds.index())]);
        }
        let own: Vec<maglev::Walk> = servers.iter().map(|s| maglev::Walk::of(size, &s.addr, s.port)).collect();
        let unknown = vec![maglev::Walk::default(); n];
        let population: Vec<u16> = setup.iter().map(|d| d.index()).collect();
        // One server taken out of the population order and put last.
        let mut moved = population.clone();
        let mut rng = common::Rng(seed | 1);
        if n > 1 {
            let x = moved.remove((rng.next() % n as u64) as usize);
            moved.push(x);
        }
        let mut shuffled = population.clone();
        for i in (1..n).rev() {
            shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let walk_hints: [&[maglev::Walk]; 4] = [&own, &unknown, &own[..n / 2], &[]];
        let order_hints: [&[u16]; 5] = [&population, &moved, &shuffled, &junk, &[]];
        for walks in walk_hints {
            for hint in order_hints {
                let (t, st, su) = build_hinted(size, &servers, maglev::Hints { walks, order: hint }, order);
                prop_assert_eq!(&t, &plain);
                prop_assert_eq!(st, plain_stats);
                let got: Vec<u16> = su.iter().map(|d| d.index()).collect();
                prop_assert_eq!(&got, &population);
                for (a, b) in su.iter().zip(&setup) {
                    prop_assert_eq!(a.walk(), b.walk());
                    prop_assert_eq!(a.claimed(), b.claimed());
                }
            }
        }
    }
}

/// Servers for the disruption property: M = 4093, 5..=64 servers, weights
/// 1..=4 with at least two of weight 1 (so removing any one keeps the gcd at
/// 1 and the turns unchanged), and distinct hash inputs (`fold(addr) +
/// port`): two servers with the same input have the same walk over the
/// table, a case the bound below does not cover.
fn disruption_case() -> impl Strategy<Value = (Vec<Server>, usize, Order)> {
    prop::collection::vec((any::<u32>(), any::<u16>(), 1..=4i32), 5..=64)
        .prop_map(|v| {
            let mut seen = HashSet::new();
            let mut out: Vec<Server> = v
                .into_iter()
                .filter(|(a, p, _)| seen.insert(a.wrapping_add(u32::from(*p))))
                .map(|(a, port, weight)| Server {
                    addr: Addr::V4(a.to_be_bytes()),
                    port,
                    weight,
                })
                .collect();
            if out.len() >= 2 {
                out[0].weight = 1;
                out[1].weight = 1;
            }
            out
        })
        .prop_filter("at least 5 servers", |v| v.len() >= 5)
        .prop_flat_map(|v| {
            let n = v.len();
            (Just(v), 0..n, any_order())
        })
}

/// Bound on the share of the remaining servers' slots that change owner
/// when one server is removed (domain: see `disruption_case`). Measured
/// over 50,000 random cases of that domain: mean 2.6 %, worst 12.3 %.
const MAX_DISRUPTION_PERCENT: u64 = 25;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Removing one of N servers moves all of its slots, and at most
    /// MAX_DISRUPTION_PERCENT of the slots the other servers held.
    #[test]
    fn removal_moves_few_other_slots((servers, r, order) in disruption_case()) {
        let size = TableSize::new(4093).expect("size");
        let (before, _) = common::build(size, &servers, order).expect("build");
        let mut rest = servers.clone();
        let gone = rest.remove(r);
        let (after, _) = common::build(size, &rest, order).expect("build");
        let before = by_identity(&before, &servers);
        let after = by_identity(&after, &rest);
        let gone = Some((gone.addr, gone.port));
        let mut others = 0u64;
        let mut moved = 0u64;
        for (b, a) in before.iter().zip(&after) {
            prop_assert_ne!(*a, gone);
            if *b == gone {
                continue;
            }
            others += 1;
            moved += u64::from(a != b);
        }
        prop_assert!(moved * 100 <= others * MAX_DISRUPTION_PERCENT,
            "{} of {} other slots moved", moved, others);
    }
}

/// The mean disruption over a fixed set of cases of the same domain stays
/// small (deterministic: a fixed generator).
#[test]
fn mean_removal_disruption_is_small() {
    let size = TableSize::new(4093).expect("size");
    let mut rng = common::Rng(0xd15_c0de);
    let mut sum_permille = 0u64;
    let cases = 60;
    for _ in 0..cases {
        let n = 5 + rng.below(60) as usize;
        let mut keys = HashSet::new();
        let mut servers = Vec::new();
        while servers.len() < n {
            let a = rng.next() as u32;
            let p = rng.below(65536) as u16;
            if keys.insert(a.wrapping_add(u32::from(p))) {
                servers.push(Server {
                    addr: Addr::V4(a.to_be_bytes()),
                    port: p,
                    weight: if servers.len() < 2 {
                        1
                    } else {
                        1 + rng.below(4) as i32
                    },
                });
            }
        }
        let r = rng.below(n as u64) as usize;
        let (before, _) = common::build(size, &servers, Order::Sorted).expect("build");
        let mut rest = servers.clone();
        rest.remove(r);
        let (after, _) = common::build(size, &rest, Order::Sorted).expect("build");
        let (b, a) = (by_identity(&before, &servers), by_identity(&after, &rest));
        let gone = Some((servers[r].addr, servers[r].port));
        let others = b.iter().filter(|x| **x != gone).count() as u64;
        let moved = b
            .iter()
            .zip(&a)
            .filter(|(x, y)| **x != gone && x != y)
            .count() as u64;
        sum_permille += moved * 1000 / others;
    }
    let mean = sum_permille / cases;
    assert!(mean <= 50, "mean disruption {mean} per mille");
}

/// Identical hash inputs give identical walks: documented caveat of the
/// scheduler (the hashed value is address + port, so 10.0.0.1:81 and
/// 10.0.0.2:80 collide). Both still get slots.
#[test]
fn colliding_hash_inputs_share_a_walk() {
    let size = TableSize::new(4093).expect("size");
    let a = Server {
        addr: Addr::V4([10, 0, 0, 1]),
        port: 81,
        weight: 1,
    };
    let b = Server {
        addr: Addr::V4([10, 0, 0, 2]),
        port: 80,
        weight: 1,
    };
    let (table, _, setup, _) = common::build_with_setup(size, &[a, b], Order::List);
    assert_eq!(setup[0].offset(), setup[1].offset());
    assert_eq!(setup[0].skip(), setup[1].skip());
    let counts = common::slot_counts(&table, 2);
    assert_eq!(counts[0] + counts[1], 4093);
    assert!(counts[0].abs_diff(counts[1]) <= 1);
    let mut per: HashMap<u16, u32> = HashMap::new();
    for v in table {
        *per.entry(v).or_default() += 1;
    }
    assert_eq!(per.len(), 2);
}
