"""The address phones on the same network can reach this machine at."""
from __future__ import annotations

import ipaddress
import socket
from typing import Optional
from urllib.parse import urlsplit

DEFAULT_PORT = 8470


def _usable(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return ip.version == 4 and not (ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def lan_address() -> Optional[str]:
    """This machine's IPv4 address on its local network, or None when only loopback is found.

    Asks the routing table which source address it would use (a UDP socket's
    ``connect`` sends no packet), then falls back to the host name's addresses.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("192.0.2.1", 9))  # documentation address; nothing is sent
            addr = sock.getsockname()[0]
            if _usable(addr):
                return addr
    except OSError:
        pass
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        infos = []
    for info in infos:
        addr = str(info[4][0])
        if _usable(addr):
            return addr
    return None


def default_base_url(port: int = DEFAULT_PORT) -> str:
    """``http://{LAN address}:8470``, or the loopback address when no LAN address is found."""
    return f"http://{lan_address() or '127.0.0.1'}:{port}"


def is_loopback_url(url: str) -> bool:
    """True when phones could not open ``url`` (it names this machine's loopback address)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
