"""Where webhooks may be sent: URL syntax and the destination-address policy (SSRF guard).

A webhook URL is chosen by a tenant, and the process that POSTs to it sits next to Redis and
maybe a cloud metadata service. So by default a delivery never goes to a loopback, private,
link-local (169.254.169.254 is the usual metadata address), multicast, reserved or unspecified
address. ``CALLPULSE_WEBHOOK_ALLOW`` lists exceptions: comma-separated CIDRs (``10.1.2.0/24``,
``127.0.0.1/32``) or exact host names (``hooks.internal``), e.g. for an in-house receiver. The process's
settings object reads it (`ApiSettings.webhook_allow`, `CliSettings.webhook_allow`) and passes it in as ``allow``.

Checked twice: at registration (a literal IP address, or ``localhost``) and before every
attempt (every address the host name resolves to then). At registration a host is read the way a
resolver and a browser read it (the WHATWG URL standard's host parser): a host whose last label is a
number is an IPv4 address in any of the numeric forms ``inet_aton`` accepts (``0x7f000002``,
``167772161``, ``0177.0.0.1``, ``127.1``), or no valid host at all; ``[…]`` is an IPv6 address. The
address is judged, and the URL stored with it in canonical form (``http://127.0.0.2/``). A name that re-resolves between the
check and httpx's own resolution (DNS rebinding) is not caught here: deployments that must be
strict should also send through an egress proxy or firewall (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit, urlunsplit

# What the API accepts (the OpenAPI schema says the same): http(s), a host name, an IPv4 literal or a
# bracketed IPv6 literal (no zone id), an optional port 1-65535, an optional path+query. No user:password@,
# no fragments.
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
URL_PATTERN = (r"^https?://" + _HOST + r"(?::" + _PORT + r")?"
               r"(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1900})?$")
_HEX = re.compile(r"^0[xX][0-9A-Fa-f]*$")
_URL_RE = re.compile(URL_PATTERN)


class DestinationDenied(ValueError):
    pass


def _allow_list(raw: str) -> tuple[list, set]:
    nets, names = [], set()
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            names.add(item.lower())
    return nets, names


def _judged(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address the policy judges: an IPv4 address inside an IPv6 one (mapped, 6to4) is judged as itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        return ip.ipv4_mapped or ip.sixtofour or ip
    return ip


def _address_denied(addr: str, nets: list) -> bool:
    ip = _judged(ipaddress.ip_address(addr.split("%")[0]))
    if any(ip in n for n in nets):
        return False
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL's host (as ``urlsplit().hostname`` gives it) is, None for a name; ValueError for a
    host no resolver or browser would take. A host whose last label is a number (decimal, or hex ``0x…``) is
    an IPv4 address in any form ``inet_aton`` reads (hex, octal, fewer than four parts), as the WHATWG URL
    standard says (``http://0x7f000002/`` is 127.0.0.2 to a browser, to curl and to getaddrinfo)."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"url: [{host}] is not an IPv6 address") from None
    labels = host.removesuffix(".").split(".")
    if not (labels[-1].isdigit() or _HEX.match(labels[-1])):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(".".join(labels)))
    except OSError:
        raise ValueError(f"url: {host} ends in a number but is not an IPv4 address") from None


def check_url(url: str, allow: str = "") -> str:
    """The URL to store if it may be registered (a literal address in canonical form); ValueError (syntax)
    or DestinationDenied (policy) otherwise."""
    if not _URL_RE.fullmatch(url):
        raise ValueError("url must be http(s)://host[:port][/path] (no credentials, no fragment)")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # a bracketed host that is no IPv6 address
        raise ValueError(f"url: {url.split('/')[2]} is not an IPv6 address") from None
    nets, names = _allow_list(allow)
    if host in names:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise DestinationDenied(f"{host} is a loopback name; list it in CALLPULSE_WEBHOOK_ALLOW to allow it")
    ip = ip_literal(host)
    if ip is None:
        return url  # a name: checked against what it resolves to before each attempt
    shown = host if str(_judged(ip)) == host else f"{host} (the address {_judged(ip)})"
    if _address_denied(str(ip), nets):
        raise DestinationDenied(f"{shown} is not a public address; list it in CALLPULSE_WEBHOOK_ALLOW to allow it")
    netloc = f"[{ip.compressed}]" if ip.version == 6 else str(ip)
    return urlunsplit(parts._replace(netloc=netloc + (f":{parts.port}" if parts.port is not None else "")))


async def check_destination(url: str, allow: str = "") -> None:
    """Before an attempt: DestinationDenied if the host resolves to any address the policy refuses."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:  # a bracketed host that is no IPv6 address
        raise ValueError(f"url: {url.split('/')[2]} is not an IPv6 address") from None
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
