"""Run the network phase of a probe inside a named network namespace.

setns(2) moves only the calling thread; sockets created while inside stay in
that namespace for their whole life, so a prober confined to the lab's probe
namespace cannot reach any other network even through a bug. Python 3.11 has
no os.setns, so libc's is called through ctypes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import socket
import subprocess
from contextlib import contextmanager

from ipam.errors import ValidationError

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


@contextmanager
def entered(name: str | None):
    """Inside the block the current thread lives in namespace `name` (None: stay put)."""
    if not name:
        yield
        return
    path = os.path.join(NETNS_DIR, name)
    if not os.path.exists(path):
        raise ValidationError("network namespace {name!r} does not exist", "netns", name=name)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(path, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def own_addresses() -> dict[int, set[int]]:
    """The addresses of the namespace the calling thread is in (a prober never probes itself)."""
    out: dict[int, set[int]] = {4: set(), 6: set()}
    listing = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True)
    for link in json.loads(listing.stdout or "[]"):
        for a in link.get("addr_info", []):
            fam = 4 if a.get("family") == "inet" else 6
            text = a.get("local", "")
            af = socket.AF_INET if fam == 4 else socket.AF_INET6
            out[fam].add(int.from_bytes(socket.inet_pton(af, text), "big"))
    return out
