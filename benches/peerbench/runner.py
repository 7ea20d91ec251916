"""Runs the jobs in rounds, alternating their order in every group to cancel drift."""

from __future__ import annotations

import sys
from collections.abc import Callable

from peerbench.measure import Job, Outcome, missing_tools, run_once


def run_rounds(
    jobs: list[Job],
    rounds: int,
    request_counter: Callable[[], int] | None = None,
    server_cpu: Callable[[], float] | None = None,
) -> list[Outcome]:
    """Every job ``rounds`` times; a peer that fails once is reported n/a and not retried.
    ``server_cpu`` reads the registry's CPU seconds, to count them beside each job's."""
    outcomes = {id(job): Outcome(job) for job in jobs}
    for job in jobs:
        lacking = missing_tools(job)
        if lacking:
            outcomes[id(job)].error = f"not installed: {', '.join(lacking)}"
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.group, []).append(job)
    for round_index in range(rounds):
        for members in groups.values():
            # Forward on even rounds, backward on odd ones: drift hits every job alike.
            order = members if round_index % 2 == 0 else list(reversed(members))
            for job in order:
                outcome = outcomes[id(job)]
                if outcome.error is not None:
                    continue
                try:
                    outcome.samples.append(run_once(job, request_counter, server_cpu))
                except RuntimeError as error:
                    outcome.error = str(error)
                    verdict = "FAILED" if job.ours else "n/a from now on, the peer failed"
                    print(f"  {job.group} / {job.name}: {verdict}: {error}", file=sys.stderr)
        print(f"round {round_index + 1}/{rounds} done", file=sys.stderr, flush=True)
    return [outcomes[id(job)] for job in jobs]
