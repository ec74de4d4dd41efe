"""`python -m metafuse.stress.locust`: print the locustfile's path, for `locust -f "$(...)"`."""

from __future__ import annotations

from . import LOCUSTFILE

print(LOCUSTFILE)
