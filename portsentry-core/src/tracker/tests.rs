use super::*;
use std::net::Ipv4Addr;

fn v4(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from_bits(n))
}

fn secs(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn tracker(capacity: usize, window_s: u64, trigger: u32) -> Tracker {
    Tracker::new(
        capacity,
        Duration::from_secs(window_s),
        trigger,
        HashSeed::FIXED,
    )
    .unwrap()
}

fn below(n: u32) -> Observation {
    Observation::Below { distinct_ports: n }
}

fn crossed(n: u32) -> Observation {
    Observation::Crossed { distinct_ports: n }
}

/// Checks the internal structure: lists, index and counts agree.
fn check_invariants(t: &Tracker) {
    let mut seen = 0;
    for list in [PROBATION, PROTECTED] {
        let mut n = 0;
        let mut s = t.lists[list].head;
        let mut prev = NIL;
        while s != NIL {
            let slot = &t.slots[s as usize];
            assert_eq!(usize::from(slot.list), list);
            assert_eq!(t.links[s as usize].prev, prev);
            let (_, found) = t
                .find(slot.addr, u64::from(slot.hash))
                .expect("listed slot is indexed");
            assert_eq!(found, s);
            prev = s;
            s = t.links[s as usize].next;
            n += 1;
        }
        assert_eq!(t.lists[list].tail, prev);
        assert_eq!(t.lists[list].len, n);
        seen += n;
    }
    let indexed = t.index.iter().filter(|&&s| s != EMPTY).count();
    assert_eq!(indexed, seen);
    for (pos, &s) in t.index.iter().enumerate() {
        let bit = t.occupied[pos / 64] & (1 << (pos % 64)) != 0;
        assert_eq!(bit, s != EMPTY, "occupancy bit of position {pos}");
    }
    assert!(seen <= t.capacity);
    assert!(t.lists[PROTECTED].len <= t.protected_max);
}

#[test]
fn construction_errors() {
    let w = Duration::from_secs(1);
    assert!(matches!(
        Tracker::new(0, w, 1, HashSeed::FIXED),
        Err(TrackerError::Capacity { capacity: 0, .. })
    ));
    assert_eq!(
        Tracker::new(1, Duration::from_micros(999), 1, HashSeed::FIXED).unwrap_err(),
        TrackerError::ZeroWindow
    );
    assert_eq!(
        Tracker::new(1, w, 65, HashSeed::FIXED).unwrap_err(),
        TrackerError::TriggerTooLarge {
            trigger: 65,
            max: 64
        }
    );
    assert!(Tracker::new(1, w, 64, HashSeed::FIXED).is_ok());
}

#[test]
fn trigger_zero_and_one_cross_on_the_first_probe() {
    for trigger in [0, 1] {
        let mut t = tracker(8, 60, trigger);
        assert_eq!(t.trigger(), 1);
        assert_eq!(t.record(v4(1), Protocol::Tcp, 1, secs(0)), crossed(1));
        assert_eq!(
            t.record(v4(1), Protocol::Tcp, 2, secs(1)),
            Observation::Quiet
        );
        assert_eq!(t.record(v4(2), Protocol::Udp, 9, secs(1)), crossed(1));
    }
}

#[test]
fn trigger_n_crosses_on_the_nth_distinct_pair() {
    let mut t = tracker(8, 60, 3);
    let s = v4(7);
    assert_eq!(t.record(s, Protocol::Tcp, 10, secs(0)), below(1));
    assert_eq!(
        t.record(s, Protocol::Tcp, 10, secs(1)),
        below(1),
        "retransmit"
    );
    assert_eq!(
        t.record(s, Protocol::Tcp, 10, secs(2)),
        below(1),
        "retransmit"
    );
    assert_eq!(
        t.record(s, Protocol::Udp, 10, secs(3)),
        below(2),
        "udp is distinct"
    );
    assert_eq!(t.record(s, Protocol::Tcp, 11, secs(4)), crossed(3));
    assert_eq!(t.record(s, Protocol::Tcp, 12, secs(5)), Observation::Quiet);
    assert_eq!(t.stats().crossed, 1);
}

#[test]
fn old_probes_age_out_of_the_window() {
    let mut t = tracker(8, 10, 3);
    let s = v4(7);
    assert_eq!(t.record(s, Protocol::Tcp, 1, secs(0)), below(1));
    assert_eq!(t.record(s, Protocol::Tcp, 2, secs(5)), below(2));
    // Port 1 was 10 s ago: out of the window.
    assert_eq!(t.record(s, Protocol::Tcp, 3, secs(10)), below(2));
    assert_eq!(t.record(s, Protocol::Tcp, 4, secs(11)), crossed(3));
}

#[test]
fn retransmission_refreshes_the_port_time() {
    let mut t = tracker(8, 10, 3);
    let s = v4(7);
    t.record(s, Protocol::Tcp, 1, secs(0));
    t.record(s, Protocol::Tcp, 2, secs(1));
    t.record(s, Protocol::Tcp, 1, secs(9)); // port 1 seen again
    assert_eq!(
        t.record(s, Protocol::Tcp, 3, secs(12)),
        below(2),
        "port 2 aged out"
    );
    assert_eq!(t.record(s, Protocol::Tcp, 4, secs(13)), crossed(3));
}

#[test]
fn quiet_period_lasts_one_window_then_counting_restarts() {
    let mut t = tracker(8, 10, 2);
    let s = v4(7);
    t.record(s, Protocol::Tcp, 1, secs(0));
    assert_eq!(t.record(s, Protocol::Tcp, 2, secs(1)), crossed(2));
    assert_eq!(t.get(s).unwrap().quiet_until, Some(secs(11)));
    assert_eq!(t.record(s, Protocol::Tcp, 3, secs(10)), Observation::Quiet);
    assert_eq!(t.record(s, Protocol::Tcp, 3, secs(11)), below(1));
    assert_eq!(t.record(s, Protocol::Tcp, 4, secs(12)), crossed(2));
}

#[test]
fn rearm_lets_the_next_probe_cross_again() {
    let mut t = tracker(8, 60, 2);
    let s = v4(7);
    t.record(s, Protocol::Tcp, 1, secs(0));
    t.record(s, Protocol::Tcp, 2, secs(0));
    assert!(t.rearm(s));
    assert_eq!(t.record(s, Protocol::Tcp, 2, secs(1)), crossed(2));
    assert!(!t.rearm(v4(99)));
}

#[test]
fn ipv4_mapped_sources_are_the_ipv4_source() {
    let mut t = tracker(8, 60, 2);
    let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 5).to_ipv6_mapped());
    assert_eq!(t.record(mapped, Protocol::Tcp, 1, secs(0)), below(1));
    assert_eq!(
        t.record("203.0.113.5".parse().unwrap(), Protocol::Tcp, 2, secs(0)),
        crossed(2)
    );
    assert_eq!(t.len(), 1);
    let v6: IpAddr = "2001:db8::5".parse().unwrap();
    assert_eq!(t.record(v6, Protocol::Tcp, 1, secs(0)), below(1));
    // A single probe sits in the first-probe tier, not in a full slot.
    assert_eq!(t.len(), 1);
    assert_eq!(t.stats().first_probe_sources, 1);
    assert_eq!(t.get_at(v6, secs(1)).map(|s| s.stored_ports), Some(1));
}

