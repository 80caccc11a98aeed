"""`python -m shared.cli`: the owner's command line."""

import sys

from shared.cli.app import main

sys.exit(main())
