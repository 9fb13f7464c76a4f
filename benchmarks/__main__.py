"""``python -m benchmarks``: run the convert benchmark (see bench_convert.py)."""

import sys

from benchmarks.bench_convert import main

sys.exit(main())
