// SPDX-License-Identifier: GPL-2.0

//! Helpers shared by the integration tests (std is fine here).

#![allow(dead_code)]

use maglev::{
    build_table, BuildError, BuildStats, DestSetup, Order, Scratch, Server, SortKey, TableSize,
};

/// Builds a table with freshly allocated scratch.
pub(crate) fn build(
    size: TableSize,
    servers: &[Server],
    order: Order,
) -> Result<(Vec<u16>, BuildStats), BuildError> {
    let mut table = vec![0u16; size.slots() as usize];
    let stats = build_into(size, servers, order, &mut table)?;
    Ok((table, stats))
}

/// Builds into `table` with freshly allocated scratch.
pub(crate) fn build_into(
    size: TableSize,
    servers: &[Server],
    order: Order,
    table: &mut [u16],
) -> Result<BuildStats, BuildError> {
    let mut setup = vec![DestSetup::default(); servers.len()];
    let mut perm = vec![SortKey::default(); servers.len()];
    build_table(
        size,
        servers,
        order,
        table,
        Scratch {
            setup: &mut setup,
            order: &mut perm,
        },
    )
}

/// Builds and also returns the per-position setup.
pub(crate) fn build_with_setup(
    size: TableSize,
    servers: &[Server],
    order: Order,
) -> (Vec<u16>, BuildStats, Vec<DestSetup>, Vec<u16>) {
    let mut table = vec![0u16; size.slots() as usize];
    let mut setup = vec![DestSetup::default(); servers.len()];
    let mut perm = vec![SortKey::default(); servers.len()];
    let stats = build_table(
        size,
        servers,
        order,
        &mut table,
        Scratch {
            setup: &mut setup,
            order: &mut perm,
        },
    )
    .expect("build");
    let perm = perm.iter().map(SortKey::index).collect();
    (table, stats, setup, perm)
}

/// Slots per server index.
pub(crate) fn slot_counts(table: &[u16], n: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    maglev::count_slots(table, &mut counts);
    counts
}

/// A deterministic xorshift generator for tests that need many cases.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
