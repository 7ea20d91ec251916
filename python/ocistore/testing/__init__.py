"""Helpers for tests and demos, not part of the runtime API: reproducible images to push and pull.

``ocistore.testing.imagebuild`` builds OCI and Docker images (and indexes) from in-memory
files, deterministically, so tests, benchmarks and the demo need no network and no other tool.
"""
