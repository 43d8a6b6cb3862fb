//! Where frames come from: capture files (and, on Linux, live capture).
//!
//! Every source yields frames with their own capture timestamp and link type, ready for
//! [`classify`](crate::classify::classify).

#[cfg(feature = "pcap")]
pub mod pcap;
