"""`python -m metafuse.stress.locust`: print the locustfile's path, for `locust -f "$(...)"`.

Imports neither Locust nor the catalog: only the package's `LOCUSTFILE`.
"""

from __future__ import annotations

from . import LOCUSTFILE

print(LOCUSTFILE)
