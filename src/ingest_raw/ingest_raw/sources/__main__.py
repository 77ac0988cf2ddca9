import gc
import sys

from ingest_raw.errors import interrupted_before_the_load
from shared.signals import stop_on_signals

# First, before the slow imports: a stop, at any moment, gets a message and exit 130, no traceback.
stop_on_signals()
try:
    from ingest_raw.sources.program import run
except KeyboardInterrupt:
    code = interrupted_before_the_load()
else:
    code = run(sys.argv[1:])
# What is still alive at exit needs no collecting: Python's last collections over psycopg's objects
# took 25 ms, a tenth of loading a small source.
gc.freeze()
sys.exit(code)
