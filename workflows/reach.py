"""Whether a server listens at an address, asked with one TCP connection: an answer
in seconds where a client's own retries take minutes (Ray's GCS client, MLflow's
REST client)."""

from __future__ import annotations

import socket
from collections.abc import Iterable

CONNECT_TIMEOUT_S = 5.0


def unanswered(hosts: Iterable[str], port: int, timeout_s: float = CONNECT_TIMEOUT_S) -> str | None:
    """None when one of `hosts` accepts a TCP connection on `port` within `timeout_s`
    seconds (each tried in turn, repeats once); else why the first did not, as the
    system says it (`connection refused`, `timed out`, `name or service not known`)."""
    why = ""
    for host in dict.fromkeys(hosts):
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            return None
        except OSError as err:
            why = why or (err.strerror or type(err).__name__).lower()
    return why or "no host to ask"
