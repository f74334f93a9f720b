// SPDX-License-Identifier: GPL-2.0

//! Unit tests of `build_table`, the lookups and the size helpers.

mod common;

use common::Rng;
use maglev::{
    build_table, count_slots, hash_key, lookup, lookup_fallback, slot_of, turns_for, weight_gcd,
    weight_rshift, Addr, BuildError, DestSetup, Order, Scratch, Server, SortKey, TableSize,
    DEFAULT_TABLE_SIZE, EMPTY, HASH1, HASH2, MAX_SERVERS, TABLE_SIZES,
};

fn v4(a: u32, port: u16, weight: i32) -> Server {
    Server {
        addr: Addr::V4(a.to_be_bytes()),
        port,
        weight,
    }
}

fn size(m: u32) -> TableSize {
    TableSize::new(m).expect("valid size")
}

/// An independent model of the C populate loop, written the way the
/// Maglev paper's pseudo-code reads: explicit permutation rows and a
/// `next` cursor per server. Returns the table as indices into `servers`
/// (list order only).
fn reference_table(sz: TableSize, servers: &[Server]) -> Vec<u16> {
    let m = u64::from(sz.slots());
    let positive: Vec<u32> = servers
        .iter()
        .filter(|s| s.weight > 0)
        .map(|s| s.weight as u32)
        .collect();
    let mut table = vec![EMPTY; m as usize];
    if positive.is_empty() {
        return table;
    }
    let g = positive.iter().fold(0u32, |a, &b| {
        let (mut x, mut y) = (a, b);
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    });
    let maxw = *positive.iter().max().unwrap();
    let bits = 32 - (maxw / g).leading_zeros();
    let shift = bits.saturating_sub(sz.index() / 2);
    let turns: Vec<u64> = servers
        .iter()
        .map(|s| {
            if s.weight <= 0 {
                0
            } else {
                u64::from(((s.weight as u32 / g) >> shift).max(1))
            }
        })
        .collect();
    let offset: Vec<u64> = servers
        .iter()
        .map(|s| u64::from(hash_key(&s.addr, s.port, &HASH1, 0)) % m)
        .collect();
    let skip: Vec<u64> = servers
        .iter()
        .map(|s| u64::from(hash_key(&s.addr, s.port, &HASH2, 0)) % (m - 1) + 1)
        .collect();
    let mut next = vec![0u64; servers.len()];
    let mut filled = 0;
    loop {
        for i in 0..servers.len() {
            for _ in 0..turns[i] {
                let mut c = (offset[i] + next[i] * skip[i]) % m;
                while table[c as usize] != EMPTY {
                    next[i] += 1;
                    c = (offset[i] + next[i] * skip[i]) % m;
                }
                table[c as usize] = i as u16;
                next[i] += 1;
                filled += 1;
                if filled == m {
                    return table;
                }
            }
        }
    }
}

#[test]
fn table_size_basics() {
    for (i, &m) in TABLE_SIZES.iter().enumerate() {
        let s = size(m);
        assert_eq!(s.slots(), m);
        assert_eq!(s.index(), 8 + i as u32);
        assert_eq!(s.tab_bits(), (8 + i as u32) / 2);
        assert_eq!(TableSize::from_index(8 + i as u32), Some(s));
    }
    for bad in [0, 1, 250, 252, 4092, 4094, 131072, u32::MAX] {
        assert_eq!(TableSize::new(bad), None, "{bad}");
    }
    assert_eq!(TableSize::from_index(7), None);
    assert_eq!(TableSize::from_index(18), None);
    assert_eq!(TableSize::default().slots(), DEFAULT_TABLE_SIZE);
    assert_eq!(TableSize::default(), size(4093));
    assert_eq!(size(4093).tab_bits(), 6);
    assert_eq!(Order::default(), Order::Sorted);
}

/// `reduce` is `% M` for every size: at the ends of the range, around
/// multiples of M, and at a million pseudo-random values each.
#[test]
fn reduce_is_the_remainder() {
    for &m in TABLE_SIZES.iter() {
        let s = size(m);
        let mut edges = vec![
            0,
            1,
            m - 1,
            m,
            m + 1,
            u32::MAX,
            u32::MAX - 1,
            u32::MAX / m * m,
        ];
        edges.extend((1..64).map(|k| (u32::MAX / 64 / m) * m * k));
        edges.extend((1..64).map(|k| (u32::MAX / 64 / m) * m * k - 1));
        for h in edges {
            assert_eq!(s.reduce(h), h % m, "{h} % {m}");
        }
        let mut h = 0x9e37_79b9u32 ^ m;
        for _ in 0..1_000_000 {
            h = h.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            assert_eq!(s.reduce(h), h % m, "{h} % {m}");
        }
    }
}

