"""``python -m pitfalls``: the same as the ``pitfalls`` command."""

import sys

from pitfalls._cli import main

sys.exit(main())
