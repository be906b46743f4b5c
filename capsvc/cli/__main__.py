"""``python -m capsvc.cli``: the same as the ``capsvc`` command."""

import sys

from . import main

sys.exit(main())
