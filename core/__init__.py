"""Plumbing no app owns: domain errors and their HTTP mapping, the cache helpers, after-commit
tasks, the request context, logging, metrics, health checks, ids, pagination, the strict
serializer base and parsers.

It imports no app (`accounts`, `profiles`, `notifications`) and not `config`, the composition
root: an app contributes to it by registering (a readiness check, a metrics collector) from its
`AppConfig.ready()`. `scripts/import_graph.py` keeps it so.
"""
