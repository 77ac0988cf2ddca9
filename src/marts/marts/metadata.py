"""Materialization metadata read from the warehouse: row counts of tables, previews of marts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:
    import psycopg

PREVIEW_ROWS = 5
#: Schema of the models that get a preview of their first rows, for a person looking at the UI.
PREVIEWED_SCHEMA = "marts"


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def table_metadata(conn: psycopg.Connection, schema: str, name: str) -> dict[str, Any]:
    """Row count for a table (never for a view: counting runs its query), plus a preview in marts."""
    from psycopg import sql  # at run time only: loading the definitions needs no database driver

    kind = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        (schema, name),
    ).fetchone()
    if kind is None or kind[0] != "r":
        return {}
    relation = sql.Identifier(schema, name)
    (rows,) = conn.execute(sql.SQL("select count(*) from {}").format(relation)).fetchone()
    metadata: dict[str, Any] = {"dagster/row_count": dg.MetadataValue.int(rows)}
    if schema == PREVIEWED_SCHEMA:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("select * from {} limit {}").format(relation, sql.Literal(PREVIEW_ROWS)))
            columns = [column.name for column in cursor.description]
            metadata["preview"] = dg.MetadataValue.md(markdown_table(columns, cursor.fetchall()))
    return metadata
