"""`python -m visualizer.bench`: run the benchmark sections (see visualizer.bench.run)."""

import sys

from .run import main

sys.exit(main())
