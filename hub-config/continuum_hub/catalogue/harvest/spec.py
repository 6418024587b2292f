"""What a harvest is asked to do (:class:`HarvestSpec`) and what it reports.

A spec comes from the built-in source's configuration or the ``continuum-hub catalogue
harvest`` command line, so it is validated like user input: unknown keys, unknown kinds, site
names that are not names, a private visibility without a VO are refused with
:class:`HarvestError`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import SOURCE_NAME, Entry, Replica

log = logging.getLogger("continuum_hub.catalogue.harvest")

#: what a harvest reads: a folder tree of data files, a static STAC catalogue, a list
KINDS = ("files", "stac", "list")
#: a site's or root label's name (one path segment of an identifier)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: a STAC item's id or a list's identifier: a relative path of plain characters
ITEM_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/+=@-]{0,511}$")
#: problems kept in a report (all are counted and logged)
MAX_PROBLEMS_KEPT = 50


class HarvestError(ValueError):
    """A spec that cannot be harvested (bad settings, a missing root): nothing was changed."""


@dataclass(frozen=True)
class HarvestSpec:
    """One harvest: what to read (``path``, ``kind``), on which ``site``, into which source.

    Parameters
    ----------
    path
        The folder tree (``files``), the STAC catalogue's root JSON (``stac``) or the YAML/CSV
        file (``list``).
    site
        The site registry's name of the site holding the data (the replicas' site).
    kind
        One of :data:`KINDS`.
    source
        The catalogue source the entries belong to (their id prefix).
    vo, visibility
        Defaults for entries that do not say (``catalogue.yaml``, sidecars, list rows, STAC
        properties may); ``visibility == "vo"`` needs a ``vo``.
    label
        The root's label, the second segment of identifiers (``beta/<label>/obs-1.fits``):
        default the folder's name (``files``), the catalogue's id (``stac``), the file's stem
        (``list``).  The same data under roots with the same label on two sites is one entry.
    max_depth, max_files
        Bounds of the folder walk; a walk cut short removes nothing.
    """

    path: Path
    site: str
    kind: str = "files"
    source: str = "builtin"
    vo: str = ""
    visibility: str = "public"
    label: str = ""
    max_depth: int = 16
    max_files: int = 200_000

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any] | HarvestSpec) -> HarvestSpec:
        """A checked spec from a mapping (configuration) or a spec; :class:`HarvestError`."""
        if isinstance(spec, HarvestSpec):
            return spec.checked()
        unknown = sorted(set(spec) - set(cls.__dataclass_fields__))
        if unknown:
            raise HarvestError(f"unknown harvest setting(s): {', '.join(unknown)}")
        if "path" not in spec or "site" not in spec:
            raise HarvestError("a harvest needs a path and a site")
        values = dict(spec)
        values["path"] = Path(str(values["path"]))
        return cls(**values).checked()

    def checked(self) -> HarvestSpec:
        """This spec when it is valid; :class:`HarvestError` saying what is not."""
        if self.kind not in KINDS:
            raise HarvestError(f"unknown harvest kind {self.kind!r}; kinds are {', '.join(KINDS)}")
        if not NAME.match(str(self.site)):
            raise HarvestError(f"not a site name: {str(self.site)[:40]!r}")
        if self.label and not NAME.match(self.label):
            raise HarvestError(f"not a root label: {self.label[:40]!r}")
        if not SOURCE_NAME.match(str(self.source)):
            raise HarvestError(f"not a source name: {str(self.source)[:40]!r}")
        check_visibility(self.vo, self.visibility)
        if not 0 <= int(self.max_depth) <= 64 or int(self.max_files) < 1:
            raise HarvestError("max_depth must be 0–64 and max_files at least 1")
        wanted = "folder" if self.kind == "files" else "file"
        exists = self.path.is_dir() if self.kind == "files" else self.path.is_file()
        if not exists:
            raise HarvestError(f"{self.kind} harvest: {self.path} is not a {wanted}")
        return self

    def root_label(self, default: str) -> str:
        """The label (see the class), with ``default`` made a valid name when none was set."""
        if self.label:
            return self.label
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", default).strip("-.") or "root"
        return name[:64]


def check_item_name(name: str) -> str:
    """``name`` when it may be part of an identifier (:data:`ITEM_NAME`, no ``..`` segment)."""
    if not ITEM_NAME.match(name) or ".." in name.split("/"):
        raise HarvestError(f"not an identifier: {name[:60]!r}")
    return name


def check_visibility(vo: Any, visibility: Any) -> None:
    """Refuse a visibility other than public/vo, and a private one without a VO."""
    if visibility not in ("public", "vo"):
        raise HarvestError(f"visibility must be public or vo, not {str(visibility)[:40]!r}")
    if not isinstance(vo, str) or len(vo) > 128:
        raise HarvestError("vo must be a group name")
    if visibility == "vo" and not vo:
        raise HarvestError("visibility vo needs a vo (the group that may see the entries)")


@dataclass
class Found:
    """One thing a harvest found: its identifier, fingerprint, and how to describe it.

    ``build`` reads the thing (only called when it is new or changed); ``replica`` is where it
    is, for the two-sites rule of folder harvests (``None``: the rule does not apply).
    """

    identifier: str
    fingerprint: tuple[float, int]
    build: Callable[[], Entry]
    replica: Replica | None = None


@dataclass
class HarvestReport:
    """Counts of one harvest.

    ``seen``: the data files (STAC items, list entries) found, which are new, changed,
    unchanged or could not be read; ``problems``: those that could not be read, and the links,
    folders and metadata files that were skipped; ``removed``: identifiers gone since the last
    harvest.
    """

    path: str
    site: str
    kind: str
    seen: int = 0
    new: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    problems: int = 0
    #: the first :data:`MAX_PROBLEMS_KEPT` problems as "what: why"
    problem_list: list[str] = field(default_factory=list)
    #: the walk stopped at a bound: nothing was removed
    truncated: bool = False
    seconds: float = 0.0
    started: float = field(default_factory=time.monotonic, repr=False)

    def problem(self, what: str, error: BaseException | str) -> None:
        """Count and log a problem (a file that cannot be read); the harvest goes on."""
        self.problems += 1
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        message = f"{what}: {reason}"
        log.warning("harvest %s (site %s): %s", self.path, self.site, message)
        if len(self.problem_list) < MAX_PROBLEMS_KEPT:
            self.problem_list.append(message)

    @property
    def files_per_s(self) -> float:
        """Things seen per second of the harvest."""
        return self.seen / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (the CLI's ``--json``, the source's health message)."""
        return {
            "path": self.path,
            "site": self.site,
            "kind": self.kind,
            **{
                key: getattr(self, key)
                for key in ("seen", "new", "changed", "removed", "unchanged", "problems")
            },
            "problem_list": list(self.problem_list),
            "truncated": self.truncated,
            "seconds": round(self.seconds, 3),
            "files_per_s": round(self.files_per_s, 1),
        }

    def summary(self) -> str:
        """One line: the counts and the rate."""
        cut = " (walk cut short at a bound: nothing removed)" if self.truncated else ""
        return (
            f"{self.kind} {self.path} on {self.site}: {self.seen} seen, {self.new} new, "
            f"{self.changed} changed, {self.removed} removed, {self.unchanged} unchanged, "
            f"{self.problems} problem(s) in {self.seconds:.2f} s ({self.files_per_s:.0f}/s){cut}"
        )
