"""Software as a catalogue source (kind ``software``): what each site offers, searchable.

Two kinds of entries (kind ``software``), both from the site registry
(:attr:`SoftwareSource.registry_path`, default the service's ``CatalogueApp.registry_path``):

* each site's **environments** (``environments:``; id ``software:<site>/env/<name>``): picked
  by name in the spawn form, so their ``access`` is ``{"language": "environment", "site",
  "code": <name>}``;
* each site's **Lmod modules**, where the site has ``lmod: {modulepath: [...], lmod_dir: ...}``
  (id ``software:<site>/module/<name>/<version>``): Lmod's own ``spider -o spider-json
  MODULEPATH`` run through the site's one access path
  (:func:`continuum_spawners.schedulers.transport_for`, so a site behind SSH works the same),
  an argument list, never a shell string.  Their ``access`` is an IPython ``%%bash`` cell that
  loads the module (``module load root/6.32``).  Spider answers are cached for
  :attr:`SoftwareSource.refresh_interval` seconds; a site whose spider fails keeps its last
  answer, shows in :meth:`~SoftwareSource.health`, and never breaks a search.

Every entry carries its site's resources in ``metadata["resources"]`` (partitions, cores,
memory, GPUs and their type) and they are searchable: ``root 6.32 gpu`` finds the site that has
ROOT 6.32 *and* a GPU.  Visibility follows the site's ``access.groups``: software of a site
open to everyone is public, else private to the site's groups (``vo`` and ``vos``).

Search runs in memory (a few hundred entries): the text is split into words on anything but
letters, digits and ``. + - _`` (operators, quotes and brackets are separators, never syntax),
and every word must start a word of the entry; ranking counts exact and title matches.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from traitlets import Float, Integer, Unicode

from continuum_spawners.registry_schema import MODULE_NAME
from continuum_spawners.schedulers import transport_for
from continuum_spawners.sites import Site, SiteRegistry, load_registry

from ..model import Entry, Page, Query, SourceHealth, facet_counts, visible
from .base import CatalogueSource, SourceUnavailable

_WORD = re.compile(r"[\w.+-]+")


def words(text: str) -> list[str]:
    """The search words of ``text``: lower case, split on anything but ``\\w . + -``."""
    return [w.strip(".-+") or w for w in _WORD.findall(text.lower())]


def site_resources(site: Site) -> dict[str, Any]:
    """What a site's partitions offer, for an entry's metadata (and its search words)."""
    parts = [
        {
            "name": p.name,
            "max_cores": p.max_cores,
            "max_memory_gb": p.max_memory_gb,
            "max_gpus": p.max_gpus,
            "gpu_type": p.gpu_type or "",
        }
        for p in site.partitions
    ]
    return {
        "partitions": parts,
        "max_cores": max(p.max_cores for p in site.partitions),
        "max_memory_gb": max(p.max_memory_gb for p in site.partitions),
        "max_gpus": max(p.max_gpus for p in site.partitions),
        "gpu_types": sorted({p.gpu_type for p in site.partitions if p.gpu_type}),
    }


def _base(site: Site, identifier: str, source: str) -> dict[str, Any]:
    groups = sorted(site.groups) if site.groups is not None else []
    return {
        "id": f"{source}:{identifier}",
        "source": source,
        "identifier": identifier,
        "kind": "software",
        "vo": groups[0] if groups else "",
        "vos": groups,
        "visibility": "vo" if site.groups is not None else "public",
        "sites": [site.name],
    }


def environment_entries(site: Site, source: str) -> list[Entry]:
    """The entries of a site's software environments."""
    return [
        Entry(
            **_base(site, f"{site.name}/env/{env.name}", source),
            title=f"{env.label} ({site.label})",
            description=f"Software environment {env.name!r} of {site.label}"
            + (f"; modules {', '.join(env.modules)}" if env.modules else ""),
            format="environment",
            metadata={
                "site": site.name,
                "site_label": site.label,
                "environment": env.name,
                "modules": list(env.modules),
                "resources": site_resources(site),
            },
            access={"language": "environment", "site": site.name, "code": env.name},
        )
        for env in site.environments
    ]


