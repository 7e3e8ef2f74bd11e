"""`python -m anomaly.cli`: the same as the `anomaly` command."""

import sys

from anomaly.cli import main

sys.exit(main())
