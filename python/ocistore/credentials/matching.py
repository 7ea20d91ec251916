"""Kubernetes' credential-key matching (kubelet's ``URLsMatchStr``), implemented in Rust.

The scheme is ignored, the host is split on dots and each label is matched with Go's
``path.Match``; label counts and ports must be equal and the key's path must be a string prefix of
the image's path. Keys are parsed with (an exact copy of) Go's URL parser, as kubelet does, so
``?`` starts a query, ``\\``, ``^`` and a ``[`` inside the host are rejected: in practice ``*`` is
the only wildcard a kubelet key can use. A key kubelet cannot parse never matches;
:func:`url_match_problem` says why.

Where the Kubernetes "Images" page (older translations) says ``*my-registry.io/images`` matches
``a.sub.my-registry.io/images/...``, kubelet disagrees (label counts differ) and so does ocistore.
"""

from __future__ import annotations

from ocistore._core import (
    CredentialMatcher,
    is_default_registry_match,
    normalize_config_key,
    url_match_problem,
    url_matches,
)

__all__ = [
    "CredentialMatcher",
    "is_default_registry_match",
    "normalize_config_key",
    "url_match_problem",
    "url_matches",
]
