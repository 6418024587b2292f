"""catalogue_search: the built-in catalogue at a million entries (issue 11's "Done when").

Generates ``--entries`` entries (default 1,000,000) with a Zipf vocabulary, kinds, formats,
two sites (alpha, beta, some on both), two VOs with public and VO-private entries, sizes and
time ranges, into a real :class:`~continuum_hub.catalogue.index.store.CatalogueStore`; then,
in one run:

* **full re-index**: :meth:`FullTextIndex.rebuild` of every entry (goal < 90 s);
* **incremental upsert** of 10,000 entries, store and index committed (goal < 5 s);
* **1,000 mixed queries** (words, prefixes, facet counts, site filters; users of one VO, the
  other or both; words drawn by frequency, less the 20 most frequent filler words, which are
  in most entries like stop words) p50/p95/p99 per kind: ranked with a site filter (goal
  p95 < 30 ms), facet counts (< 20 ms); then a filler word alone with facets (the worst case:
  counting and faceting visit every match);
* the same queries through the **fallback** path (the index gone; SQLite FTS5, newest
  matches first; goal p95 < 50 ms);
* a plain ``LIKE`` scan over the same ``entries`` table (a page and its total) for a sample
  of the queries (each scans the whole table: ``--like-queries``);
* harvest throughput (files/s) of the demo archive
  (:func:`continuum_federation.demo_archive.bench_harvest`).

Queries go through the catalogue service's HTTP API: its real application
(:func:`continuum_hub.catalogue.app.make_application`: handlers, fan-out) served on 127.0.0.1
with the built-in source, HubAuth at the boundary as in the service's unit tests; the same
queries also run through :meth:`BuiltinSource.search` to show the HTTP layer's share
(``--direct``: only that).  Prints figures and ratios: wall clock, and the process's CPU time
per query (which the load of other processes does not inflate).  Run:
``/opt/continuum-hub/venv/bin/python bench/catalogue_search.py [--entries 20000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np

from continuum_hub.catalogue import ACCESS_SCOPE, API_PREFIX
from continuum_hub.catalogue.index.store import CatalogueStore
from continuum_hub.catalogue.model import Entry, Replica, make_query
from continuum_hub.catalogue.sources.builtin import BuiltinSource

HEP, RADIO = "vo.hep.example", "vo.radio.example"
#: domain words placed among the most frequent ones, so queries read like users'
DOMAIN = [
    "radio",
    "muon",
    "survey",
    "pulsar",
    "jet",
    "calibration",
    "lofar",
    "higgs",
    "spectra",
    "climate",
    "temperature",
    "collision",
    "galaxy",
    "trigger",
    "flux",
]
FORMATS = ["netcdf", "zarr", "hdf5", "fits", "parquet", "root"]
KINDS = ["file"] * 7 + ["dataset"] * 2 + ["collection"]
#: the most frequent words are filler (each in up to 90 % of the entries, like stop words):
#: the mixed queries do not use them; ``--stop-queries`` measures a query of one alone
STOP = 20
GOALS = {"ranked+site": 30.0, "facets": 20.0, "fallback": 50.0}
REPO = Path(__file__).resolve().parent.parent
#: the users the queries run as, by their groups
USERS = {(HEP,): "bob", (RADIO,): "dave", (HEP, RADIO): "alice"}


def vocabulary(size: int, rng: random.Random) -> list[str]:
    """Distinct pronounceable words by rank: :data:`STOP` filler words (the most frequent, like
    "the" and "data"), then the domain words, then the rest."""
    consonants, vowels = "bcdfghklmnprstvz", "aeiou"
    words: list[str] = []
    seen = set(DOMAIN)
    while len(words) < size - len(DOMAIN):
        length = rng.randint(2, 4)
        word = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(length))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return [*words[:STOP], *DOMAIN, *words[STOP:]]


class Generator:
    """Entries with Zipf-distributed words and realistic facets, reproducibly."""

    def __init__(self, vocab_size: int = 50_000, seed: int = 11) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (reproducible data, not secrets)
        self.np = np.random.default_rng(seed)
        self.words = vocabulary(vocab_size, self.rng)
        ranks = np.arange(1, len(self.words) + 1)
        weights = 1.0 / ranks**1.07
        self.cdf = np.cumsum(weights / weights.sum())

    def sample_words(self, count: int, skip: int = 0) -> list[str]:
        """``count`` words drawn by frequency (of those below rank ``skip``)."""
        low = self.cdf[skip - 1] if skip else 0.0
        picks = np.searchsorted(self.cdf, low + (1.0 - low) * self.np.random(count))
        return [self.words[min(i, len(self.words) - 1)] for i in picks]

    def entries(self, count: int, start: int = 0, tag: str = "") -> Iterator[Entry]:
        rng = self.rng
        words = self.sample_words(count * 22)
        for n in range(count):
            i = start + n
            chunk = words[n * 22 : (n + 1) * 22]
            vo = HEP if i % 2 else RADIO
            roll = rng.random()
            sites = ["alpha"] if roll < 0.6 else ["beta"] if roll < 0.85 else ["alpha", "beta"]
            year = rng.randint(2015, 2025)
            fmt = FORMATS[i % len(FORMATS)]
            identifier = f"{sites[0]}/archive/{vo.split('.')[1]}/{tag}{i:07d}.{fmt}"
            yield Entry(
                id=f"bench:{identifier}",
                source="bench",
                identifier=identifier,
                kind=KINDS[i % len(KINDS)],
                title=" ".join(chunk[:6]),
                description=" ".join(chunk[6:]),
                vo=vo,
                visibility="vo" if rng.random() < 0.1 else "public",
                format=fmt,
                size=int(rng.lognormvariate(16, 2)),
                time_start=f"{year}-{rng.randint(1, 12):02d}-01",
                time_end=f"{year}-12-31",
                replicas=[Replica(s, "archive", f"/srv/{s}/{identifier}") for s in sites],
                metadata={"instrument": chunk[0], "run": i % 997},
            )


def queries(gen: Generator, count: int, seed: int = 5) -> list[tuple[str, dict]]:
    """``count`` mixed queries: (kind, make_query arguments)."""
    rng = random.Random(seed)  # noqa: S311 (reproducible queries, not secrets)
    users = [[HEP], [RADIO], [HEP, RADIO]]
    out = []
    for n in range(count):
        kind = ("words", "prefix", "ranked+site", "facets")[n % 4]
        terms = gen.sample_words(rng.randint(1, 2), skip=STOP)
        if kind == "prefix":
            terms[-1] = terms[-1][: max(2, len(terms[-1]) - 2)]
        args: dict = {"text": " ".join(terms), "groups": rng.choice(users)}
        if kind == "ranked+site":
            args["sites"] = [rng.choice(["alpha", "beta"])]
        if kind == "facets":
            args["with_facets"] = True
        out.append((kind, args))
    return out


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def report(
    label: str, samples: list[float], goal: float | None = None, cpu: list[float] | None = None
) -> float:
    """Print wall-clock percentiles (and CPU time's, which other load on the machine does not
    inflate); returns the wall p95."""
    p50, p95, p99 = percentiles(samples)
    verdict = (
        "" if goal is None else f"  goal p95 < {goal:.0f} ms: {'met' if p95 < goal else 'MISSED'}"
    )
    figures = f"p50 {p50:7.1f}  p95 {p95:7.1f}  p99 {p99:7.1f}"
    if cpu:
        c50, c95, _ = percentiles(cpu)
        figures += f"  | cpu p50 {c50:6.1f}  p95 {c95:6.1f}"
    print(f"  {label:<22} n={len(samples):<5} {figures} ms{verdict}")
    return p95


class BoundaryAuth:
    """HubAuth and the hub's users API at the boundary (as the service's unit tests have them):
    ``token <user>`` is that user with the catalogue's scope, groups from :data:`USERS`."""

    api_url = "http://127.0.0.1:1/hub/api"
    api_token = "bench"  # noqa: S105 (no hub here: nothing checks it)

    def get_token(self, handler: Any, in_cookie: bool = True) -> str | None:
        found = re.match(r"token\s+(.+)", handler.request.headers.get("Authorization", ""))
        return found.group(1) if found else None

    async def user_for_token(self, token: str, sync: bool = False) -> dict[str, Any]:
        return {"kind": "user", "name": token, "scopes": [ACCESS_SCOPE]}

    async def user(self, name: str) -> Any:
        from continuum_hub.workflows.credentials import HubUser

        groups = next(g for g, user in USERS.items() if user == name)
        return HubUser(name, False, frozenset(groups))


