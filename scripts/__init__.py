"""Operational scripts: the local stack, checks, benchmarks, fault injection, backups."""
