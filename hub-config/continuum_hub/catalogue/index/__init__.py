"""The built-in catalogue's index: SQLite records, a tantivy full-text index, a fallback.

* :mod:`.store` — :class:`~.store.CatalogueStore`, the SQLite file that is the source of truth
  (entries, replicas, bounding boxes in an R*Tree, harvest fingerprints);
* :mod:`.terms` — how user text becomes search terms (never query syntax) and times become
  numbers, shared by both search paths;
* :mod:`.fulltext` — :class:`~.fulltext.FullTextIndex`, the tantivy index rebuilt from the
  store and kept current on every write; ranked search with facet counts;
* :mod:`.fallback` — :class:`~.fallback.FallbackSearch`, the same search through SQLite (FTS5,
  newest matches first, bounded) while the index is missing, corrupt or being rebuilt.

:class:`~continuum_hub.catalogue.sources.builtin.BuiltinSource` joins them into a source.
"""
