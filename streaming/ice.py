"""Which addresses WebRTC media may use (ICE host candidates), and SDP candidate filtering.

aioice gathers one host candidate per interface address and leaves out 127.0.0.1, so a server
and a client on one machine meet on its network address. Two modes, set per process (aioice has
no per-connection option, so ``set_mode`` replaces its address lookup for every connection):

- ``"host"``: aioice's own choice, plus 127.0.0.1. What a desktop browser on this machine or
  on the network uses (browsers leave loopback out of their own candidates).
- ``"loopback"``: 127.0.0.1 only, and the remote side's candidates filtered to loopback
  addresses (``loopback_only``), so no media packet is addressed outside this machine's loopback.
  For sandboxes and tests; a browser then needs ``--allow-loopback-in-peer-connection``."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import aioice.ice

MODES = ("host", "loopback")
_ORIGINAL: Callable[[bool, bool], list[str]] = aioice.ice.get_host_addresses
_mode = "host"


def _host_and_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    found = _ORIGINAL(use_ipv4, use_ipv6)
    return ([*found, "127.0.0.1"] if use_ipv4 else found) if "127.0.0.1" not in found else found


def _loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


def set_mode(mode: str) -> None:
    """Choose the host candidates of every ICE connection made from now on in this process."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"ICE mode must be one of {', '.join(MODES)}, got {mode!r}")
    aioice.ice.get_host_addresses = _loopback if mode == "loopback" else _host_and_loopback
    _mode = mode


def mode() -> str:
    return _mode


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    name = host.strip("[]").lower()
    if name in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def loopback_only(sdp: str) -> tuple[str, int]:
    """``sdp`` without its ICE candidates that are not loopback addresses; and how many remain."""
    kept, lines = 0, []
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) < 8 or not is_loopback(parts[4]):
                continue
            kept += 1
        lines.append(line)
    return "\r\n".join(lines) + "\r\n", kept
