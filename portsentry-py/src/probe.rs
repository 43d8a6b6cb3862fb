//! `Probe` and `classify`: one frame in, what it tells the detector out.

use std::net::IpAddr;

use pyo3::prelude::*;

use portsentry_core::{Probe, Protocol, ScanKind, TcpFlags, Timestamp, classify};

use crate::link::LinkArg;
use crate::vocab::{PROTOCOL, SCAN_KIND, argument_error};

/// What one packet tells the detector: who probed which port, how, and when.
#[pyclass(frozen, eq, hash, module = "portsentry", name = "Probe")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PyProbe(pub(crate) Probe);

/// Every scan kind by its name, with the protocol it implies.
const KINDS: [(&str, ScanKind); 9] = [
    ("syn", ScanKind::Syn),
    ("fin", ScanKind::Fin),
    ("null", ScanKind::Null),
    ("xmas", ScanKind::Xmas),
    ("maimon", ScanKind::Maimon),
    ("ack", ScanKind::Ack),
    ("fragment", ScanKind::Fragment),
    ("udp", ScanKind::Udp),
    ("connect", ScanKind::Connect),
];

/// An address given as a string or an `ipaddress` object.
pub(crate) fn address_arg(
    py: Python<'_>,
    what: &str,
    value: &Bound<'_, PyAny>,
) -> PyResult<IpAddr> {
    if let Ok(text) = value.extract::<String>() {
        return text
            .trim()
            .parse()
            .map_err(|_| argument_error(py, &format!("{what}: {text:?} is not an IP address")));
    }
    value
        .extract::<IpAddr>()
        .map_err(|_| argument_error(py, &format!("{what}: expected an IP address, got {value}")))
}

fn scan_kind(py: Python<'_>, kind: &str, flags: Option<u8>) -> PyResult<ScanKind> {
    if kind == "other" {
        let flags = flags
            .ok_or_else(|| argument_error(py, "kind \"other\" needs flags= (the TCP flag byte)"))?;
        return Ok(ScanKind::Other(TcpFlags(flags)));
    }
    if flags.is_some() {
        return Err(argument_error(py, "flags= is only for kind \"other\""));
    }
    KINDS
        .iter()
        .find(|(name, _)| *name == kind)
        .map(|&(_, k)| k)
        .ok_or_else(|| {
            argument_error(
                py,
                &format!(
                    "unknown scan kind {kind:?}: expected syn, fin, null, xmas, maimon, ack, other, \
                     fragment, udp or connect"
                ),
            )
        })
}

/// A timestamp from seconds since the epoch, rounded to the microsecond (a float seldom holds
/// a pcap time exactly). Negative and NaN values become 0, huge ones the largest timestamp.
pub(crate) fn timestamp(secs: f64) -> Timestamp {
    // `as` saturates and maps NaN to 0.
    Timestamp::from_micros((secs * 1_000_000.0).round() as u64)
}

/// Seconds since the epoch as a float, from a timestamp.
pub(crate) fn secs(at: Timestamp) -> f64 {
    at.as_secs_f64()
}

#[pymethods]
impl PyProbe {
    /// Builds a probe by hand (for `Detector.observe`); `classify` builds them from frames.
    #[new]
    #[pyo3(signature = (source, destination, destination_port, kind, *, source_port = 0, at = 0.0, ip_options = false, flags = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        destination: &Bound<'_, PyAny>,
        destination_port: u16,
        kind: &str,
        source_port: u16,
        at: f64,
        ip_options: bool,
        flags: Option<u8>,
    ) -> PyResult<Self> {
        let kind = scan_kind(py, kind, flags)?;
        let protocol = if kind == ScanKind::Udp {
            Protocol::Udp
        } else {
            Protocol::Tcp
        };
        Ok(Self(Probe {
            at: timestamp(at),
            source: address_arg(py, "source", source)?,
            destination: address_arg(py, "destination", destination)?,
            protocol,
            source_port,
            destination_port,
            kind,
            ip_options,
        }))
    }

    /// The sender (the suspected scanner), as text.
    #[getter]
    fn source(&self) -> String {
        self.0.source.to_string()
    }

    /// The address the packet was sent to, as text.
    #[getter]
    fn destination(&self) -> String {
        self.0.destination.to_string()
    }

    /// `Protocol.TCP` or `Protocol.UDP`.
    #[getter]
    fn protocol<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        PROTOCOL.member(py, self.0.protocol.as_str())
    }

    /// The sender's port (0 for a `fragment` probe whose header was cut).
    #[getter]
    fn source_port(&self) -> u16 {
        self.0.source_port
    }

    /// The probed port.
    #[getter]
    fn destination_port(&self) -> u16 {
        self.0.destination_port
    }

    /// What kind of probe it is (a `ScanKind`).
    #[getter]
    fn kind<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        SCAN_KIND.member(py, self.0.kind.as_str())
    }

    /// The TCP flag byte of an `other` probe; None for every other kind.
    #[getter]
    fn flags(&self) -> Option<u8> {
        match self.0.kind {
            ScanKind::Other(flags) => Some(flags.bits()),
            _ => None,
        }
    }

    /// True when the IPv4 header carried options; always False for IPv6.
    #[getter]
    fn ip_options(&self) -> bool {
        self.0.ip_options
    }

    /// When the packet was captured, in seconds since the Unix epoch.
    #[getter]
    fn at(&self) -> f64 {
        secs(self.0.at)
    }

    fn __repr__(&self) -> String {
        format!("Probe({})", probe_fields(&self.0))
    }
}

/// `source='...', destination='...', protocol='tcp', ...` for reprs.
pub(crate) fn probe_fields(p: &Probe) -> String {
    let mut text = format!(
        "source='{}', destination='{}', protocol='{}', source_port={}, destination_port={}, kind='{}'",
        p.source,
        p.destination,
        p.protocol,
        p.source_port,
        p.destination_port,
        p.kind.as_str(),
    );
    if let ScanKind::Other(flags) = p.kind {
        text.push_str(&format!(", flags=0x{:02x}", flags.bits()));
    }
    if p.ip_options {
        text.push_str(", ip_options=True");
    }
    text.push_str(&format!(", at={:.6}", secs(p.at)));
    text
}

/// Classifies one captured frame: the `Probe` it is, or None when it is not a probe (not IP,
/// not TCP/UDP, a reply, part of a connection, a later fragment, cut short or malformed).
///
/// Never raises for any frame content; only an unknown `link` raises `ArgumentError`.
#[pyfunction(name = "classify")]
#[pyo3(signature = (frame, *, link = LinkArg::default(), ts = 0.0))]
pub(crate) fn py_classify(
    py: Python<'_>,
    frame: &[u8],
    link: LinkArg,
    ts: f64,
) -> PyResult<Option<PyProbe>> {
    let link = link.resolve(py)?;
    Ok(classify(timestamp(ts), link, frame).ok().map(PyProbe))
}
