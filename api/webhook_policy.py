"""Where webhooks may be sent: URL syntax and the destination-address policy (SSRF guard).

A webhook URL is chosen by a tenant, and the process that POSTs to it sits next to Redis and
maybe a cloud metadata service. So by default a delivery never goes to a loopback, private,
link-local (169.254.169.254 is the usual metadata address), multicast, reserved or unspecified
address. ``CALLPULSE_WEBHOOK_ALLOW`` lists exceptions: comma-separated CIDRs (``10.1.2.0/24``,
``127.0.0.1/32``) or exact host names (``hooks.internal``), e.g. for an in-house receiver.

Checked twice: at registration (a literal IP address, or ``localhost``) and before every
attempt (every address the host name resolves to then). A name that re-resolves between the
check and httpx's own resolution (DNS rebinding) is not caught here: deployments that must be
strict should also send through an egress proxy or firewall (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
from urllib.parse import urlsplit

# What the API accepts (the OpenAPI schema says the same): http(s), a host name or IPv4 literal,
# an optional port 1-65535, an optional path+query. No user:password@, no fragments.
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN = (r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::" + _PORT + r")?"
               r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1900})?$")
_URL_RE = re.compile(URL_PATTERN)


class DestinationDenied(ValueError):
    pass


def _allow_list(raw: str | None) -> tuple[list, set]:
    nets, names = [], set()
    for item in (raw if raw is not None else os.environ.get("CALLPULSE_WEBHOOK_ALLOW", "")).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            names.add(item.lower())
    return nets, names


def _address_denied(addr: str, nets: list) -> bool:
    ip = ipaddress.ip_address(addr.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in n for n in nets):
        return False
    return not ip.is_global or ip.is_multicast


def check_url(url: str, allow: str | None = None) -> str:
    """The URL if it may be registered; ValueError (syntax) or DestinationDenied (policy) otherwise."""
    if not _URL_RE.fullmatch(url):
        raise ValueError("url must be http(s)://host[:port][/path] (no credentials, no fragment)")
    host = (urlsplit(url).hostname or "").lower()
    nets, names = _allow_list(allow)
    if host in names:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise DestinationDenied(f"{host} is a loopback name; list it in CALLPULSE_WEBHOOK_ALLOW to allow it")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked against what it resolves to before each attempt
    if _address_denied(host, nets):
        raise DestinationDenied(f"{host} is not a public address; list it in CALLPULSE_WEBHOOK_ALLOW to allow it")
    return url


async def check_destination(url: str, allow: str | None = None) -> None:
    """Before an attempt: DestinationDenied if the host resolves to any address the policy refuses."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    nets, names = _allow_list(allow)
    if host in names:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    for info in infos:
        addr = info[4][0]
        if _address_denied(addr, nets):
            raise DestinationDenied(f"{host} resolves to {addr}, which is not a public address "
                                    f"(CALLPULSE_WEBHOOK_ALLOW lists exceptions)")
