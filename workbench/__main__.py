"""`python -m workbench` behaves like the `workbench` console script."""

import sys

from workbench.cli import main

sys.exit(main())
