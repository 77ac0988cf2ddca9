"""The source program: `python -m ingest_raw.sources <name> [--partition KEY] [--input PATH_OR_URL]`.

An ordinary program that loads `raw.<table>` from the warehouse named by the WAREHOUSE_* variables.
Launched by Dagster (DAGSTER_PIPES_CONTEXT is set) it also reports the materialization and the check
results through Pipes. It imports dagster-pipes, psycopg and the standard library, never dagster.

Exit codes: 0 loaded (also when SIGINT/SIGTERM arrived while the commit went through), 65 permanent
failure (bad data, HTTP 4xx: do not retry), 71 out of memory, 75 transient failure (HTTP 5xx, timeouts,
lost connections, lock timeout: retry later), 76 the commit was cut off and its outcome is unknown,
130 interrupted (SIGINT/SIGTERM, rolled back).

Test hook: INGEST_PAUSE_AT=<stage> (locked, copy, validate, commit) makes the program print
"ingest: paused at <stage> (pid N)" on stderr and wait there, so a test can kill it at that exact point.
"""
