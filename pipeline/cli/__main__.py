"""``python -m pipeline.cli``: the ``dicface`` command."""

import sys

from pipeline.cli import main

sys.exit(main())
