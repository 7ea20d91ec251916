"""The Content-Range check of a parallel range (property test)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ocistore.registry.ranges import ParallelFetch, content_range_matches


@st.composite
def spans(draw: st.DrawFn) -> tuple[int, int, int]:
    size = draw(st.integers(min_value=1, max_value=2**50))
    start = draw(st.integers(min_value=0, max_value=size - 1))
    end = draw(st.integers(min_value=start + 1, max_value=size))
    return start, end, size


@given(spans(), st.sampled_from(["{size}", "*"]))
def test_the_exact_range_is_accepted(span: tuple[int, int, int], total: str) -> None:
    start, end, size = span
    header = f"bytes {start}-{end - 1}/{total.format(size=size)}"
    assert content_range_matches(header, start, end, size)


@given(spans(), st.text(max_size=40))
def test_any_other_header_is_refused(span: tuple[int, int, int], header: str) -> None:
    start, end, size = span
    exact = {f"bytes {start}-{end - 1}/{size}", f"bytes {start}-{end - 1}/*"}
    assert content_range_matches(header, start, end, size) is (header in exact)


@given(spans(), st.integers(min_value=-3, max_value=3).filter(bool))
def test_a_shifted_range_is_refused(span: tuple[int, int, int], shift: int) -> None:
    start, end, size = span
    for header in (
        f"bytes {start + shift}-{end - 1}/{size}",
        f"bytes {start}-{end - 1 + shift}/{size}",
        f"bytes {start}-{end - 1}/{size + shift}",
    ):
        assert not content_range_matches(header, start, end, size)


@given(st.integers(min_value=1, max_value=2**20), st.integers(min_value=0, max_value=2**24))
def test_ranges_apply_only_from_two_chunks(chunk: int, remaining: int) -> None:
    fetch = ParallelFetch(chunk_size=chunk, max_per_layer=4, slow_below=None)
    assert fetch.from_start(remaining) is (remaining >= 2 * chunk)
    assert not ParallelFetch(chunk_size=chunk, max_per_layer=1).applies(remaining)


def test_ranges_are_off_unless_asked_for() -> None:
    from ocistore.registry.options import RegistryOptions

    assert not RegistryOptions().parallel.applies(10**12)
    assert RegistryOptions().parallel.probe_until(0, 10**12) is None