def module_entries(site: Site, spider: dict[str, Any], source: str, limit: int) -> list[Entry]:
    """The entries of Lmod's ``spider-json`` answer for a site (hidden modules and names that
    are no module names left out; at most ``limit``)."""
    modulepath = site.lmod.modulepath if site.lmod else ()
    entries: list[Entry] = []
    for name, files in sorted(spider.items()):
        if not isinstance(files, dict):
            continue
        for info in files.values():
            full = info.get("fullName", "") if isinstance(info, dict) else ""
            if info.get("hidden") or not re.match(MODULE_NAME, full) or len(entries) >= limit:
                continue
            version = str(info.get("Version", full.rpartition("/")[2]))[:64]
            about = str(info.get("Description") or info.get("help") or "")[:500]
            code = "\n".join(
                [
                    "%%bash",
                    f"# {full} at {site.label}: run this on a server at {site.name}",
                    "source /etc/profile",
                    *(f"module use {shlex.quote(path)}" for path in modulepath),
                    f"module load {shlex.quote(full)}",
                    "module list",
                ]
            )
            entries.append(
                Entry(
                    **_base(site, f"{site.name}/module/{full}", source),
                    title=f"{name} {version} ({site.label})",
                    description=about,
                    format="lmod",
                    metadata={
                        "site": site.name,
                        "site_label": site.label,
                        "module": full,
                        "name": str(name)[:100],
                        "version": version,
                        "category": str(info.get("Category", ""))[:100],
                        "resources": site_resources(site),
                    },
                    access={"language": "python", "code": code + "\n"},
                )
            )
    return entries


def _haystack(entry: Entry) -> tuple[set[str], set[str]]:
    """Words of an entry's title, and of everything searchable about it."""
    res = entry.metadata.get("resources", {})
    extra = [p["name"] for p in res.get("partitions", ())] + res.get("gpu_types", [])
    if res.get("max_gpus"):
        extra += ["gpu", "gpus"]
    meta = " ".join(str(entry.metadata.get(k, "")) for k in ("module", "name", "version"))
    every = " ".join(
        [entry.title, entry.description, meta, entry.format, *entry.sites, *extra]
        + [str(entry.metadata.get(k, "")) for k in ("site_label", "category", "environment")]
        + list(entry.metadata.get("modules", []))
    )
    return set(words(entry.title)), set(words(every)) | set(words(every.replace("/", " ")))


def score(entry: Entry, terms: list[str]) -> int:
    """How well ``entry`` matches every one of ``terms`` (0: it does not)."""
    title, every = _haystack(entry)
    total = 0
    for term in terms:
        if term in every:
            total += 3 + (2 if term in title else 0)
        elif any(w.startswith(term) for w in every):
            total += 1 + (1 if any(w.startswith(term) for w in title) else 0)
        else:
            return 0
    return total


def _filtered(entry: Entry, query: Query) -> bool:
    if query.sources and entry.source not in query.sources:
        return False
    if query.kinds and entry.kind not in query.kinds:
        return False
    if query.vos and not {entry.vo, *entry.vos} & set(query.vos):
        return False
    if query.sites and not set(entry.sites) & set(query.sites):
        return False
    if query.formats and entry.format not in query.formats:
        return False
    # software has neither a time range nor a size: such filters leave it out
    return not (query.time_from or query.time_to or query.size_min or query.size_max)


@dataclass
class _SiteModules:
    """The last spider answer of a site."""

    entries: list[Entry] = field(default_factory=list)
    fetched: float = float("-inf")
    error: str = ""


