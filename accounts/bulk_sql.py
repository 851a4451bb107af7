"""Many new rows of one table in one statement: COPY on PostgreSQL, `executemany` elsewhere.

For the write pass of `bulk_create_users` (users, their roles, their events
and audit rows, a thousand of each at a time). `bulk_create` would do, but it
builds a model instance per row and runs every value through the whole of
`get_db_prep_save` and the SQL compiler (and on PostgreSQL psycopg escapes
every element of its UNNEST arrays in Python): for the four tables of an
import that measured 3.4x a bare `bulk_create` of the users alone, over the
3x the import may cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin


def insert_rows(model: type[Model], rows: Iterable[Mapping[str, Any]]) -> None:
    """INSERT `rows` (column values keyed by field attname) into `model`'s table.

    What the ORM would store for an instance made of the same values: a column
    a row leaves out gets the field's default (`field.get_default()`), and
    every value goes through `field.get_db_prep_value(..., prepared=True)`,
    the step of `get_db_prep_save` that adapts a Python value for this
    database. The `get_prep_value` step before it is left out: the rows come
    from the services' own builders (`new_user_fields`, `event_fields`,
    `audit_fields`), whose values are of the field's type already. A value
    repeated from the row before (a shared `detail`, a constant) is adapted
    once. Database errors come out as Django's (`IntegrityError`).
    """
    # The connection itself, not `django.db.connection`: that proxy looks the connection up on
    # every attribute, and the field methods read `connection.ops` for every value.
    connection = transaction.get_connection()
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and isinstance(f, AutoFieldMixin))]
    # A default that is not a callable is the same for every row: asked for once.
    constant = {f.attname: f.get_default() for f in fields if not (f.has_default() and callable(f.default))}
    last: list[Any] = [object()] * len(fields)
    adapted: list[Any] = [None] * len(fields)
    params = []
    for row in rows:
        for i, field in enumerate(fields):
            name = field.attname
            value = row[name] if name in row else constant[name] if name in constant else field.get_default()
            if value is not last[i]:
                last[i], adapted[i] = value, field.get_db_prep_value(value, connection, prepared=True)
        params.append(list(adapted))
    if not params:
        return
    quote = connection.ops.quote_name
    table, columns = quote(model._meta.db_table), ", ".join(quote(str(f.column)) for f in fields)
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            # COPY: ~10x less client work than an UNNEST of arrays or than row-by-row statements.
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for values in params:
                    copy.write_row(values)
        else:
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608 (model names)
            cursor.executemany(sql, params)