#[test]
fn forget_and_expire_drop_sources() {
    let mut t = tracker(8, 10, 5);
    for i in 0..4 {
        t.record(v4(i), Protocol::Tcp, 1, secs(u64::from(i)));
        t.record(v4(i), Protocol::Tcp, 2, secs(u64::from(i)));
    }
    // A first probe alone is forgotten too.
    t.record(v4(50), Protocol::Tcp, 1, secs(3));
    assert!(t.forget(v4(50)));
    assert!(t.get_at(v4(50), secs(3)).is_none());
    assert!(t.forget(v4(0)));
    assert!(!t.forget(v4(0)));
    assert_eq!(t.len(), 3);
    assert_eq!(
        t.expire(secs(12)),
        2,
        "sources 1 and 2 last seen ≥ 10 s ago"
    );
    assert_eq!(t.len(), 1);
    assert!(t.get(v4(3)).is_some());
    check_invariants(&t);
}

#[test]
fn single_port_flood_never_evicts_a_protected_source() {
    let cap = 64;
    let mut t = tracker(cap, 3600, 4);
    let scanner = v4(0xCB00_7101);
    assert_eq!(t.record(scanner, Protocol::Tcp, 1, secs(0)), below(1));
    assert_eq!(t.record(scanner, Protocol::Tcp, 2, secs(0)), below(2));
    assert!(t.get(scanner).unwrap().protected);
    for i in 0..100_000u32 {
        t.record(v4(0x0A00_0000 + i), Protocol::Tcp, 80, secs(1));
        assert!(t.len() <= cap);
    }
    assert_eq!(t.record(scanner, Protocol::Tcp, 3, secs(2)), below(3));
    assert_eq!(t.record(scanner, Protocol::Tcp, 4, secs(2)), crossed(4));
    let stats = t.stats();
    // The flood never got a full slot: it went through the first-probe tier.
    assert_eq!(stats.tracked, 1);
    assert_eq!(stats.evicted_probation, 0);
    assert!(stats.first_probe_generations >= 100_000 / (cap as u64 * 16));
    check_invariants(&t);
}

