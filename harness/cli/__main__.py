"""``python -m harness.cli``: the same as ``lifeiqa-bench``."""

import sys

from harness.cli import main

sys.exit(main())
