"""Watching which sockets a process tree listens on (used by tests/conftest.py)."""

from __future__ import annotations

import ipaddress
import threading

import psutil


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address (::ffff:127.0.0.1)."""
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class ListenerWatch(threading.Thread):
    """Samples, every `interval` seconds, the listening TCP/UDP sockets of this process
    and all its descendants (a local Ray's GCS, raylet, agents and workers, a notebook's
    kernel, ...), and keeps those bound beyond loopback."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval, self.found = interval, set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(self.interval):
            for process in [me, *me.children(recursive=True)]:
                try:
                    name = process.name()
                    for conn in process.net_connections(kind="inet"):
                        listening = conn.status == psutil.CONN_LISTEN or (conn.type == 2 and not conn.raddr)
                        if listening and conn.laddr and not is_loopback(conn.laddr.ip):
                            self.found.add(f"{name}[{process.pid}] on {conn.laddr.ip}:{conn.laddr.port}")
                except psutil.Error:
                    continue

    def stop(self) -> set[str]:
        self._stop_event.set()
        self.join()
        return self.found
