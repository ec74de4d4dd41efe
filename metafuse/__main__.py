"""`python -m metafuse`: the same as the `metafuse` command.

Holds no logic: it imports only `cli` and exits with what `cli.main` returns.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