async def http_service(folder: Path) -> tuple[Any, BuiltinSource, str]:
    """The catalogue service's real application on 127.0.0.1 with the built-in source."""
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port
    from traitlets.config import Config

    from continuum_hub.catalogue.app import make_application, start_sources

    source_spec = {
        "name": "bench",
        "kind": "continuum_hub.catalogue.sources.builtin:BuiltinSource",
        "db_url": f"sqlite:///{folder / 'bench.sqlite'}",
        "index_dir": str(folder / "bench.index"),
        "auto_rebuild": False,
        "timeout": 30.0,
    }
    settings = {
        "state_dir": str(folder / "service"),
        "registry_path": str(REPO / "hub-config" / "sites.demo.yaml"),
        "sources": [source_spec],
    }
    auth = BoundaryAuth()
    app = make_application(Config({"CatalogueApp": settings}), hub_auth=auth, hub=auth)
    sources = app.settings["catalogue_sources"]
    await start_sources(sources)
    source = sources["bench"]
    if not isinstance(source, BuiltinSource):
        raise RuntimeError(f"the service did not load the built-in source: {source!r}")
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    return server, source, f"http://127.0.0.1:{port}{API_PREFIX}/search"


async def timed_search(
    source: BuiltinSource, qs: list[tuple[str, dict]], url: str | None = None
) -> dict[str, list[float]]:
    """Run ``qs`` through the service's HTTP API (``url``) or the source; ms per kind (wall
    clock; under ``cpu:<kind>`` the process's CPU time, client and server included)."""
    from tornado.httpclient import AsyncHTTPClient

    client = AsyncHTTPClient()
    times: dict[str, list[float]] = {}
    for kind, args in qs:
        params = {"q": args["text"], "site": args.get("sites", []), "limit": 20}
        if args.get("with_facets"):
            params["facets"] = 1
        user = USERS[tuple(sorted(args["groups"]))]
        started, cpu = time.perf_counter(), time.process_time()
        if url:
            response = await client.fetch(
                f"{url}?{urlencode(params, doseq=True)}",
                headers={"Authorization": f"token {user}"},
            )
            json.loads(response.body)
        else:
            await source.search(make_query(**args))
        elapsed = (time.perf_counter() - started) * 1000
        used = (time.process_time() - cpu) * 1000
        for name in (kind, "all"):
            times.setdefault(name, []).append(elapsed)
            times.setdefault(f"cpu:{name}", []).append(used)
    return times


