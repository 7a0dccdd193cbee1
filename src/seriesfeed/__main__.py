"""``python -m seriesfeed`` runs the command line."""

import sys

from seriesfeed import stopping

stopping.defer()  # before the slow imports below: a daemon stopped now exits cleanly

from seriesfeed.cli import main  # noqa: E402

sys.exit(main())
