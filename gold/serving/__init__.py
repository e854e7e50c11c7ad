"""The metrics read side of gold: what the metrics API (``api.routes.metrics``) serves.

- ``reader``: :class:`GoldReader`, a long-lived in-memory DuckDB copy of the gold tables (plus slim
  rollups and the numpy arrays), refreshed when a gold table's Delta version changes;
- ``queries``: the SQL of every metrics answer over that copy (any filter);
- ``fast``: the same answers from numpy arrays for queries without team/attendant filters.

Statistic and SLA definitions come from ``gold.stats``; the routes only parse parameters and shape
HTTP answers (JSON / CSV).
"""