#[test]
fn list_order_matches_reference_model() {
    let mut rng = Rng(0x5eed);
    for case in 0..300 {
        let sz = size(TABLE_SIZES[rng.below(6) as usize]);
        let n = rng.below(40) as usize;
        let servers: Vec<Server> = (0..n)
            .map(|_| {
                let w = match rng.below(4) {
                    0 => 0,
                    1 => 1,
                    2 => 1 + rng.below(10) as i32,
                    _ => rng.below(200_000) as i32,
                };
                v4(rng.next() as u32, rng.below(65536) as u16, w)
            })
            .collect();
        let (table, stats) = common::build(sz, &servers, Order::List).expect("build");
        assert_eq!(table, reference_table(sz, &servers), "case {case}");
        let g = weight_gcd(&servers);
        assert_eq!(stats.gcd as u32, g);
        assert_eq!(stats.rshift, weight_rshift(sz, &servers, g));
    }
}

#[test]
fn no_servers_or_no_positive_weight_gives_empty_table() {
    let sz = size(251);
    let (t, st) = common::build(sz, &[], Order::Sorted).expect("build");
    assert!(t.iter().all(|&v| v == EMPTY));
    assert_eq!((st.servers, st.gcd, st.rshift, st.filled), (0, 0, 0, 0));
    let servers = [v4(1, 1, 0), v4(2, 2, -5), v4(3, 3, i32::MIN)];
    for order in [Order::Sorted, Order::List] {
        let mut t = vec![7u16; 251];
        let st = common::build_into(sz, &servers, order, &mut t).expect("build");
        assert!(t.iter().all(|&v| v == EMPTY));
        assert_eq!(st.filled, 0);
        assert_eq!(lookup(sz, &t, &Addr::V4([1, 2, 3, 4]), 0), None);
        assert_eq!(
            lookup_fallback(sz, &t, &Addr::V4([1, 2, 3, 4]), 0, |_| true),
            None
        );
    }
}

#[test]
fn negative_and_zero_weights_get_no_slots() {
    let sz = size(1021);
    let servers = [v4(1, 80, 3), v4(2, 80, 0), v4(3, 80, -1), v4(4, 80, 1)];
    let (t, st) = common::build(sz, &servers, Order::List).expect("build");
    let counts = common::slot_counts(&t, 4);
    assert_eq!(counts[1], 0);
    assert_eq!(counts[2], 0);
    assert_eq!(counts[0] + counts[3], 1021);
    assert_eq!(st.servers, 2);
    assert_eq!(st.gcd, 1);
}

#[test]
fn turns_and_shift_formulas() {
    // gcd of positive weights only.
    let s = [v4(1, 1, 6), v4(2, 2, 0), v4(3, 3, 9), v4(4, 4, -3)];
    assert_eq!(weight_gcd(&s), 3);
    // max 9 / 3 = 3 -> fls 2 <= 6 bits: no shift.
    assert_eq!(weight_rshift(size(4093), &s, 3), 0);
    // 65535 / 1 -> fls 16; 4093 keeps 6 bits -> shift 10; 65521 keeps 8.
    let s = [v4(1, 1, 65535), v4(2, 2, 1)];
    assert_eq!(weight_rshift(size(4093), &s, 1), 10);
    assert_eq!(weight_rshift(size(65521), &s, 1), 8);
    assert_eq!(weight_rshift(size(251), &s, 1), 12);
    assert_eq!(weight_rshift(size(4093), &s, 0), 0);
    // i32::MAX: fls 31.
    let s = [v4(1, 1, i32::MAX)];
    assert_eq!(weight_rshift(size(131071), &s, 1), 31 - 8);
    // turns: shifted, at least 1 when positive, 0 otherwise.
    assert_eq!(turns_for(65535, 1, 10), 63);
    assert_eq!(turns_for(1, 1, 10), 1);
    assert_eq!(turns_for(1023, 1, 10), 1);
    assert_eq!(turns_for(2048, 1, 10), 2);
    assert_eq!(turns_for(9, 3, 0), 3);
    assert_eq!(turns_for(0, 3, 0), 0);
    assert_eq!(turns_for(-7, 3, 0), 0);
    assert_eq!(turns_for(5, 0, 0), 0);
    assert_eq!(turns_for(i32::MAX, 1, 31 - 8), 255);
}

