"""Watching which sockets a process tree listens on (used by tests/conftest.py)."""

from __future__ import annotations

import ipaddress
import os
import threading

import psutil

# The kernel's socket tables of this network namespace (proc(5)): each row gives the
# local and remote address as hex, the TCP state, and the socket's inode.
TABLES = {"/proc/net/tcp": "tcp", "/proc/net/tcp6": "tcp", "/proc/net/udp": "udp", "/proc/net/udp6": "udp"}
TCP_LISTEN = "0A"


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address (::ffff:127.0.0.1)."""
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def decode_address(hex_address: str) -> tuple[str, int]:
    """(ip, port) of an address as /proc/net/{tcp,udp}[6] write it: the IP in 32-bit
    words of host byte order (little-endian here), then ':' and the port, both hex;
    "0100007F:1F90" is ("127.0.0.1", 8080)."""
    ip, port = hex_address.split(":")
    raw = b"".join(bytes.fromhex(ip[i : i + 8])[::-1] for i in range(0, len(ip), 8))
    return str(ipaddress.ip_address(raw)), int(port, 16)


def listeners_beyond_loopback() -> dict[int, str]:
    """Every socket of this network namespace that listens beyond loopback, by inode:
    TCP sockets in LISTEN and unconnected UDP sockets (no remote port), bound to a port
    on an address that is not loopback ("0.0.0.0:PORT", "[::]:PORT", ...). Whose they
    are is not known here: see `sockets_of`."""
    found: dict[int, str] = {}
    for path, kind in TABLES.items():
        try:
            with open(path) as table:
                rows = table.read().splitlines()[1:]
        except OSError:  # no IPv6 in this kernel, say
            continue
        for row in rows:
            fields = row.split()
            listening = fields[3] == TCP_LISTEN if kind == "tcp" else fields[2].endswith(":0000")
            if not listening:
                continue
            ip, port = decode_address(fields[1])
            if port and not is_loopback(ip):
                found[int(fields[9])] = f"{ip}:{port}" if "." in ip else f"[{ip}]:{port}"
    return found


def sockets_of(process: psutil.Process) -> set[int]:
    """The inodes of the sockets `process` holds open (its /proc/PID/fd links
    "socket:[INODE]"); empty once it has exited."""
    inodes = set()
    try:
        with os.scandir(f"/proc/{process.pid}/fd") as fds:
            for fd in fds:
                try:
                    target = os.readlink(fd.path)
                except OSError:  # closed meanwhile
                    continue
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


class ListenerWatch(threading.Thread):
    """Samples, every `interval` seconds, the listening TCP/UDP sockets of this process
    and all its descendants (a local Ray's GCS, raylet, agents and workers, a notebook's
    kernel, ...), and keeps those bound beyond loopback, as "NAME[PID] on IP:PORT".

    A sample reads the namespace's socket tables once (`listeners_beyond_loopback`)
    and looks for the owner of a socket among the tree's processes only when one
    listens beyond loopback that was not seen before: sampling costs about a
    millisecond, not a scan of every descendant's descriptors (a local Ray has a
    dozen processes or more, each with hundreds). A socket found to be no one's in
    the tree is not looked at again while the watch runs."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.interval, self.found = interval, set()
        self._others: set[int] = set()  # inodes of listeners outside the tree
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(self.interval):
            listeners = {inode: where for inode, where in listeners_beyond_loopback().items()
                         if inode not in self._others}  # fmt: skip
            if not listeners:
                continue
            for process in [me, *me.children(recursive=True)]:
                for inode in sockets_of(process) & listeners.keys():
                    try:
                        name = process.name()
                    except psutil.Error:
                        name = "?"
                    self.found.add(f"{name}[{process.pid}] on {listeners.pop(inode)}")
            self._others |= listeners.keys()

    def stop(self) -> set[str]:
        self._stop_event.set()
        self.join()
        return self.found
