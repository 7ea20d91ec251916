"""Test fixtures of the registry area: real registries, a token issuer, a fault proxy."""
