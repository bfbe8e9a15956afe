"""``python -m explorer`` is the same as the ``lstm-explorer`` command."""
import sys

from explorer.cli import main

sys.exit(main())
