"""Settings shared by every test area."""

from hypothesis import settings

# Timing deadlines make property tests flaky on a loaded 2-core machine.
settings.register_profile("ocistore", deadline=None)
settings.load_profile("ocistore")
