//! Fixed hashes: the same in every process, version and agent (unlike `RandomState`), for
//! what agents must agree on without talking (the reduced mesh's ranks) or keep across
//! restarts (a round's slot).

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The finalizer of splitmix64: spreads every input bit over the whole word. FNV alone
/// barely moves the high bits for names that differ in their last character (`node-1`,
/// `node-2`), and its low bits follow the last bytes closely.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A name's hash, mixed: [`fnv1a`] then [`mix`].
pub fn of(name: &str) -> u64 {
    mix(fnv1a(name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference (draft-eastlake-fnv).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn mix_is_splitmix64s_finalizer() {
        // splitmix64 seeded with 0 returns mix(0x9e3779b97f4a7c15) first.
        assert_eq!(mix(0x9e37_79b9_7f4a_7c15), 0xe220_a839_7b1d_cdaf);
    }
}
