"""JSON text exactly as Go's ``encoding/json`` writes it (kubectl's secrets, kubelet's hashes)."""

from __future__ import annotations

import json
from typing import Any

# Go escapes these even inside strings (HTML safety); Python does not. They can only occur inside
# string literals of JSON text, so replacing them in the whole text is safe.
_GO_EXTRA_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_json_dumps(value: Any) -> str:
    """Compact JSON of ``value`` (dict order kept) with Go's string escaping."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _GO_EXTRA_ESCAPES.items():
        text = text.replace(char, escape)
    return text
