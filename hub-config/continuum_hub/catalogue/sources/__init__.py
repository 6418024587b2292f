"""Catalogue sources: the interface (:mod:`.base`) and the built-in kinds.

A deployment lists its sources in ``CatalogueApp.sources`` (name → kind + settings); a kind is a
:class:`~.base.CatalogueSource` subclass found by its entry point name in the group
``continuum_hub.catalogue_sources`` (ours: ``builtin``, ``rucio``, ``tap``, ``software``), or by
its import string, so a site adds a kind without patching Continuum Hub.
"""
