"""``python -m distill.probe ...``."""

import sys

from distill.probe.cli import main

sys.exit(main())
