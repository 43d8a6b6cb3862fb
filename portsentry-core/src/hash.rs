//! Keyed hashing of source addresses, so that crafted addresses cannot pile up in one place.
//!
//! The tracker indexes sources by a SipHash-1-3 of the address under a 128-bit key
//! ([`HashSeed`]). An attacker who does not know the key cannot choose addresses that
//! collide; one who knows it (for example because the fixed [`HashSeed::FIXED`] was used on a
//! live sensor) can make lookups slower, but never unbounded: the tracker caps every probe
//! sequence (see [`crate::tracker`]).

use std::hash::BuildHasher;
use std::net::IpAddr;

/// The 128-bit key of the tracker's address hash.
///
/// Use [`HashSeed::random`] on a live sensor (the key is then secret) and
/// [`HashSeed::FIXED`] or [`HashSeed::new`] when bit-for-bit reproducibility of the internal
/// layout matters. Detection results never depend on the seed unless more than
/// [`crate::tracker::MAX_PROBE_DISTANCE`] tracked addresses collide, which takes a known key.
///
/// # Examples
///
/// ```
/// use portsentry_core::HashSeed;
/// assert_eq!(HashSeed::new(1, 2), HashSeed::new(1, 2));
/// assert_ne!(HashSeed::random(), HashSeed::FIXED);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashSeed {
    k0: u64,
    k1: u64,
}

impl HashSeed {
    /// A fixed, publicly known key: reproducible, but offers no protection against crafted
    /// collisions.
    pub const FIXED: Self = Self::new(0x7073_656e_7472_7931, 0x6465_7465_6374_6f72);

    /// A key made of two 64-bit halves.
    pub const fn new(k0: u64, k1: u64) -> Self {
        Self { k0, k1 }
    }

    /// A fresh secret key drawn from the operating system's randomness (through the
    /// standard library's per-process random hash keys). This is the builder's default.
    pub fn random() -> Self {
        let state = std::collections::hash_map::RandomState::new();
        let k0 = state.hash_one(0x5eed_0000_u64);
        let k1 = state.hash_one(0x5eed_0001_u64);
        if k0 == Self::FIXED.k0 && k1 == Self::FIXED.k1 {
            // Astronomically unlikely; keep the documented inequality true anyway.
            return Self::new(k0 ^ 1, k1);
        }
        Self::new(k0, k1)
    }

    /// The SipHash-1-3 of `addr` under this key (the address's 16 bytes, IPv4 zero-extended,
    /// followed by one family byte).
    #[inline]
    pub(crate) fn hash_addr(self, addr: IpAddr) -> u64 {
        let (bits, family) = match addr {
            IpAddr::V4(a) => (u128::from(a.to_bits()), 4u8),
            IpAddr::V6(a) => (a.to_bits(), 6u8),
        };
        sip13_17(self.k0, self.k1, bits, family)
    }
}

impl Default for HashSeed {
    /// [`HashSeed::random`].
    fn default() -> Self {
        Self::random()
    }
}

/// SipHash state: the four 64-bit lanes.
struct Sip([u64; 4]);

impl Sip {
    fn new(k0: u64, k1: u64) -> Self {
        Self([
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ])
    }

    #[inline(always)]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.0;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    #[inline(always)]
    fn compress<const C: usize>(&mut self, m: u64) {
        self.0[3] ^= m;
        for _ in 0..C {
            self.round();
        }
        self.0[0] ^= m;
    }

    #[inline(always)]
    fn finish<const D: usize>(mut self) -> u64 {
        self.0[2] ^= 0xff;
        for _ in 0..D {
            self.round();
        }
        self.0[0] ^ self.0[1] ^ self.0[2] ^ self.0[3]
    }
}

/// SipHash-c-d of an arbitrary message (used by the tests against the standard library's
/// SipHash-2-4 and by [`sip13_17`]'s reference check).
#[cfg(test)]
fn sip_bytes<const C: usize, const D: usize>(k0: u64, k1: u64, msg: &[u8]) -> u64 {
    let mut s = Sip::new(k0, k1);
    let mut chunks = msg.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        s.compress::<C>(u64::from_le_bytes(word));
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    let tail = u64::from_le_bytes(last) | ((msg.len() as u64 & 0xff) << 56);
    s.compress::<C>(tail);
    s.finish::<D>()
}

/// SipHash-1-3 of the 17-byte message `bits.to_le_bytes() ++ [family]`, unrolled.
#[inline]
fn sip13_17(k0: u64, k1: u64, bits: u128, family: u8) -> u64 {
    let mut s = Sip::new(k0, k1);
    s.compress::<1>(bits as u64);
    s.compress::<1>((bits >> 64) as u64);
    s.compress::<1>(u64::from(family) | (17u64 << 56));
    s.finish::<3>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hasher;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    #[allow(deprecated)]
    fn generic_siphash_2_4_matches_the_standard_library() {
        for len in 0..40usize {
            let msg: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            let mut std_hasher =
                std::hash::SipHasher::new_with_keys(0x0706050403020100, 0x0f0e0d0c0b0a0908);
            std_hasher.write(&msg);
            assert_eq!(
                sip_bytes::<2, 4>(0x0706050403020100, 0x0f0e0d0c0b0a0908, &msg),
                std_hasher.finish(),
                "len {len}"
            );
        }
    }

    #[test]
    fn unrolled_address_hash_equals_the_generic_one() {
        let seed = HashSeed::new(11, 22);
        let v4 = Ipv4Addr::new(203, 0, 113, 9);
        let mut msg = u128::from(v4.to_bits()).to_le_bytes().to_vec();
        msg.push(4);
        assert_eq!(
            seed.hash_addr(IpAddr::V4(v4)),
            sip_bytes::<1, 3>(11, 22, &msg)
        );
        let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let mut msg = v6.to_bits().to_le_bytes().to_vec();
        msg.push(6);
        assert_eq!(
            seed.hash_addr(IpAddr::V6(v6)),
            sip_bytes::<1, 3>(11, 22, &msg)
        );
    }

    #[test]
    fn families_and_keys_separate_hashes() {
        let seed = HashSeed::FIXED;
        let v4 = IpAddr::V4(Ipv4Addr::new(0, 0, 0, 1));
        let v6 = IpAddr::V6(Ipv6Addr::from_bits(1));
        assert_ne!(seed.hash_addr(v4), seed.hash_addr(v6));
        assert_ne!(seed.hash_addr(v4), HashSeed::new(1, 2).hash_addr(v4));
        assert_ne!(HashSeed::random(), HashSeed::random());
    }
}
