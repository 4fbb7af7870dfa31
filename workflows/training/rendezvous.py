"""The torch.distributed rendezvous of Ray Train's workers, bound to one address.

Ray Train's own torch backend (`ray.train.torch.config._TorchBackend`) lets
`init_process_group("tcp://ADDR:PORT")` start the rendezvous store (`TCPStore`) on
worker 0, and that store listens on every interface whatever ADDR is (pytorch#173909):
a private local run would accept connections from the whole network. Here worker 0
binds the listening socket itself, on its node's address (127.0.0.1 for a local Ray,
see `workflows.distributed.runtime.use_loopback_only`), and hands it to the store
(`TCPStore(master_listen_fd=...)`); the process group is then built on that store.
On loopback the gloo transport is kept there too (GLOO_SOCKET_IFNAME=lo).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from ray.train.torch import TorchConfig
from ray.train.torch.config import _TorchBackend

if TYPE_CHECKING:
    from ray.train._internal.base_worker_group import BaseWorkerGroup

_listener: socket.socket | None = None  # worker 0's bound socket, kept open for the store


def _bind() -> tuple[str, int, int]:
    """On worker 0: a listening socket on this node's address; (address, port, fd)."""
    import ray

    global _listener
    address = ray.util.get_node_ip_address()
    _listener = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
    _listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    _listener.bind((address, 0))
    _listener.listen(128)
    return address, _listener.getsockname()[1], _listener.fileno()


def _join(address: str, port: int, fd: int | None, world_rank: int, world_size: int, timeout_s: int) -> None:
    """On every worker: the store (served from `fd` on worker 0) and the gloo process group on it."""
    import torch.distributed as dist

    if address.startswith("127."):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    timeout = timedelta(seconds=timeout_s)
    store = dist.TCPStore(address, port, world_size, is_master=world_rank == 0, timeout=timeout,
                          master_listen_fd=fd, use_libuv=False)  # fmt: skip
    dist.init_process_group("gloo", store=store, rank=world_rank, world_size=world_size, timeout=timeout)


class _BoundTorchBackend(_TorchBackend):
    """Ray Train's torch backend, with the rendezvous of this module (CPU, gloo)."""

    def on_start(self, worker_group: BaseWorkerGroup, backend_config: BoundTorchConfig) -> None:  # type: ignore[override]
        import ray
        from ray.train._internal.worker_group import WorkerGroup as V1WorkerGroup
        from ray.train.torch.config import _set_torch_distributed_env_vars

        address, port, fd = worker_group.execute_single(0, _bind)
        if not isinstance(worker_group, V1WorkerGroup):  # as Ray Train's own backend does
            worker_group.execute(_set_torch_distributed_env_vars)
        size = len(worker_group)
        ray.get([
            worker_group.execute_single_async(i, _join, address=address, port=port, fd=fd if i == 0 else None,
                                              world_rank=i, world_size=size, timeout_s=backend_config.timeout_s)
            for i in range(size)
        ])  # fmt: skip


@dataclass
class BoundTorchConfig(TorchConfig):
    """`TorchConfig` whose rendezvous listens on the address of worker 0's node only (CPU training)."""

    @property
    def backend_cls(self) -> type[_BoundTorchBackend]:  # type: ignore[override]
        return _BoundTorchBackend
