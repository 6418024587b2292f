"""The steps' dependencies as a directed acyclic graph: checked, and put in running order.

A graph is a mapping of step names, in file order, to the names each step depends on.
:func:`check` refuses a dependency on an unknown step or on the step itself, and a cycle, whose
path it names (``the dependencies form a cycle: a → b → c → a``); :func:`order` lists the
steps so that each comes after those it depends on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Graph = Mapping[str, Sequence[str]]


class GraphError(ValueError):
    """A dependency is refused.

    Attributes
    ----------
    index
        Position of the offending step in the graph (file order).
    where
        Place below that step: ``("depends_on", i)`` for one dependency, ``("depends_on",)``
        for a cycle.
    """

    def __init__(self, message: str, index: int, where: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.index = index
        self.where = where


def _cycle(graph: Graph, start: str) -> list[str] | None:
    """A cycle through ``start``, as the path ``[start, …, start]``, or ``None``."""
    path, seen = [start], {start}

    def walk(node: str) -> bool:
        for successor in graph[node]:
            if successor == start:
                path.append(start)
                return True
            if successor not in seen:
                seen.add(successor)
                path.append(successor)
                if walk(successor):
                    return True
                path.pop()
        return False

    return path if walk(start) else None


def check(graph: Graph) -> None:
    """Refuse unknown or self-dependencies and cycles.

    Raises
    ------
    GraphError
        ``step 'a' depends on itself``, ``unknown step 'x' (steps: a, b)``, or
        ``the dependencies form a cycle: a → b → a``.
    """
    names = list(graph)
    for index, (name, depends_on) in enumerate(graph.items()):
        for i, other in enumerate(depends_on):
            if other == name:
                raise GraphError(f"step {name!r} depends on itself", index, ("depends_on", i))
            if other not in graph:
                raise GraphError(
                    f"unknown step {other!r} (steps: {', '.join(names)})",
                    index,
                    ("depends_on", i),
                )
    for index, name in enumerate(names):
        cycle = _cycle(graph, name)
        if cycle:
            raise GraphError(
                f"the dependencies form a cycle: {' → '.join(cycle)}", index, ("depends_on",)
            )


def order(graph: Graph) -> list[str]:
    """The names of a checked graph, each after its dependencies, else in file order."""
    done: list[str] = []
    remaining = list(graph)
    while remaining:
        ready = next(n for n in remaining if all(d in done for d in graph[n]))
        done.append(ready)
        remaining.remove(ready)
    return done
