"""Credentials never leave in text: `redact` hides the user and password part of every URL.

An S3-compatible endpoint may be given as `http://user:secret@host:9000`; that endpoint ends up in
a store's `url`, in `InvalidStoreURL` messages and in botocore's own messages ("Could not connect
to the endpoint URL: ..."). Everything a store shows passes through `redact` first.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

REDACTED = "***"
"""What a URL's user-and-password part is replaced with."""

# `scheme://`, then the userinfo: everything up to the last '@' before the host's end ('/', '?',
# '#' or a space). Greedy on purpose: if a message has no such end, more is hidden, never less.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def redact(text: str) -> str:
    """`text` with the user-and-password part of every `scheme://user:pass@host` in it replaced.

    Also sees through percent-encoding (an `endpoint_url=http%3A%2F%2Fu%3Ap%40h` query value):
    if decoding `text` reveals credentials, the decoded text is returned, redacted. Text without
    credentials comes back unchanged.
    """
    hidden = _USERINFO.sub(rf"\1{REDACTED}@", text)
    decoded = unquote(hidden)
    if decoded != hidden:
        decoded_hidden = _USERINFO.sub(rf"\1{REDACTED}@", decoded)
        if decoded_hidden != decoded:
            return decoded_hidden
    return hidden
