// SPDX-License-Identifier: GPL-2.0

//! The pinned known answers of `maglev.rs` (also run in-kernel by KUnit).

mod common;

use maglev::{table_fingerprint, Order, Server, TableSize, EMPTY, KNOWN_ANSWERS, MAX_SERVERS};

fn servers_of(ka: &maglev::KnownAnswer) -> Vec<Server> {
    (0..ka.len())
        .map(|i| ka.server(i).expect("server"))
        .collect()
}

#[test]
fn known_answers_match() {
    for ka in KNOWN_ANSWERS.iter() {
        let size = TableSize::new(ka.size).expect("valid size");
        let servers = servers_of(ka);
        let (table, stats) = common::build(size, &servers, ka.order).expect("build");
        assert_eq!(stats, ka.stats, "{}: stats", ka.name);
        assert_eq!(&table[..8], &ka.first, "{}: first slots", ka.name);
        assert_eq!(
            table_fingerprint(&table),
            ka.fingerprint,
            "{}: fingerprint",
            ka.name
        );
    }
}

#[test]
fn known_answer_names_are_unique_and_sizes_valid() {
    let mut names: Vec<_> = KNOWN_ANSWERS.iter().map(|k| k.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), KNOWN_ANSWERS.len());
    for ka in KNOWN_ANSWERS.iter() {
        assert!(TableSize::new(ka.size).is_some(), "{}", ka.name);
        assert!(ka.len() <= MAX_SERVERS);
        assert!(ka.server(ka.len()).is_none());
    }
}

#[test]
fn sorted_known_answer_is_permutation_invariant() {
    // The sorted entry must not depend on the input order.
    let ka = KNOWN_ANSWERS
        .iter()
        .find(|k| k.order == Order::Sorted)
        .expect("a sorted vector");
    let size = TableSize::new(ka.size).expect("size");
    let servers = servers_of(ka);
    let mut rev = servers.clone();
    rev.reverse();
    let (table, _) = common::build(size, &rev, Order::Sorted).expect("build");
    // Re-map reversed indices to the original ones.
    let n = servers.len() as u16;
    let remapped: Vec<u16> = table
        .iter()
        .map(|&v| if v == EMPTY { EMPTY } else { n - 1 - v })
        .collect();
    assert_eq!(table_fingerprint(&remapped), ka.fingerprint);
}

#[test]
fn fingerprint_definition() {
    // FNV-1a 32 over little-endian u16s.
    assert_eq!(table_fingerprint(&[]), 0x811c_9dc5);
    let mut h: u32 = 0x811c_9dc5;
    for b in [0x34u8, 0x12, 0xff, 0xff] {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    assert_eq!(table_fingerprint(&[0x1234, EMPTY]), h);
}
