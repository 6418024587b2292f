"""The built-in catalogue's index: its records' database, a tantivy full-text index, a fallback.

* :mod:`.store` — :class:`~.store.CatalogueStore`, the database (a SQLite file or PostgreSQL:
  :mod:`.schema`) that is the source of truth (entries, replicas, bounding boxes, harvest
  fingerprints);
* :mod:`.terms` — how user text becomes search terms (never query syntax) and times become
  numbers, shared by both search paths;
* :mod:`.fulltext` — :class:`~.fulltext.FullTextIndex`, the tantivy index rebuilt from the
  store and kept current on every write; ranked search with facet counts;
* :mod:`.fallback` — :class:`~.fallback.FallbackSearch`, the same search through the database
  (FTS5 or tsvector, newest matches first, bounded) while the index is missing, corrupt or
  being rebuilt.

:class:`~continuum_hub.catalogue.sources.builtin.BuiltinSource` joins them into a source.
"""
