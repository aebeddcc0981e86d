"""UDP ports for multiplayer VizDoom matches, never shared by two live matches on this machine.

A match's host engine listens on one UDP port (``-host N -port P``); its joiners bind ephemeral ports. A port is
leased by holding an exclusive ``fcntl`` lock on ``<LOCK_DIR>/<port>.lock`` for the match's lifetime and passing
a UDP bind probe (so a port some other program holds is skipped). The lock is per open file description, so it
excludes other processes *and* other leases in this process; the kernel drops it when the holder dies, however
it dies, so a killed sampler never strands a port. The lock files themselves stay (empty, one per port used).

The default range sits below Linux's ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999
by default), which is where joiners' own sockets land: a host port inside it could be taken by some match's joiner
between the probe and the host's bind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

LOCK_DIR = Path(tempfile.gettempdir()) / "asyncrl-vizdoom-ports"
DEFAULT_RANGE = (24000, 28999)  # inclusive


class PortLease:
    """One leased port; ``release()`` (idempotent) or the holder's death frees it."""

    def __init__(self, port: int, fd: int):
        self.port = port
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the lock

    def __enter__(self) -> PortLease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"PortLease(port={self.port}, held={self.held})"


def udp_port_free(port: int) -> bool:
    """True if a UDP socket can bind ``port`` on all interfaces now (as the host engine will)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def _lock_dir(lock_dir: Path) -> Path:
    lock_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # shared by every user of the machine; only the creator can chmod
        os.chmod(lock_dir, 0o1777)
    return lock_dir


def acquire_port(port_range: tuple[int, int] = DEFAULT_RANGE, lock_dir: Path | str | None = None,
                 exclude: set[int] | frozenset[int] = frozenset()) -> PortLease:
    """Lease a free port from ``port_range`` (inclusive), trying the ports in random order; ``exclude`` skips ports
    (e.g. the one a match just failed on). Raises ``RuntimeError`` when every port is locked or busy."""
    low, high = (int(p) for p in port_range)
    if not 1024 <= low <= high <= 65535:
        raise ValueError(f"port_range={port_range!r} is invalid: expected (low, high) with 1024 <= low <= high <= 65535")
    directory = _lock_dir(Path(lock_dir) if lock_dir is not None else LOCK_DIR)
    ports = list(range(low, high + 1))
    random.SystemRandom().shuffle(ports)  # concurrent callers start at different ports instead of racing for one
    for port in ports:
        if port in exclude:
            continue
        fd = os.open(directory / f"{port}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # another live match holds it
        if not udp_port_free(port):
            os.close(fd)
            continue
        return PortLease(port, fd)
    raise RuntimeError(f"no free UDP port for a VizDoom match in {low}-{high} (all locked in {directory} or busy)")
