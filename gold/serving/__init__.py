"""The metrics read side of gold: what the metrics API (``api.routes.metrics``) serves.

- ``store``: the serving store, gold laid out once per version for every worker: a DuckDB file (tables
  sorted by instance and day, slim rollups, macros) opened read-only and the fast path's memory-mapped
  numpy arrays, built under a lock when missing;
- ``reader``: :class:`GoldReader`, the current store, swapped when a gold table's Delta version changes;
- ``queries``: the SQL of every metrics answer over the store (any filter);
- ``fast``: the same answers from numpy arrays for queries without team/attendant filters.

Statistic and SLA definitions come from ``gold.stats``; the routes only parse parameters and shape
HTTP answers (JSON / CSV).
"""
