"""``python -m pipeline.cli``: the ``dicface`` command."""

import sys

from dicface.pipeline.cli import main

sys.exit(main())