#[test]
fn errors_leave_table_untouched() {
    let sz = size(251);
    let many: Vec<Server> = (0..252).map(|i| v4(i, 1, 1)).collect();
    let mut table = vec![0x1234u16; 251];
    assert_eq!(
        common::build_into(sz, &many, Order::List, &mut table),
        Err(BuildError::TooManyServers)
    );
    assert!(table.iter().all(|&v| v == 0x1234));

    // n == M is fine.
    assert!(common::build_into(sz, &many[..251], Order::Sorted, &mut table).is_ok());

    // Wrong table length, both ways.
    for len in [0usize, 250, 252] {
        let mut t = vec![0x1234u16; len];
        assert_eq!(
            common::build_into(sz, &many[..3], Order::List, &mut t),
            Err(BuildError::TableLength)
        );
        assert!(t.iter().all(|&v| v == 0x1234));
    }

    // Short scratch, each part.
    let servers = &many[..5];
    let mut t = vec![0x1234u16; 251];
    let mut setup = vec![DestSetup::default(); 5];
    let mut order = vec![SortKey::default(); 5];
    let r = build_table(
        sz,
        servers,
        Order::List,
        &mut t,
        Scratch {
            setup: &mut setup[..4],
            order: &mut order,
        },
    );
    assert_eq!(r, Err(BuildError::ScratchLength));
    let r = build_table(
        sz,
        servers,
        Order::Sorted,
        &mut t,
        Scratch {
            setup: &mut setup,
            order: &mut order[..4],
        },
    );
    assert_eq!(r, Err(BuildError::ScratchLength));
    assert!(t.iter().all(|&v| v == 0x1234));
    // List order does not need the order scratch at all; longer scratch is fine.
    let mut big_setup = vec![DestSetup::default(); 50];
    let r = build_table(
        sz,
        servers,
        Order::List,
        &mut t,
        Scratch {
            setup: &mut big_setup,
            order: &mut [],
        },
    );
    assert!(r.is_ok());
    assert!(t.iter().all(|&v| v < 5));
}

#[test]
fn more_than_max_servers_is_refused() {
    let sz = size(131071);
    let many: Vec<Server> = (0..=MAX_SERVERS as u32).map(|i| v4(i, 1, 1)).collect();
    assert_eq!(many.len(), 65535);
    let mut t = vec![9u16; 131071];
    assert_eq!(
        common::build_into(sz, &many, Order::List, &mut t),
        Err(BuildError::TooManyServers)
    );
    assert!(t.iter().all(|&v| v == 9));
    // Exactly MAX_SERVERS works and never writes EMPTY.
    let st = common::build_into(sz, &many[..MAX_SERVERS], Order::List, &mut t).expect("build");
    assert_eq!(st.filled, 131071);
    assert_eq!(st.servers as usize, MAX_SERVERS);
    assert!(t.iter().all(|&v| (v as usize) < MAX_SERVERS));
}

#[test]
fn dirty_scratch_does_not_matter() {
    let sz = size(2039);
    let servers: Vec<Server> = (0..17)
        .map(|i| v4(0x0a00_0000 + i * 7, 443, 1 + (i % 3) as i32))
        .collect();
    for order in [Order::List, Order::Sorted] {
        let (clean, _) = common::build(sz, &servers, order).expect("build");
        let mut t = vec![0u16; 2039];
        let (_, _, mut setup, _) = common::build_with_setup(sz, &servers, order);
        setup.reverse();
        let mut perm = vec![SortKey::default(); servers.len()];
        build_table(
            sz,
            &servers,
            order,
            &mut t,
            Scratch {
                setup: &mut setup,
                order: &mut perm,
            },
        )
        .expect("build");
        assert_eq!(t, clean);
    }
}

