"""Helpers for tests and benchmarks (not product code): hand-made silver tables, bronze rows, the Dagster UI check."""
