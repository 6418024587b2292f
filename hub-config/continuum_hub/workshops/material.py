"""Workshop material: where an event's notebooks come from, checked as hostile input.

``{"git": URL, "ref": REF}`` or ``{"folder": PATH}``.  Only ``https``/``http``/``git``/``ssh``
remotes whose host is a name or a public address (no ``file://``; no loopback, private,
link-local, shared or reserved address, in any spelling; no ``localhost`` or ``.local`` names),
refs without option-like or traversal forms, folders absolute and inside the configured roots.
Names are not resolved here (a DNS answer can change between this check and the pull): the
puller (issue 13, item 4) checks the address it connects to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

GIT_SCHEMES = frozenset({"https", "http", "git", "ssh"})
GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,100}$")
BLOCKED_HOSTS = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
BLOCKED_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


def public_host(host: str) -> bool:
    """Whether a material URL's host is a name or a public address (not this host's networks)."""
    name = host.strip("[]").lower().rstrip(".")
    if not name or name in BLOCKED_HOSTS or name.endswith(BLOCKED_SUFFIXES):
        return False
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        # a bare decimal/hex number is an address to git's resolver too (http://2130706433/)
        return not re.fullmatch(r"(0x)?[0-9a-f.]+", name) or "." in name.strip("0123456789.")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global


def check_material(value: Any, folder_roots: Sequence[str]) -> dict[str, str] | None:
    """``{"git": URL, "ref": REF}`` or ``{"folder": PATH}`` checked, or ``None``."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError('material must be {"git": URL, "ref": REF} or {"folder": PATH}')
    if set(value) <= {"git", "ref"} and "git" in value:
        url, ref = value["git"], value.get("ref", "main")
        if not isinstance(url, str) or len(url) > 500 or not url.isprintable():
            raise ValueError("material git must be a URL")
        parts = urlsplit(url)
        if parts.scheme not in GIT_SCHEMES:
            raise ValueError(
                f"material git must be an https, http, git or ssh URL, not {parts.scheme or url!r}"
            )
        if not public_host(parts.hostname or ""):
            raise ValueError("material git must not point at this host or a private network")
        if not isinstance(ref, str) or not GIT_REF.match(ref):
            raise ValueError("material ref must be a branch, tag or commit name")
        return {"git": url, "ref": ref}
    if set(value) == {"folder"}:
        path = value["folder"]
        if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
            raise ValueError("material folder must be an absolute path without '..'")
        inside = any(PurePosixPath(path).is_relative_to(root) for root in folder_roots)
        if not inside:
            allowed = ", ".join(folder_roots) or "none configured"
            raise ValueError(f"material folder must be under one of: {allowed}")
        return {"folder": path}
    raise ValueError('material must be {"git": URL, "ref": REF} or {"folder": PATH}')