#[test]
fn sorted_order_sorts_by_family_address_port() {
    let a = Server {
        addr: Addr::V6([0; 16]),
        port: 1,
        weight: 1,
    };
    let b = v4(0xffff_ffff, 2, 1);
    let c = v4(0x0a00_0001, 9, 1);
    let d = v4(0x0a00_0001, 8, 1);
    let input = [a, b, c, d];
    let (_, _, setup, perm) = common::build_with_setup(size(251), &input, Order::Sorted);
    // V4 before V6, address bytes, then port.
    assert_eq!(perm, vec![3, 2, 1, 0]);
    // Setup follows population order.
    let off = |s: &Server| hash_key(&s.addr, s.port, &HASH1, 0) % 251;
    assert_eq!(setup[0].offset(), off(&d));
    assert_eq!(setup[3].offset(), off(&a));
    // Sorted input in list order gives the same table as sorted order.
    let sorted = [d, c, b, a];
    let (t_list, _) = common::build(size(251), &sorted, Order::List).expect("build");
    let (t_sorted, _) = common::build(size(251), &input, Order::Sorted).expect("build");
    let remap: Vec<u16> = t_list.iter().map(|&v| perm[v as usize]).collect();
    assert_eq!(remap, t_sorted);
}

#[test]
fn sorted_duplicates_keep_input_order() {
    let x = v4(0x0a00_0001, 80, 1);
    let y = v4(0x0a00_0001, 80, 3);
    let (_, _, _, perm) = common::build_with_setup(size(251), &[y, x, y], Order::Sorted);
    assert_eq!(perm, vec![0, 1, 2]);
}

#[test]
fn dest_setup_values() {
    let servers = [v4(0x0a01_0001, 80, 5), v4(0x0a01_0002, 80, 10)];
    let (_, st, setup, _) = common::build_with_setup(size(4093), &servers, Order::List);
    assert_eq!(st.gcd, 5);
    for (s, ds) in servers.iter().zip(&setup) {
        assert_eq!(ds.offset(), hash_key(&s.addr, s.port, &HASH1, 0) % 4093);
        assert_eq!(ds.skip(), hash_key(&s.addr, s.port, &HASH2, 0) % 4092 + 1);
        assert!(ds.perm() < 4093);
    }
    assert_eq!(setup[0].turns(), 1);
    assert_eq!(setup[1].turns(), 2);
}

#[test]
fn lookup_reads_the_clients_slot() {
    let sz = size(509);
    let servers: Vec<Server> = (0..7).map(|i| v4(0xc0a8_0000 + i, 80, 1)).collect();
    let (table, _) = common::build(sz, &servers, Order::List).expect("build");
    let mut rng = Rng(77);
    for _ in 0..1000 {
        let a = Addr::V4((rng.next() as u32).to_be_bytes());
        let p = rng.below(65536) as u16;
        let slot = slot_of(sz, &a, p);
        assert_eq!(slot, hash_key(&a, p, &HASH1, 0) % 509);
        assert_eq!(lookup(sz, &table, &a, p), Some(table[slot as usize]));
        // With everything available the fallback is the plain lookup.
        assert_eq!(
            lookup_fallback(sz, &table, &a, p, |_| true),
            Some(table[slot as usize])
        );
        // Nothing available: None.
        assert_eq!(lookup_fallback(sz, &table, &a, p, |_| false), None);
        // Too short a table never panics.
        assert_eq!(lookup(sz, &table[..10], &a, p).is_some(), slot < 10);
    }
}

#[test]
fn fallback_walk_follows_the_c_rule() {
    let sz = size(251);
    let servers: Vec<Server> = (0..5).map(|i| v4(0x0a00_0000 + i, 0, 1)).collect();
    let (table, _) = common::build(sz, &servers, Order::List).expect("build");
    let down = |i: u16| i != 2 && i != 4;
    let mut rng = Rng(4242);
    for _ in 0..2000 {
        let a = Addr::V4((rng.next() as u32).to_be_bytes());
        let first = slot_of(sz, &a, 0);
        let want = if down(table[first as usize]) {
            Some(table[first as usize])
        } else {
            (0..251u32)
                .map(|off| hash_key(&a, 0, &HASH1, (off + first) % 251) % 251)
                .map(|s| table[s as usize])
                .find(|&i| down(i))
        };
        let mut calls = 0;
        let got = lookup_fallback(sz, &table, &a, 0, |i| {
            calls += 1;
            down(i)
        });
        assert_eq!(got, want);
        assert!(calls <= 252);
        if let Some(i) = got {
            assert!(down(i));
        }
    }
}

