"""Materialization metadata read from the warehouse: column types, row counts of tables, previews of marts."""

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


def column_schema(
    conn: psycopg.Connection, schema: str, name: str, declared: dg.TableSchema | None
) -> dg.TableSchema | None:
    """The relation's columns with their types as the warehouse has them, described as in dbt."""
    columns = conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull from pg_attribute a"
        " join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (schema, name),
    ).fetchall()
    if not columns:
        return None
    descriptions = {column.name: column.description for column in declared.columns} if declared else {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                column,
                type_name,
                description=descriptions.get(column),
                constraints=dg.TableColumnConstraints(nullable=not not_null),
            )
            for column, type_name, not_null in columns
        ]
    )


def table_metadata(
    conn: psycopg.Connection, schema: str, name: str, declared: dg.TableSchema | None = None
) -> dict[str, Any]:
    """Column types; for a table (never a view: counting runs its query) its row count, and a preview
    in marts."""
    from psycopg import sql  # at run time only: loading the definitions needs no database driver

    metadata: dict[str, Any] = {}
    columns = column_schema(conn, schema, name, declared)
    if columns is not None:
        metadata["dagster/column_schema"] = columns
    kind = conn.execute(
        "select c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s",
        (schema, name),
    ).fetchone()
    if kind is None or kind[0] != "r":
        return metadata
    relation = sql.Identifier(schema, name)
    (rows,) = conn.execute(sql.SQL("select count(*) from {}").format(relation)).fetchone()
    metadata["dagster/row_count"] = dg.MetadataValue.int(rows)
    if schema == PREVIEWED_SCHEMA:
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("select * from {} limit {}").format(relation, sql.Literal(PREVIEW_ROWS)))
            columns = [column.name for column in cursor.description]
            metadata["preview"] = dg.MetadataValue.md(markdown_table(columns, cursor.fetchall()))
    return metadata
