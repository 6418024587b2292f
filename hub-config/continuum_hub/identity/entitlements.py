"""Parsing of ``eduperson_entitlement`` values in AARC-G069 (successor of AARC-G002) syntax.

An entitlement expresses group (VO) membership::

    urn:<NID>:<delegated-namespace>[:<subnamespace>…]:group:<group>[:<subgroup>…][:role=<role>]#<authority>

for example ``urn:mace:egi.eu:group:vo.example.org:analysis:role=member#aai.egi.eu``.  Values
may arrive percent-encoded (AARC-G069 §3 allows RFC 3986 encoding of reserved characters).

Authorization decisions are made on parsed :class:`Entitlement` objects, never on raw claim
strings, and only for entitlements whose namespace and authority the deployment trusts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

# One path segment of a namespace or group: RFC 8141 NSS characters minus the separators we split
# on.  Kept strict on purpose: anything unexpected is rejected rather than guessed.
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~=@!$&'()*,;-]*$")
_NID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,31}$")
_ROLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_AUTHORITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]*$")
MAX_LENGTH = 1024


class EntitlementError(ValueError):
    """A string is not a valid AARC-G069 group entitlement."""


@dataclass(frozen=True, slots=True)
class Entitlement:
    """One parsed group entitlement.

    Attributes
    ----------
    namespace
        Everything between ``urn:`` and ``:group:``, e.g. ``mace:egi.eu``.
    groups
        The group path, top-level group (the VO) first.
    role
        The role within the group (``member`` when the value names none).
    authority
        The issuing authority after ``#``, or ``None`` when absent.
    """

    namespace: str
    groups: tuple[str, ...]
    role: str = "member"
    authority: str | None = None

    @property
    def vo(self) -> str:
        """The top-level group (virtual organisation)."""
        return self.groups[0]

    @property
    def group_path(self) -> str:
        """The group path joined with ``:``, as in the entitlement (``vo:sub``)."""
        return ":".join(self.groups)

    def __str__(self) -> str:
        text = f"urn:{self.namespace}:group:{self.group_path}:role={self.role}"
        return f"{text}#{self.authority}" if self.authority else text


def parse_entitlement(value: str) -> Entitlement:
    """Parse one entitlement string.

    Parameters
    ----------
    value
        The raw claim value, possibly percent-encoded.

    Returns
    -------
    Entitlement

    Raises
    ------
    EntitlementError
        When the value is not a group entitlement in AARC-G069 syntax.
    """
    if not isinstance(value, str):
        raise EntitlementError(f"entitlement must be a string, not {type(value).__name__}")
    if len(value) > MAX_LENGTH:
        raise EntitlementError(f"entitlement longer than {MAX_LENGTH} characters")
    # Decode once only: a value that is still encoded after one pass is malformed, not nested.
    text = unquote(value, errors="strict") if "%" in value else value
    if "%" in text:
        raise EntitlementError(f"entitlement is encoded more than once: {value!r}")
    if any(ch.isspace() for ch in text):
        raise EntitlementError(f"entitlement contains whitespace: {value!r}")
    body, sep, authority = text.partition("#")
    if sep and not _AUTHORITY.match(authority):
        raise EntitlementError(f"invalid authority in entitlement {value!r}")
    if not body.lower().startswith("urn:"):
        raise EntitlementError(f"entitlement is not a URN: {value!r}")
    parts = body[4:].split(":")
    try:
        group_at = parts.index("group")
    except ValueError as exc:
        raise EntitlementError(f"entitlement has no ':group:' part: {value!r}") from exc
    namespace_parts, group_parts = parts[:group_at], parts[group_at + 1 :]
    if len(namespace_parts) < 2 or not _NID.match(namespace_parts[0]):
        raise EntitlementError(f"entitlement has no valid namespace: {value!r}")
    role = "member"
    if group_parts and group_parts[-1].startswith("role="):
        role = group_parts.pop()[len("role=") :]
        if not _ROLE.match(role):
            raise EntitlementError(f"invalid role in entitlement {value!r}")
    if not group_parts:
        raise EntitlementError(f"entitlement names no group: {value!r}")
    for segment in (*namespace_parts[1:], *group_parts):
        if not _SEGMENT.match(segment) or segment.startswith("role="):
            raise EntitlementError(f"invalid segment {segment!r} in entitlement {value!r}")
    return Entitlement(
        namespace=":".join(namespace_parts),
        groups=tuple(group_parts),
        role=role,
        authority=authority or None,
    )


def trusted_entitlements(
    values: Iterable[object],
    namespaces: Iterable[str],
    authorities: Iterable[str] | None = None,
) -> tuple[list[Entitlement], list[str]]:
    """Parse claim values, keeping those from trusted namespaces and authorities.

    Parameters
    ----------
    values
        The raw ``eduperson_entitlement`` claim values (non-strings are rejected).
    namespaces
        Accepted namespaces (``mace:egi.eu``), compared case-insensitively.
    authorities
        Accepted authorities; ``None`` accepts any (including none).

    Returns
    -------
    (accepted, rejected)
        Parsed trusted entitlements, and a reason for every value that was dropped.
    """
    allowed_ns = {ns.lower() for ns in namespaces}
    allowed_auth = None if authorities is None else {a.lower() for a in authorities}
    accepted: list[Entitlement] = []
    rejected: list[str] = []
    for value in values:
        try:
            ent = parse_entitlement(value)  # type: ignore[arg-type]
        except EntitlementError as exc:
            rejected.append(str(exc))
            continue
        if ent.namespace.lower() not in allowed_ns:
            rejected.append(f"untrusted namespace {ent.namespace!r}")
        elif allowed_auth is not None and (ent.authority or "").lower() not in allowed_auth:
            rejected.append(f"untrusted authority {ent.authority!r}")
        else:
            accepted.append(ent)
    return accepted, rejected


def group_name(ent: Entitlement) -> str:
    """The JupyterHub group an entitlement maps to.

    Members map to the group path (``vo.example.org`` or ``vo.example.org:analysis``); any
    other role gets its own group (``vo.example.org#manager``) so roles never widen access.
    """
    return ent.group_path if ent.role == "member" else f"{ent.group_path}#{ent.role}"


def entitlement_groups(
    claim: object,
    namespaces: Iterable[str],
    authorities: Iterable[str] | None = None,
    log: Callable[[str], object] = lambda reason: None,
) -> set[str]:
    """The JupyterHub groups of an entitlement claim's trusted values.

    Parameters
    ----------
    claim
        The claim as the provider sent it: a list of strings, one string, or missing.
    namespaces, authorities
        What this claim's provider is trusted for (see :func:`trusted_entitlements`).
    log
        Called with the reason for every value dropped.
    """
    values = [claim] if isinstance(claim, str) else claim or []
    if not isinstance(values, list):
        log(f"an entitlement claim that is not a list ({type(values).__name__})")
        return set()
    accepted, rejected = trusted_entitlements(values, namespaces, authorities)
    for reason in rejected:
        log(f"entitlement: {reason}")
    return {group_name(ent) for ent in accepted}
