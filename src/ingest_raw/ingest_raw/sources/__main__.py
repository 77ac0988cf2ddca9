import sys

from ingest_raw.sources.program import main

sys.exit(main())
