//! [`key_route`]: which consumer a record's key goes to under
//! [`FanOut::PartitionByKey`](super::FanOut::PartitionByKey). The hash is fixed (the same key goes
//! to the same consumer in every run, after every restart: its keyed state is there) and cheap
//! (a multiply per 8 key bytes, then a mix so that every key bit moves the result).

/// FxHash's multiplier (rustc's hasher): odd, with well-spread bits.
const FOLD: u64 = 0x517c_c1b7_2722_0a95;

/// The consumer, of `consumers`, that `key` goes to.
#[inline]
pub fn key_route(key: &[u8], consumers: usize) -> usize {
    let fold = |hash: u64, word: u64| (hash.rotate_left(5) ^ word).wrapping_mul(FOLD);
    let mut hash = key.len() as u64;
    let mut words = key.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        hash = fold(hash, u64::from_le_bytes(bytes));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        // Byte by byte: copying the few into a word's buffer would call memcpy and stall the
        // load that reads the buffer back.
        let word = rest
            .iter()
            .enumerate()
            .fold(0, |word, (at, byte)| word | u64::from(*byte) << (8 * at));
        hash = fold(hash, word);
    }
    // MurmurHash3's finaliser: every input bit reaches the high bits the range reduction reads.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    // hash * consumers / 2^64: a consumer in 0..consumers without a division.
    ((u128::from(hash) * consumers as u128) >> 64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The routes of the keys below over a million consumers, worked out apart from this code
    /// (a few lines of Python doing the same arithmetic).
    const GOLDEN: [usize; 5] = [0, 673_115, 827_847, 268_961, 656_069];

    #[test]
    fn keys_spread_evenly_and_always_go_the_same_way() {
        for consumers in [2_usize, 3, 8] {
            let mut counts = vec![0_u32; consumers];
            for id in 0..30_000_u32 {
                let key = format!("card-{id}");
                let route = key_route(key.as_bytes(), consumers);
                assert_eq!(route, key_route(key.as_bytes(), consumers));
                counts[route] += 1;
            }
            let even = 30_000 / consumers as u32;
            for count in &counts {
                assert!(count.abs_diff(even) < even / 20, "{consumers}: {counts:?}");
            }
        }
        // Short binary keys (the benchmark's two-byte ids) spread too.
        let mut counts = [0_u32; 2];
        for id in 0..1000_u16 {
            counts[key_route(&id.to_be_bytes(), 2)] += 1;
        }
        assert!(counts[0].abs_diff(500) < 50, "{counts:?}");
        // Fixed across runs and builds: these routes are part of where keyed state lives.
        let routes = [
            &b""[..],
            b"a",
            b"card-17",
            b"card-0017",
            b"a key of 26 bytes: 4 words",
        ]
        .map(|key| key_route(key, 1_000_000));
        assert_eq!(routes, GOLDEN);
        assert!((0..4).all(|consumers| key_route(b"key", consumers + 1) <= consumers));
    }
}