#[test]
fn a_single_probe_survives_f_minus_one_newer_single_probes() {
    let cap = 40;
    let mut t = tracker(cap, 3600, 3);
    let f = cap * FIRST_PROBES_PER_SLOT;
    assert_eq!(t.stats().first_probe_capacity, f);
    let lone = v4(1);
    assert_eq!(t.record(lone, Protocol::Udp, 7, secs(1)), below(1));
    for i in 0..f as u32 {
        t.record(v4(5000 + i), Protocol::Udp, 7, secs(1));
    }
    assert!(t.get_at(lone, secs(1)).is_some(), "survives F newcomers");
    // Its second pair gives it a full slot with both pairs.
    assert_eq!(t.record(lone, Protocol::Tcp, 9, secs(2)), below(2));
    assert!(t.get(lone).unwrap().protected);
    assert_eq!(t.stats().first_probe_overflows, 0);
    // Another lone probe is forgotten once 2F newer ones have come.
    let other = v4(2);
    t.record(other, Protocol::Udp, 7, secs(3));
    for i in 0..(2 * f) as u32 {
        t.record(v4(100_000 + i), Protocol::Udp, 7, secs(3));
    }
    assert!(t.get_at(other, secs(3)).is_none());
    assert_eq!(t.record(other, Protocol::Tcp, 9, secs(4)), below(1));
    assert_eq!(t.len(), 1, "single probes never took a full slot");
    check_invariants(&t);
}

#[test]
fn a_first_probe_older_than_the_window_does_not_count() {
    let mut t = tracker(8, 10, 2);
    assert_eq!(t.record(v4(1), Protocol::Tcp, 1, secs(0)), below(1));
    assert_eq!(t.record(v4(1), Protocol::Tcp, 2, secs(10)), below(1));
    assert_eq!(t.record(v4(1), Protocol::Tcp, 3, secs(19)), crossed(2));
}

#[test]
fn protected_overflow_demotes_the_least_recent_and_stale_entries_go_first() {
    let cap = 8;
    let mut t = tracker(cap, 10, 5);
    for i in 0..7u32 {
        t.record(v4(i), Protocol::Tcp, 1, secs(0));
        t.record(v4(i), Protocol::Tcp, 2, secs(0));
    }
    assert_eq!(t.protected_capacity(), 6);
    assert_eq!(t.stats().protected, 6);
    assert_eq!(t.stats().demoted, 1);
    assert!(
        !t.get(v4(0)).unwrap().protected,
        "the least recent was demoted"
    );
    // Later, all evidence is stale: a newcomer takes the stale protected tail, not probation.
    t.record(v4(100), Protocol::Tcp, 1, secs(100));
    t.record(v4(100), Protocol::Tcp, 2, secs(100));
    assert_eq!(t.stats().evicted_stale, 0, "a free slot was still there");
    t.record(v4(101), Protocol::Tcp, 1, secs(100));
    t.record(v4(101), Protocol::Tcp, 2, secs(100));
    assert_eq!(t.stats().evicted_stale, 1);
    // v4(100)'s promotion demoted v4(1) too; the stale protected tail is now v4(2), and it
    // goes before the demoted (probation) v4(0) and v4(1).
    assert!(t.get(v4(2)).is_none());
    assert!(t.get(v4(0)).is_some() && t.get(v4(1)).is_some());
    check_invariants(&t);
}

