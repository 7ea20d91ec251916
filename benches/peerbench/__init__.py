"""The pieces of ``benches/peers.py``: image building, runners, limits, report and plot."""
