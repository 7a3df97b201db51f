"""Loopback ports for the processes that tests, benchmarks and `make run` start.

The usual trick, binding port 0 and letting go of it, leaves a window in which
any other process can take the port before the broker or service binds it: the
kernel hands ports from that same ephemeral range to every outgoing
connection. With several test workers starting brokers and services at once it
happened ("Address already in use"). So ports come from below the ephemeral
range, where the kernel never picks one by itself, in blocks that one process
claims with a lock file for its lifetime: two processes never hand out the same
port, and one process never hands out a port twice.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import tempfile
import threading
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # not on Windows: fall back to asking the kernel
    fcntl = None  # type: ignore[assignment]

BLOCK_SIZE = 100
LOCK_DIR = (
    Path(tempfile.gettempdir()) / f"omniroute-ports-{os.getuid() if hasattr(os, 'getuid') else 0}"
)
# The lowest port handed out; below it sit many well-known development servers.
LOWEST = 16384


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections (Linux's default if unknown)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def allocation_range() -> range:
    """The ports handed out: below the ephemeral range, or above it if it starts low."""
    low, high = ephemeral_range()
    if low - LOWEST >= 10 * BLOCK_SIZE:
        return range(LOWEST, low)
    return range(high + 1, 65536)


def bindable(port: int) -> bool:
    """Whether nothing holds `port` on any local address (listening, connected or waiting)."""
    with socket.socket() as sock:
        try:
            sock.bind(("", port))  # the wildcard address clashes with every specific one
        except OSError as error:
            if error.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def kernel_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now (racy: the fallback only)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class PortAllocator:
    """Hands out ports from blocks this process holds a lock on."""

    def __init__(self, ports: range | None = None, lock_dir: Path = LOCK_DIR) -> None:
        self.ports = ports if ports is not None else allocation_range()
        self.lock_dir = lock_dir
        self._mutex = threading.Lock()
        self._owner = os.getpid()
        self._held: list[IO[bytes]] = []  # the open lock files: the claim lasts while they do
        self._next = 0
        self._end = 0

    def port(self) -> int:
        """A port no other process got from an allocator and nothing holds now."""
        with self._mutex:
            if os.getpid() != self._owner:  # a forked child claims its own blocks
                self._owner, self._held, self._next, self._end = os.getpid(), [], 0, 0
            while True:
                if self._next >= self._end and not self._claim_block():
                    return kernel_port()
                candidate = self._next
                self._next += 1
                if bindable(candidate):
                    return candidate

    def _claim_block(self) -> bool:
        """Lock the next free block; False when every block is held by someone."""
        if fcntl is None:
            return False
        try:
            self.lock_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        starts = list(range(self.ports.start, self.ports.stop - BLOCK_SIZE + 1, BLOCK_SIZE))
        # A random first block spreads the ports over time, so a port just released
        # (its connections still waiting out TIME_WAIT) is seldom the next one given.
        first = random.randrange(len(starts))
        held = {int(Path(lock.name).stem) for lock in self._held}
        for start in starts[first:] + starts[:first]:
            if start in held:
                continue
            try:
                lock = open(self.lock_dir / f"{start}.lock", "ab")
            except OSError:
                return False
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            self._held.append(lock)
            self._next, self._end = start, start + BLOCK_SIZE
            return True
        return False


_allocator = PortAllocator()


def free_port() -> int:
    """A TCP port for a local broker or service: free now, and given to no one else."""
    return _allocator.port()
