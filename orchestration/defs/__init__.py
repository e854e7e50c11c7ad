"""One module per domain of the Dagster code location (bronze, silver, gold, maintenance, automation).

Each module holds its assets, checks, partitions, jobs, schedules and sensors and exposes
``defs(settings) -> dg.Definitions``; :mod:`orchestration.definitions` merges them. Nothing reads
settings or the environment at import time: values that depend on them (time zones, partition
start, sensor intervals) are built inside ``defs``.
"""
