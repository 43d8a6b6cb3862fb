//! The one integration-test binary of `portsentry-core`; each topic is a submodule.

#[path = "integration/support.rs"]
mod support;

#[cfg(feature = "pcap")]
#[path = "integration/answers.rs"]
mod answers;
#[cfg(feature = "pcap")]
#[path = "integration/captures.rs"]
mod captures;
#[path = "integration/fuzz_corpus.rs"]
mod fuzz_corpus;
#[cfg(feature = "pcap")]
#[path = "integration/pcap_files.rs"]
mod pcap_files;
#[cfg(feature = "pcap")]
#[path = "integration/replay.rs"]
mod replay;
