import signal
import sys

# First, before the slow imports: Dagster stops a run with SIGINT (a parent shell may have left it
# ignored), a container with SIGTERM; either, at any moment, gets a message and exit 130, no traceback.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.default_int_handler)
try:
    from ingest_raw.sources.program import main

    code = main()
except KeyboardInterrupt:
    print("ingest: interrupted before the load started; nothing changed", file=sys.stderr, flush=True)
    code = 130
sys.exit(code)
