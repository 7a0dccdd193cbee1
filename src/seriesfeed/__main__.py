"""``python -m seriesfeed`` runs the command line."""

import sys

from seriesfeed.cli import main

sys.exit(main())
