"""``python -m pitfalls``: the same as the ``pitfalls`` command."""

import sys

from pitfalls._cli import main

if __name__ == "__main__":
    sys.exit(main())
