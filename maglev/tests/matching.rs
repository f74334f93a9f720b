// SPDX-License-Identifier: GPL-2.0

//! Matching a rebuild's servers with the serving table's
//! (`match_servers`) and counting the slots that changed owner from that
//! match (`changed_slots`), against lists changed the way IPVS changes
//! them: servers added at the head, removed anywhere, removed and added
//! back.

mod common;

use maglev::{changed_slots, match_servers, Addr, Order, Server, TableSize, EMPTY, UNMATCHED};
use proptest::prelude::*;

/// One change to a server list.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// A new server at the head.
    Add,
    /// The server at this position (modulo the length) goes.
    Remove(usize),
    /// The server at this position goes and comes back at the head (IPVS
    /// takes a server out of its trash with the same identity).
    Readd(usize),
}

fn any_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Add),
        3 => any::<usize>().prop_map(Change::Remove),
        1 => any::<usize>().prop_map(Change::Readd),
    ]
}

fn apply(list: &mut Vec<usize>, next_id: &mut usize, c: Change) {
    match c {
        Change::Add => {
            list.insert(0, *next_id);
            *next_id += 1;
        }
        Change::Remove(k) if !list.is_empty() => {
            list.remove(k % list.len());
        }
        Change::Readd(k) if !list.is_empty() => {
            let id = list.remove(k % list.len());
            list.insert(0, id);
        }
        _ => {}
    }
}

/// Identities 0..len, and the list after `changes`.
fn lists(len: usize, changes: &[Change]) -> (Vec<usize>, Vec<usize>) {
    let old: Vec<usize> = (0..len).collect();
    let mut new = old.clone();
    let mut next_id = len;
    for &c in changes {
        apply(&mut new, &mut next_id, c);
    }
    (old, new)
}

/// Runs `match_servers` on two identity lists.
fn matched(old: &[usize], new: &[usize]) -> (bool, Vec<u16>, Vec<u16>) {
    let mut to_new = vec![0u16; old.len()];
    let mut to_old = vec![0u16; new.len()];
    let exact = match_servers(
        |i| old.get(i).copied(),
        |j| new.get(j).copied(),
        &mut to_new,
        &mut to_old,
    );
    (exact, to_new, to_old)
}

fn servers_of(ids: &[usize]) -> Vec<Server> {
    ids.iter()
        .map(|&id| Server {
            addr: Addr::V4((0x0a00_0000u32 + id as u32).to_be_bytes()),
            port: 80,
            weight: 1 + (id % 3) as i32,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the changes, matched servers have equal identities and the
    /// two maps are each other's inverse; an exact match has matched every
    /// identity both lists have; and after one addition or one removal
    /// the match is exact.
    #[test]
    fn matches_are_right(len in 0usize..40, changes in prop::collection::vec(any_change(), 0..6)) {
        let (old, new) = lists(len, &changes);
        let (exact, to_new, to_old) = matched(&old, &new);
        for (i, &j) in to_new.iter().enumerate() {
            if j != UNMATCHED {
                prop_assert_eq!(old[i], new[usize::from(j)]);
                prop_assert_eq!(usize::from(to_old[usize::from(j)]), i);
            }
        }
        for (j, &i) in to_old.iter().enumerate() {
            if i != UNMATCHED {
                prop_assert_eq!(usize::from(to_new[usize::from(i)]), j);
            }
        }
        if exact {
            for (i, id) in old.iter().enumerate() {
                prop_assert_eq!(to_new[i] != UNMATCHED, new.contains(id));
            }
        }
        let simple = changes.len() == 1 && !matches!(changes[0], Change::Readd(_));
        if simple {
            prop_assert!(exact, "one addition or removal: {:?} -> {:?}", old, new);
        }
    }

    /// From an exact match, `changed_slots` counts exactly the slots whose
    /// server (by identity) differs between the tables of both lists.
    #[test]
    fn changed_slots_by_identity(len in 1usize..30, changes in prop::collection::vec(any_change(), 1..3)) {
        let (old, new) = lists(len, &changes);
        let (exact, to_new, _) = matched(&old, &new);
        prop_assume!(exact && !new.is_empty());
        let size = TableSize::new(251).expect("size");
        let (a, _) = common::build(size, &servers_of(&old), Order::Sorted).expect("build");
        let (b, _) = common::build(size, &servers_of(&new), Order::Sorted).expect("build");
        let owner = |t: &[u16], ids: &[usize], k: usize| ids.get(usize::from(t[k])).copied();
        let want = (0..a.len()).filter(|&k| owner(&a, &old, k) != owner(&b, &new, k)).count();
        prop_assert_eq!(changed_slots(&a, &b, &to_new) as usize, want);
    }
}

#[test]
fn removed_and_added_back_is_not_exact() {
    // 1 left and came back at the head: the same identity on both sides.
    let (exact, _, _) = matched(&[0, 1, 2], &[1, 0, 2]);
    assert!(!exact);
    // Many additions at once, past what is checked.
    let (exact, to_new, _) = matched(&[0, 1], &[9, 8, 7, 6, 5, 0, 1]);
    assert!(!exact);
    assert_eq!(to_new, [5, 6]);
}

#[test]
fn changed_slots_keeps_empty_and_counts_extra() {
    assert_eq!(
        changed_slots(&[EMPTY, 0, 1], &[EMPTY, 0, 0], &[0, UNMATCHED]),
        1
    );
    assert_eq!(changed_slots(&[0, 0], &[1, 1, 1], &[1]), 1);
}
