"""Software modules of the demo sites: a small Lmod module tree per site.

Real sites publish their software as environment modules (Lmod, often over EasyBuild or
EESSI/CVMFS); the software catalogue searches them through ``module spider``.  The demo sites
get a few Lua modulefiles each — enough for "which site has ROOT 6.32 and a GPU?" to have one
answer — written by :func:`write_module_trees` under :data:`MODULES_ROOT`, the path the demo
registry (``hub-config/sites.demo.yaml``, ``lmod.modulepath``) names.  Like a site's software
stack, the trees live at a fixed path outside any state folder, so that the demo, the tests and
jobs on the sites all find them; writing them again is cheap and changes nothing.

The modules only set a few variables (``ROOT_VERSION``…): loading one is real, the software
behind it is not installed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

#: where the demo sites' module trees live (one folder per site)
MODULES_ROOT = Path("/opt/continuum-hub/modules")


@dataclass(frozen=True)
class Module:
    """One modulefile: ``name/version`` with what ``module spider`` reports of it."""

    name: str
    version: str
    description: str
    category: str
    #: a variable the module sets (NAME, value)
    sets: tuple[str, str]

    @property
    def full_name(self) -> str:
        return f"{self.name}/{self.version}"

    def lua(self) -> str:
        """The Lua modulefile."""
        var, value = self.sets
        return (
            f"-- demo module of Continuum Hub's local federation\n"
            f"help([[{self.description} {self.version}]])\n"
            f'whatis("Name: {self.name}")\n'
            f'whatis("Version: {self.version}")\n'
            f'whatis("Description: {self.description}")\n'
            f'whatis("Category: {self.category}")\n'
            f'setenv("{var}", "{value}")\n'
        )


def _root(version: str) -> Module:
    return Module(
        "root", version, "ROOT data analysis framework (CERN)", "physics", ("ROOT_VERSION", version)
    )


def _python() -> Module:
    return Module("python", "3.11", "Python language", "language", ("PYTHON_VERSION", "3.11"))


#: the modules of each demo site
DEMO_MODULES: dict[str, tuple[Module, ...]] = {
    "alpha": (
        _root("6.30"),
        _python(),
        Module("gcc", "12", "GNU compiler collection", "compiler", ("GCC_VERSION", "12")),
    ),
    "beta": (
        _root("6.32"),
        Module("cuda", "12.4", "NVIDIA CUDA toolkit", "gpu", ("CUDA_VERSION", "12.4")),
        _python(),
    ),
}


def write_module_trees(
    root: Path = MODULES_ROOT, modules: dict[str, tuple[Module, ...]] | None = None
) -> dict[str, Path]:
    """Write each site's modulefiles under ``root/<site>`` (readable by everyone); files whose
    content is already right are left alone.

    Returns
    -------
    dict
        Site name → its module tree (the registry's ``lmod.modulepath`` entry).
    """
    trees = {}
    for site, site_modules in (DEMO_MODULES if modules is None else modules).items():
        tree = root / site
        for module in site_modules:
            path = tree / module.name / f"{module.version}.lua"
            text = module.lua()
            if path.is_file() and path.read_text() == text:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(path)
        for folder in (root, tree, *(tree / m.name for m in site_modules)):
            folder.chmod(0o755)
        trees[site] = tree
    return trees


def main(argv: list[str] | None = None) -> None:
    """``python -m continuum_federation.modules [ROOT]``: write the demo module trees."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("root", nargs="?", type=Path, default=MODULES_ROOT)
    args = parser.parse_args(argv)
    for site, tree in write_module_trees(args.root).items():
        print(f"{site}: {tree}")


if __name__ == "__main__":
    main()
