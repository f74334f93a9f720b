// SPDX-License-Identifier: GPL-2.0

//! `hsiphash` against the kernel's own self-test vectors.

use maglev::{hash_key, hsiphash, hsiphash_u32, Addr, HASH1, HASH2, HASH_VECTORS};

/// Key of the kernel's siphash KUnit suite (`lib/tests/siphash_kunit.c`),
/// 64-bit case: bytes 0x00..=0x0f read as two little-endian words.
const KEY: [u64; 2] = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];

/// `test_vectors_hsiphash` of that suite for `BITS_PER_LONG == 64`: entry
/// `i` is the hash of the `i` bytes `0, 1, ..., i - 1`. (SipHash-1-3 with
/// the reference SipHash key; these are published test data.)
const VECTORS: [u32; 64] = [
    0x050fc4dc, 0x7d57ca93, 0x4dc7d44d, 0xe7ddf7fb, 0x88d38328, 0x49533b67, 0xc59f22a7, 0x9bb11140,
    0x8d299a8e, 0x6c063de4, 0x92ff097f, 0xf94dc352, 0x57b4d9a2, 0x1229ffa7, 0xc0f95d34, 0x2a519956,
    0x7d908b66, 0x63dbd80c, 0xb473e63e, 0x8d297d1c, 0xa6cce040, 0x2b45f844, 0xa320872e, 0xdae6c123,
    0x67349c8c, 0x705b0979, 0xca9913a5, 0x4ade3b35, 0xef6cd00d, 0x4ab1e1f4, 0x43c5e663, 0x8c21d1bc,
    0x16a7b60d, 0x7a8ff9bf, 0x1f2a753e, 0xbf186b91, 0xada26206, 0xa3c33057, 0xae3a36a1, 0x7b108392,
    0x99e41531, 0x3f1ad944, 0xc8138825, 0xc28949a6, 0xfaf8876b, 0x9f042196, 0x68b1d623, 0x8b5114fd,
    0xdf074c46, 0x12cc86b3, 0x0a52098f, 0x9d292f9a, 0xa2f41f12, 0x43a71ed0, 0x73f0bce6, 0x70a7e980,
    0x243c6d75, 0xfdb71513, 0xa67d8a08, 0xb7e8f148, 0xf7a644ee, 0x0f1837f2, 0x4b6694e0, 0xb7bbb3a8,
];

#[test]
fn kernel_vectors_all_lengths() {
    let input: Vec<u8> = (0u8..64).collect();
    for (len, &want) in VECTORS.iter().enumerate() {
        let got = hsiphash(&input[..len], &KEY);
        assert_eq!(got, want, "hsiphash of {len} bytes");
    }
}

#[test]
fn kernel_vectors_unaligned_input() {
    // The kernel checks an unaligned copy too; a slice has no alignment
    // requirement here, but check an offset view anyway.
    let mut buf = vec![0xffu8];
    buf.extend(0u8..64);
    for (len, &want) in VECTORS.iter().enumerate() {
        assert_eq!(hsiphash(&buf[1..=len], &KEY), want, "unaligned {len}");
    }
}

#[test]
fn u32_shortcut_is_vector_4() {
    // hsiphash_1u32(0x03020100) is vector 4 in the kernel suite.
    assert_eq!(hsiphash_u32(0x0302_0100, &KEY), VECTORS[4]);
}

#[test]
fn u32_shortcut_matches_general_form() {
    let mut x: u32 = 0x1234_5678;
    for _ in 0..10_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        for key in [&KEY, &HASH1, &HASH2] {
            assert_eq!(hsiphash_u32(x, key), hsiphash(&x.to_le_bytes(), key));
        }
    }
    for v in [0, 1, u32::MAX, 0x8000_0000] {
        assert_eq!(hsiphash_u32(v, &HASH1), hsiphash(&v.to_le_bytes(), &HASH1));
    }
}

#[test]
fn hash_key_material() {
    // The hashed u32 is offset + port + folded address, wrapping.
    let a = Addr::V4([10, 1, 0, 1]);
    let v = 0x0a01_0001u32.wrapping_add(80).wrapping_add(7);
    assert_eq!(hash_key(&a, 80, &HASH1, 7), hsiphash_u32(v, &HASH1));
    let a = Addr::V4([255, 255, 255, 255]);
    assert_eq!(
        hash_key(&a, 65535, &HASH2, 2),
        hsiphash_u32(65535u32.wrapping_add(1), &HASH2)
    );
    // IPv6: XOR of the four big-endian words.
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&0x2001_0db8u32.to_be_bytes());
    b[4..8].copy_from_slice(&0x0000_0001u32.to_be_bytes());
    b[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
    b[12..].copy_from_slice(&0x0000_0010u32.to_be_bytes());
    let fold = 0x2001_0db8 ^ 0x0000_0001 ^ 0xdead_beef ^ 0x0000_0010u32;
    assert_eq!(Addr::V6(b).fold(), fold);
    assert_eq!(
        hash_key(&Addr::V6(b), 53, &HASH1, 0),
        hsiphash_u32(fold.wrapping_add(53), &HASH1)
    );
    // An IPv4-mapped form folds like the bare IPv4 address only when the
    // other words cancel; ::a01:1 (all other words zero) does.
    let mut c = [0u8; 16];
    c[12..].copy_from_slice(&[10, 1, 0, 1]);
    assert_eq!(Addr::V6(c).fold(), Addr::V4([10, 1, 0, 1]).fold());
}

#[test]
fn pinned_hash_vectors() {
    for (i, hv) in HASH_VECTORS.iter().enumerate() {
        let key = if hv.second_key { &HASH2 } else { &HASH1 };
        assert_eq!(
            hash_key(&hv.addr, hv.port, key, hv.offset),
            hv.hash,
            "HASH_VECTORS[{i}] = {hv:?}"
        );
    }
}
