"""``python -m jointnas.cli``: the same as the ``jointnas`` command."""

import sys

from jointnas.cli import main

sys.exit(main())
