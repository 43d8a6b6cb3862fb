"""Port-scan detection: classify packets, replay captures, script responses.

The work is done by the Rust library ``portsentry-core``; this package exposes it
with typed classes.
"""

from portsentry._portsentry import PortsentryError, __version__

__all__ = ["PortsentryError", "__version__"]