#[test]
fn capacity_one_still_works() {
    let mut t = tracker(1, 60, 1);
    assert_eq!(t.record(v4(1), Protocol::Tcp, 1, secs(0)), crossed(1));
    assert_eq!(t.record(v4(2), Protocol::Tcp, 1, secs(0)), crossed(1));
    assert_eq!(t.len(), 1);
    assert_eq!(
        t.record(v4(2), Protocol::Tcp, 2, secs(0)),
        Observation::Quiet
    );
    let mut t = tracker(1, 60, 2);
    assert_eq!(t.record(v4(1), Protocol::Tcp, 1, secs(0)), below(1));
    assert_eq!(t.record(v4(2), Protocol::Tcp, 1, secs(0)), below(1));
    assert_eq!(t.len(), 0);
    assert_eq!(t.record(v4(2), Protocol::Tcp, 2, secs(0)), crossed(2));
    assert_eq!(t.record(v4(3), Protocol::Tcp, 2, secs(0)), below(1));
    assert_eq!(t.record(v4(3), Protocol::Tcp, 3, secs(0)), crossed(2));
    assert_eq!(t.len(), 1);
    check_invariants(&t);
}

#[test]
fn crafted_collisions_are_capped_not_unbounded() {
    // Find addresses that share one home position under the (known) fixed seed.
    let mut t = tracker(4096, 60, 3);
    let home = |a: IpAddr| HashSeed::FIXED.hash_addr(a) as usize & t.mask;
    let target = home(v4(0));
    let colliding: Vec<IpAddr> = (1..u32::MAX)
        .map(v4)
        .filter(|&a| home(a) == target)
        .take(MAX_PROBE_DISTANCE + 5)
        .collect();
    for (i, &a) in colliding.iter().enumerate() {
        assert_eq!(t.record(a, Protocol::Tcp, 1, secs(0)), below(1));
        let obs = t.record(a, Protocol::Tcp, 2, secs(0));
        assert_eq!(obs, below(2));
        let tracked = t.get(a).is_some();
        assert_eq!(tracked, i <= MAX_PROBE_DISTANCE, "entry {i}");
    }
    assert_eq!(t.stats().untracked_collisions, 4);
    check_invariants(&t);
}

#[test]
fn memory_is_fixed_and_constant() {
    let mut t = tracker(1000, 60, 5);
    let before = t.memory_bytes();
    assert!(before >= 1000 * (size_of::<Slot>() + 3 * 8));
    assert_eq!(size_of::<Slot>(), 64);
    for i in 0..50_000u32 {
        t.record(
            v4(i),
            Protocol::Tcp,
            (i % 7) as u16,
            secs(u64::from(i / 100)),
        );
        if i % 3 == 0 {
            t.forget(v4(i / 2));
        }
    }
    assert_eq!(t.memory_bytes(), before);
    assert_eq!(t.slots.capacity(), 1000);
    check_invariants(&t);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Probe {
            src: u8,
            udp: bool,
            port: u8,
            dt_ms: u16,
        },
        Forget(u8),
        Expire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (any::<u8>(), any::<bool>(), 0u8..12, 0u16..3000)
                .prop_map(|(src, udp, port, dt_ms)| Op::Probe { src, udp, port, dt_ms }),
            1 => any::<u8>().prop_map(Op::Forget),
            1 => Just(Op::Expire),
        ]
    }

    proptest! {
        #[test]
        fn structure_and_bounds_hold(
            cap in 1usize..12,
            trigger in 0u32..5,
            ops in proptest::collection::vec(op(), 0..400),
        ) {
            let mut t = Tracker::new(cap, Duration::from_secs(5), trigger, HashSeed::FIXED).unwrap();
            let mem = t.memory_bytes();
            let mut now = 0u64;
            for op in ops {
                match op {
                    Op::Probe { src, udp, port, dt_ms } => {
                        now += u64::from(dt_ms) * 1000;
                        let proto = if udp { Protocol::Udp } else { Protocol::Tcp };
                        let obs = t.record(v4(u32::from(src % 24)), proto, u16::from(port), Timestamp::from_micros(now));
                        if let Observation::Below { distinct_ports } | Observation::Crossed { distinct_ports } = obs {
                            prop_assert!(distinct_ports >= 1 && distinct_ports <= t.trigger());
                        }
                    }
                    Op::Forget(src) => { t.forget(v4(u32::from(src % 24))); }
                    Op::Expire => { t.expire(Timestamp::from_micros(now)); }
                }
                prop_assert!(t.len() <= cap);
                check_invariants(&t);
            }
            prop_assert_eq!(t.memory_bytes(), mem);
        }
    }
}