def share(source: BuiltinSource, word: str) -> float:
    """The share of entries holding ``word`` (through the index)."""
    assert source.index is not None and source.store is not None
    _, total, _ = source.index.search(make_query(word, limit=1))
    return total / max(1, source.store.count())


def like_scan(store: CatalogueStore, qs: list[tuple[str, dict]]) -> tuple[list[float], list[float]]:
    """A page of 20 and its total through ``LIKE '%word%'`` on title and description."""
    out: list[float] = []
    cpu: list[float] = []
    for _, args in qs:
        where, params = [], []
        for word in args["text"].split():
            where.append("(title LIKE ? OR description LIKE ?)")
            params += [f"%{word}%", f"%{word}%"]
        groups = args["groups"]
        where.append(f"(visibility = 'public' OR vo IN ({','.join('?' * len(groups))}))")
        params += groups
        if args.get("sites"):
            where.append("instr(sites, ?) > 0")
            params.append(f"|{args['sites'][0]}|")
        sql = " AND ".join(where)
        started, used = time.perf_counter(), time.process_time()
        store.query(f"SELECT rowid, title FROM {{entries}} WHERE {sql} LIMIT 20", params)  # noqa: S608
        store.query(f"SELECT count(*) FROM {{entries}} WHERE {sql}", params)  # noqa: S608
        out.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - used) * 1000)
    return out, cpu


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="catalogue-bench-", dir=args.dir))
    print(f"catalogue_search: {args.entries:,} entries in {folder}")
    try:
        gen = Generator()
        store = CatalogueStore(folder / "bench.sqlite")
        started = time.perf_counter()
        batch = 10_000
        for start in range(0, args.entries, batch):
            store.upsert(gen.entries(min(batch, args.entries - start), start))
        load_s = time.perf_counter() - started
        print(
            f"  store load (SQLite, FTS5, replicas, R*Tree): {load_s:.1f} s "
            f"({args.entries / load_s:,.0f} entries/s)"
        )

        server, url, how = None, None, "the source directly"
        if not args.direct:
            try:
                server, source, url = await http_service(folder)
                how = "the service's HTTP API"
            except Exception as exc:  # the service's modules may be absent here
                print(f"  (no catalogue service here: {exc}; measuring through the source)")
        if url is None:
            source = BuiltinSource(
                name="bench",
                db_url=f"sqlite:///{folder / 'bench.sqlite'}",
                index_dir=str(folder / "bench.index"),
                auto_rebuild=False,
            )
            await source.start()
        started = time.perf_counter()
        count = await source.rebuild()
        build_s = time.perf_counter() - started
        print(
            f"  full re-index of {count:,}: {build_s:.1f} s  (goal < 90 s: "
            f"{'met' if build_s < 90 else 'MISSED'})"
        )

        assert source.store is not None
        started = time.perf_counter()
        source.store.upsert(gen.entries(10_000, args.entries, tag="u"))
        upsert_s = time.perf_counter() - started
        print(
            f"  incremental upsert of 10,000 (store + index commit): {upsert_s:.2f} s  "
            f"(goal < 5 s: {'met' if upsert_s < 5 else 'MISSED'})"
        )

        qs = queries(gen, args.queries)
        await timed_search(source, qs[:50], url)  # warm the page cache
        print(f"  {args.queries} mixed queries through {how} (tantivy), ms:")
        ranked = await timed_search(source, qs, url)
        kinds = sorted(k for k in ranked if not k.startswith("cpu:"))
        p95 = {k: report(k, ranked[k], GOALS.get(k), ranked[f"cpu:{k}"]) for k in kinds}
        if url:
            direct = await timed_search(source, qs)
            print("  the same through BuiltinSource.search (no HTTP), ms:")
            for kind in ("ranked+site", "facets"):
                report(kind, direct[kind], cpu=direct[f"cpu:{kind}"])
        stop = [
            ("stop", {"text": word, "groups": [HEP, RADIO], "with_facets": True})
            for word in gen.words[:STOP]
        ] * max(1, args.stop_queries // STOP)
        hot = await timed_search(source, stop, url)
        print(
            f"  a filler word alone (in up to {share(source, gen.words[0]):.0%} of the "
            "entries), with facets, ms:"
        )
        report("filler word", hot["all"], cpu=hot["cpu:all"])

        assert source.index is not None
        shutil.rmtree(source.index.path)
        source.index.reason = "the full-text index was removed (benchmark)"
        health = await source.health()
        print(f"  fallback ({health.message[:60]}…), ms:")
        fallback = await timed_search(source, qs, url)
        fb95 = report("fallback", fallback["all"], GOALS["fallback"], fallback["cpu:all"])
        for kind in ("ranked+site", "facets"):
            report(f"  fallback {kind}", fallback[kind], cpu=fallback[f"cpu:{kind}"])

        try:
            from continuum_federation.demo_archive import bench_harvest

            harvested = bench_harvest(folder / "harvest")
            print(
                f"  harvest of the demo archive: {harvested['files']} files, "
                f"{harvested['files_per_s']:.0f} files/s (first, every file read); "
                f"{harvested['rescan_files_per_s']:.0f} files/s (re-harvest, nothing changed)"
            )
        except ImportError as exc:  # the federation package is not installed here
            print(f"  (harvest throughput not measured: {exc})")

        sample = qs[: args.like_queries]
        print(f"  plain LIKE scan (page + total), {len(sample)} of the queries, ms:")
        like, like_cpu = like_scan(source.store, sample)
        like95 = report("LIKE", like, cpu=like_cpu)
        print(
            "  ratios (p95): LIKE / ranked+site {:.0f}x, LIKE / facets {:.0f}x, "
            "LIKE / fallback {:.0f}x, fallback / ranked {:.1f}x".format(
                like95 / p95["ranked+site"],
                like95 / p95["facets"],
                like95 / fb95,
                fb95 / p95["all"],
            )
        )
        await source.stop()
        if server is not None:
            server.stop()
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument(
        "--like-queries",
        type=int,
        default=40,
        help="queries also run as a LIKE scan (each reads the whole table)",
    )
    parser.add_argument(
        "--stop-queries", type=int, default=40, help="queries of one filler word alone"
    )
    parser.add_argument("--dir", default=None, help="folder for the files (default: /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument(
        "--direct", action="store_true", help="query BuiltinSource directly, not over HTTP"
    )
    asyncio.run(main(parser.parse_args()))
