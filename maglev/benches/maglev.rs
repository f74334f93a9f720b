// SPDX-License-Identifier: GPL-2.0

//! Table build and lookup timings. Short measurement windows: the machine
//! this runs on is small. Results are recorded in docs/maglev.md.

// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use maglev::{
    build_table, hsiphash_u32, lookup, lookup_fallback, Addr, DestSetup, Order, Scratch, Server,
    SortKey, TableSize, HASH1,
};

fn servers(n: usize) -> Vec<Server> {
    (0..n)
        .map(|i| Server {
            addr: Addr::V4((0x0a01_0000u32 + i as u32).to_be_bytes()),
            port: 8080,
            weight: 1 + (i % 4) as i32,
        })
        .collect()
}

fn bench_build(c: &mut Criterion) {
    let mut group = c.benchmark_group("build_table");
    for &m in &[4093u32, 65521] {
        let size = TableSize::new(m).expect("size");
        for &n in &[3usize, 100, 1000] {
            let in_order = servers(n);
            // The same servers in a fixed pseudo-random order: sorted mode
            // sorts them (servers added in random order).
            let mut shuffled = in_order.clone();
            let mut x = 0x2545_f491u32;
            for i in (1..n).rev() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                shuffled.swap(i, x as usize % (i + 1));
            }
            let mut table = vec![0u16; m as usize];
            let mut setup = vec![DestSetup::default(); n];
            let mut order = vec![SortKey::default(); n];
            for (name, ord, srv) in [
                ("list", Order::List, &in_order),
                ("sorted", Order::Sorted, &in_order),
                ("sorted-shuffled", Order::Sorted, &shuffled),
            ] {
                group.bench_with_input(
                    BenchmarkId::new(format!("M{m}/{name}"), n),
                    srv,
                    |b, srv| {
                        b.iter(|| {
                            build_table(
                                size,
                                black_box(srv),
                                ord,
                                &mut table,
                                Scratch {
                                    setup: &mut setup,
                                    order: &mut order,
                                },
                            )
                            .expect("build")
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    let clients: Vec<(Addr, u16)> = (0..1024u32)
        .map(|i| {
            (
                Addr::V4(i.wrapping_mul(0x9e37_79b9).to_be_bytes()),
                (i % 60000) as u16,
            )
        })
        .collect();
    let v6_clients: Vec<(Addr, u16)> = (0..1024u32)
        .map(|i| {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            b[12..].copy_from_slice(&i.wrapping_mul(0x9e37_79b9).to_be_bytes());
            (Addr::V6(b), 0)
        })
        .collect();
    for &m in &[4093u32, 65521] {
        let size = TableSize::new(m).expect("size");
        let srv = servers(100);
        let mut table = vec![0u16; m as usize];
        let mut setup = vec![DestSetup::default(); srv.len()];
        build_table(
            size,
            &srv,
            Order::List,
            &mut table,
            Scratch {
                setup: &mut setup,
                order: &mut [],
            },
        )
        .expect("build");
        group.throughput(Throughput::Elements(clients.len() as u64));
        group.bench_function(BenchmarkId::new("v4", m), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for (a, p) in &clients {
                    acc = acc.wrapping_add(u32::from(
                        lookup(size, black_box(&table), a, *p).unwrap_or(0),
                    ));
                }
                acc
            })
        });
        group.bench_function(BenchmarkId::new("v6", m), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for (a, p) in &v6_clients {
                    acc = acc.wrapping_add(u32::from(
                        lookup(size, black_box(&table), a, *p).unwrap_or(0),
                    ));
                }
                acc
            })
        });
        // The floor a lookup is measured against: one bare SipHash-1-3 of a
        // 4-byte word plus one table load, on the same words `lookup`
        // hashes for IPv4 clients (address + port).
        group.bench_function(BenchmarkId::new("floor_hsiphash_u32_plus_load", m), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for (a, p) in &clients {
                    let Addr::V4(o) = a else { continue };
                    let v = u32::from_be_bytes(*o).wrapping_add(u32::from(*p));
                    let h = hsiphash_u32(black_box(v), &HASH1);
                    acc = acc.wrapping_add(u32::from(table[(h % m) as usize]));
                }
                acc
            })
        });
        // Fallback with one server in ten unavailable: most clients hit on
        // the first probe, the rest walk a few slots.
        group.bench_function(BenchmarkId::new("fallback_v4_10pct_down", m), |b| {
            b.iter(|| {
                let mut acc = 0u32;
                for (a, p) in &clients {
                    acc = acc.wrapping_add(u32::from(
                        lookup_fallback(size, black_box(&table), a, *p, |i| i % 10 != 0)
                            .unwrap_or(0),
                    ));
                }
                acc
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_build, bench_lookup
}
criterion_main!(benches);
