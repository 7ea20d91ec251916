"""``python -m ocistore``: the command line."""

from ocistore.cli import main

main()
