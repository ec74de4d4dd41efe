"""The catalog's documented limits, in one place so code, errors and docs agree.

Constants only: it imports nothing and checks nothing itself (`validation` applies them).
"""

from __future__ import annotations

NAME_MAX = 255
"""Longest dataset or field name, in characters."""
TAG_MAX = 100
"""Longest tag, in characters."""
DOMAIN_MAX = 100
"""Longest domain, in characters."""
QUERY_MAX = 500
"""Longest search query, in characters."""
URI_MAX = 4096
"""Longest URI, in characters."""
SHORT_TEXT_MAX = 255
"""Longest owner, format or field data type, in characters."""
DESCRIPTION_MAX = 65_536
"""Longest dataset or field description, in characters."""
FIELDS_MAX = 2_000
"""Most fields one dataset may have."""
TAGS_MAX = 100
"""Most tags one dataset may have."""
UPSTREAM_MAX = 1_000
"""Most upstream datasets (lineage edges) one dataset may name."""
COUNT_MAX = 2**63 - 1
"""Largest size_bytes or row_count: SQLite's largest integer."""
PAGE_MAX = 10_000
"""Largest `limit` accepted by `Catalog.list` and `Catalog.search`."""
LINEAGE_DEPTH_MAX = 100
"""Deepest lineage walk accepted by `Catalog.lineage`."""
