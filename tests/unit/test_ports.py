"""Ports for local brokers and services: never two processes' at once, never the kernel's."""

from __future__ import annotations

import socket
from pathlib import Path

from omniroute import ports
from omniroute.ports import PortAllocator


def test_ports_come_from_below_the_ephemeral_range() -> None:
    low, _ = ports.ephemeral_range()
    handed_out = ports.allocation_range()
    assert handed_out.stop <= low or handed_out.start > low


def test_one_allocator_never_hands_out_a_port_twice(tmp_path: Path) -> None:
    allocator = PortAllocator(range(20000, 20300), lock_dir=tmp_path)
    given = [allocator.port() for _ in range(150)]
    assert len(set(given)) == len(given)
    assert all(20000 <= port < 20300 for port in given)


def test_two_allocators_claim_different_blocks(tmp_path: Path) -> None:
    # Each stands for a process: the lock files keep their blocks apart.
    first = PortAllocator(range(20400, 20600), lock_dir=tmp_path)
    second = PortAllocator(range(20400, 20600), lock_dir=tmp_path)
    a = {first.port() for _ in range(ports.BLOCK_SIZE // 2)}
    b = {second.port() for _ in range(ports.BLOCK_SIZE // 2)}
    assert not a & b
    assert {p // ports.BLOCK_SIZE for p in a} != {p // ports.BLOCK_SIZE for p in b}


def test_when_every_block_is_held_the_kernel_picks(tmp_path: Path) -> None:
    holder = PortAllocator(range(20700, 20800), lock_dir=tmp_path)
    holder.port()
    latecomer = PortAllocator(range(20700, 20800), lock_dir=tmp_path)
    port = latecomer.port()
    assert not 20700 <= port < 20800


def test_a_port_in_use_is_skipped(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        # A one-block range starting at the busy port: the allocator must step past it.
        allocator = PortAllocator(range(busy, busy + ports.BLOCK_SIZE), lock_dir=tmp_path)
        port = allocator.port()
        assert busy < port < busy + ports.BLOCK_SIZE
