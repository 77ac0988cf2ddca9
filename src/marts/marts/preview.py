"""A small markdown preview of a table's first rows, for the asset's page in the UI."""

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

PREVIEW_ROWS = 5


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def preview_table(conn: psycopg.Connection, schema: str, table: str, limit: int = PREVIEW_ROWS) -> str:
    query = sql.SQL("select * from {}.{} limit {}").format(
        sql.Identifier(schema), sql.Identifier(table), sql.Literal(limit)
    )
    with conn.cursor() as cursor:
        cursor.execute(query)
        columns = [column.name for column in cursor.description]
        return markdown_table(columns, cursor.fetchall())