class SoftwareSource(CatalogueSource):
    """Software environments and Lmod modules of the registry's sites (see the module)."""

    kind = "software"

    registry_path = Unicode(
        "", config=True, help="The site registry (default: the service's registry_path)."
    )
    refresh_interval = Float(
        600.0,
        config=True,
        help="Seconds a site's `module spider` answer is kept before it is asked again.",
    )
    spider_timeout = Float(
        20.0, config=True, help="Seconds after which a site's `module spider` is given up."
    )
    max_modules = Integer(
        5000, config=True, help="Most modules taken from one site's spider answer."
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._modules: dict[str, _SiteModules] = {}
        self._lock = asyncio.Lock()

    def registry(self) -> SiteRegistry:
        """The site registry, reloaded when its file changed."""
        path = self.registry_path or getattr(self.parent, "registry_path", "")
        if not path:
            raise SourceUnavailable("no site registry configured (registry_path)")
        try:
            return load_registry(path, max_age=10.0)
        except (OSError, ValueError) as exc:
            raise SourceUnavailable(f"the site registry cannot be read: {exc}") from None

    async def start(self) -> None:
        await self.entries()

    async def spider(self, site: Site) -> list[Entry]:
        """Run Lmod's spider at ``site`` and read its answer; ``RuntimeError`` on failure."""
        assert site.lmod is not None
        argv = [
            f"{site.lmod.lmod_dir}/libexec/spider",
            "-o",
            "spider-json",
            ":".join(site.lmod.modulepath),
        ]
        result = await transport_for(site, timeout=self.spider_timeout).run(argv)
        if result.returncode != 0:
            raise RuntimeError((result.stderr.strip() or f"exit status {result.returncode}")[:200])
        try:
            answer = json.loads(result.stdout or "{}")
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"spider's answer is not JSON: {exc}") from None
        if answer == []:  # Lmod's answer for trees without modules (or none it can read)
            return []
        if not isinstance(answer, dict):
            raise RuntimeError("spider's answer is not a JSON object")
        return module_entries(site, answer, self.name, self.max_modules)

    async def _refresh(self, site: Site) -> None:
        known = self._modules.setdefault(site.name, _SiteModules())
        if time.monotonic() - known.fetched < self.refresh_interval:
            return
        try:
            known.entries = await self.spider(site)
            known.error = ""
        except Exception as exc:  # any failure of one site: reported, the others go on
            known.error = f"{site.name}: module spider failed: {exc}"
            self.log.warning("Software source %s: %s", self.name, known.error)
        known.fetched = time.monotonic()

    async def entries(self) -> list[Entry]:
        """Every entry, environments and modules (spider answers refreshed when old)."""
        registry = self.registry()
        sites = list(registry)
        async with self._lock:
            await asyncio.gather(*(self._refresh(s) for s in sites if s.lmod is not None))
        out: list[Entry] = []
        for site in sites:
            out += environment_entries(site, self.name)
            if site.lmod is not None and site.name in self._modules:
                out += self._modules[site.name].entries
        return out

    async def search(self, query: Query) -> Page:
        terms = words(query.text)
        found = []
        for entry in await self.entries():
            if not visible(entry, query.groups) or not _filtered(entry, query):
                continue
            points = score(entry, terms) if terms else 1
            if points:
                found.append((-points, entry.title, entry.id, entry))
        found.sort(key=lambda item: item[:3])
        matches = [item[3] for item in found]
        page = Page(entries=matches[query.offset : query.offset + query.limit], total=len(matches))
        if query.with_facets:
            page.facets = facet_counts(matches)
        return page

    async def get(self, identifier: str, query: Query) -> Entry | None:
        entry = next((e for e in await self.entries() if e.identifier == identifier), None)
        return entry if entry is not None and visible(entry, query.groups) else None

    async def health(self) -> SourceHealth:
        started = time.monotonic()
        await self.entries()
        lmod_sites = [s.name for s in self.registry() if s.lmod is not None]
        errors = [self._modules[n].error for n in lmod_sites if self._modules[n].error]
        return SourceHealth(
            name=self.name,
            kind=self.kind,
            ok=not lmod_sites or len(errors) < len(lmod_sites),
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            message="; ".join(errors),
        )