#[test]
fn fallback_stops_at_an_empty_slot() {
    let sz = size(251);
    let mut table = vec![EMPTY; 251];
    let a = Addr::V4([198, 51, 100, 1]);
    let first = slot_of(sz, &a, 0);
    table[first as usize] = 0;
    // Server 0 unavailable, every other slot empty: the walk's first probe
    // is EMPTY (unless it is the first slot again) and the walk stops.
    let mut probes = 0;
    let got = lookup_fallback(sz, &table, &a, 0, |_| {
        probes += 1;
        false
    });
    assert_eq!(got, None);
    assert!(probes <= 251);
}

#[test]
fn count_slots_counts() {
    let t = [0u16, 1, 1, EMPTY, 5, 2];
    let mut c = [9u32; 3];
    assert_eq!(count_slots(&t, &mut c), 1);
    assert_eq!(c, [1, 2, 1]);
}

#[test]
fn ipv6_fold_is_xor_of_words() {
    let mut b = [0u8; 16];
    b[0] = 0x12;
    b[7] = 0x34;
    b[11] = 0x56;
    b[15] = 0x78;
    assert_eq!(Addr::V6(b).fold(), 0x1200_0000 ^ 0x34 ^ 0x56 ^ 0x78);
    assert!(Addr::V6(b).is_v6());
    assert!(!Addr::V4([1, 2, 3, 4]).is_v6());
    assert_eq!(Addr::V4([1, 2, 3, 4]).fold(), 0x0102_0304);
    assert!(Addr::V4([255; 4]) < Addr::V6([0; 16]));
}

#[test]
fn build_error_display() {
    assert_eq!(
        BuildError::TooManyServers.to_string(),
        "more servers than table slots"
    );
    assert!(!BuildError::TableLength.to_string().is_empty());
    assert!(!BuildError::ScratchLength.to_string().is_empty());
}

/// Sorted mode with keys: two servers that hash alike (the same hashed
/// address and port, as two IPv6 tunnel servers of an IPv4 service whose
/// first four bytes agree) get the same slots whatever their input order,
/// ordered by their own addresses; without keys, by input position.
#[test]
fn keyed_sort_orders_servers_that_hash_alike() {
    let sz = size(251);
    let hashed = [
        v4(0xfd00_0002, 80, 1),
        v4(0xfd00_0002, 80, 2),
        v4(0x0a00_020d, 80, 1),
    ];
    let own = |last: u8| {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[0xfd, 0, 0, 2]);
        b[15] = last;
        Addr::V6(b)
    };
    let keys = [own(0x11), own(0x12), Addr::V4([10, 0, 2, 13])];
    // Per server (by key) for an input order.
    let build = |perm: [usize; 3], keyed: bool| -> Vec<(Addr, u32)> {
        let servers: Vec<Server> = perm.iter().map(|&i| hashed[i]).collect();
        let k: Vec<Addr> = perm.iter().map(|&i| keys[i]).collect();
        let mut t = vec![EMPTY; sz.slots() as usize];
        let mut setup = vec![DestSetup::default(); 3];
        let mut order = vec![SortKey::default(); 3];
        maglev::build_table_keyed(
            sz,
            &servers,
            keyed.then_some(&k[..]),
            Order::Sorted,
            &mut t,
            Scratch {
                setup: &mut setup,
                order: &mut order,
            },
        )
        .expect("built");
        let mut counts = vec![0u32; 3];
        count_slots(&t, &mut counts);
        let mut per: Vec<(Addr, u32)> = k.into_iter().zip(counts).collect();
        per.sort();
        per
    };
    assert_eq!(build([0, 1, 2], true), build([1, 0, 2], true));
    assert_ne!(build([0, 1, 2], false), build([1, 0, 2], false));
    // Too few keys.
    let mut t = vec![EMPTY; sz.slots() as usize];
    let r = maglev::build_table_keyed(
        sz,
        &hashed,
        Some(&keys[..2]),
        Order::Sorted,
        &mut t,
        Scratch {
            setup: &mut [DestSetup::default(); 3],
            order: &mut [SortKey::default(); 3],
        },
    );
    assert_eq!(r, Err(BuildError::ScratchLength));
}