#[test]
fn protected_source_survives_seven_eighths_of_p_newer_protected_sources() {
    let cap = 80;
    let mut t = tracker(cap, 3600, 10);
    let p = t.protected_capacity();
    assert_eq!(p, 60);
    let scanner = v4(1);
    t.record(scanner, Protocol::Tcp, 1, secs(0));
    t.record(scanner, Protocol::Tcp, 2, secs(0));
    let survivors = 7 * p / 8 - 1;
    for i in 0..survivors as u32 {
        t.record(v4(100 + i), Protocol::Tcp, 1, secs(1));
        t.record(v4(100 + i), Protocol::Tcp, 2, secs(1));
        // Busy: touching it again keeps its place near the front or moves it there.
        if i % 7 == 0 {
            t.record(v4(100), Protocol::Tcp, 1, secs(1));
        }
    }
    assert!(t.get(scanner).unwrap().protected);
    // Enough newer protected sources demote it, and then single probes can evict it.
    for i in 0..p as u32 {
        t.record(v4(1000 + i), Protocol::Tcp, 1, secs(2));
        t.record(v4(1000 + i), Protocol::Tcp, 2, secs(2));
    }
    assert!(t.get(scanner).is_none_or(|s| !s.protected));
    check_invariants(&t);
}

#[test]
fn large_triggers_count_past_the_inline_hits() {
    let mut t = tracker(4, 60, 20);
    let s = v4(3);
    for port in 0..19u16 {
        assert_eq!(
            t.record(s, Protocol::Udp, port, secs(0)),
            below(u32::from(port) + 1)
        );
        assert_eq!(
            t.record(s, Protocol::Udp, port, secs(1)),
            below(u32::from(port) + 1)
        );
    }
    assert_eq!(t.record(s, Protocol::Udp, 19, secs(2)), crossed(20));
    // Other sources' hits are separate.
    assert_eq!(t.record(v4(4), Protocol::Udp, 5, secs(2)), below(1));
}

#[test]
fn defaults_keep_a_first_probe_through_a_million_newer_sources_in_32_mib() {
    let defaults = crate::Config::default();
    let mut t = Tracker::new(
        defaults.max_tracked_sources,
        defaults.scan_window,
        5,
        HashSeed::random(),
    )
    .unwrap();
    let mib = t.memory_bytes() as f64 / f64::from(1 << 20);
    assert!(mib <= 32.0, "{mib:.1} MiB");
    assert_eq!(t.stats().memory_bytes, t.memory_bytes());
    let scanner: IpAddr = "198.51.100.66".parse().unwrap();
    let at = Timestamp::from_secs(1_000);
    assert_eq!(t.record(scanner, Protocol::Tcp, 11, at), below(1));
    for i in 0..1_000_000u32 {
        t.record(v4(0x0A00_0000 + i), Protocol::Tcp, 11, at);
    }
    for (n, port) in [(2, 12), (3, 13), (4, 14)] {
        assert_eq!(t.record(scanner, Protocol::Tcp, port, at), below(n));
    }
    assert_eq!(t.record(scanner, Protocol::Tcp, 15, at), crossed(5));
    assert_eq!(t.stats().first_probe_overflows, 0);
    assert_eq!(t.len(), 1);
}

#[test]
fn pairs_at_lists_the_stored_pairs_inside_the_window() {
    let mut t = tracker(8, 10, 20);
    let s = v4(7);
    for (port, at) in [(1, 0), (2, 1), (3, 5), (4, 6)] {
        t.record(s, Protocol::Tcp, port, secs(at));
    }
    t.record(s, Protocol::Udp, 53, secs(6));
    let mut pairs = Vec::new();
    t.pairs_at(s, secs(10), &mut pairs);
    pairs.sort();
    assert_eq!(
        pairs,
        [
            (Protocol::Tcp, 2),
            (Protocol::Tcp, 3),
            (Protocol::Tcp, 4),
            (Protocol::Udp, 53)
        ]
    );
    pairs.clear();
    t.pairs_at(v4(8), secs(10), &mut pairs);
    assert!(pairs.is_empty());
}
