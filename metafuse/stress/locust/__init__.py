"""The stress scenarios as Locust users, for load from many machines (the `metafuse[locust]` extra).

Locust loads a locustfile by path, not by module name: run
`locust -f metafuse/stress/locust/locustfile.py --master` on one host and
`locust -f metafuse/stress/locust/locustfile.py --worker --master-host HOST` on the others
(docs/stress-testing.md, "Many machines"). `python -m metafuse.stress.locust` prints that path
for an installed package. Importing this package does not import Locust.
"""

from __future__ import annotations

import os

LOCUSTFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "locustfile.py")
"""The path to give `locust -f`."""
