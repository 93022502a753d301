"""``python -m wmgym.cli``: the same as the ``wmgym`` command."""

import sys

from wmgym.cli import main

sys.exit(main())
