"""What the light way takes as is, whatever a server sends (property tests): a plain body's
length (``LightResponse.plain_length``) and the answer to a resumed blob GET
(``client._resume_skip``, shared with the full path)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocistore.registry.client import _resume_skip
from ocistore.registry.lighthttp import LightResponse

# Header values as the light way sees them: any latin-1 text (httparse's bytes, decoded).
VALUES = st.text(st.characters(max_codepoint=255), max_size=24)
# Numbers to the eye: latin-1's superscripts are digits to ``str.isdigit``, not to ``int``.
NUMBERISH = st.text("0123456789\u00b2\u00b3\u00b9 +-", min_size=1, max_size=6)
CODINGS = st.sampled_from([None, "identity", " Identity", "gzip", "zstd", "identity, gzip"])


@pytest.fixture(scope="module")
def sock() -> Iterator[socket.socket]:
    one, other = socket.socketpair()
    with one, other:
        yield one


@given(
    length=st.one_of(VALUES, NUMBERISH, st.integers(min_value=0, max_value=2**63).map(str)),
    chunked=st.booleans(),
    coding=CODINGS,
    early=st.binary(max_size=40),
)
def test_a_plain_length_is_an_ascii_number_and_no_coding(
    sock: socket.socket, length: str, chunked: bool, coding: str | None, early: bytes
) -> None:
    headers = {"content-length": length}
    if chunked:
        headers["transfer-encoding"] = "chunked"
    if coding is not None:
        headers["content-encoding"] = coding
    plain = LightResponse(sock, 200, headers, early, 1.0).plain_length()  # never raises
    number = length.isascii() and length.isdigit()
    takes = number and not chunked and coding in (None, "identity", " Identity")
    assert plain == (int(length) if takes and len(early) <= int(length) else None)


@given(
    status=st.integers(min_value=100, max_value=599),
    offset=st.integers(min_value=0, max_value=2**50),
    header=st.one_of(VALUES, NUMBERISH.map("bytes {}-".format)),
)
def test_a_resume_takes_a_200_whole_or_a_206_from_its_offset(
    status: int, offset: int, header: str
) -> None:
    skip = _resume_skip(status, header, offset)  # never raises
    if status == 200:
        assert skip == offset  # Range ignored: the bytes held already come again
    elif status == 206:
        assert skip is None or (skip == 0 and header.startswith(("bytes ", " bytes", "bytes")))
    else:
        assert skip is None


@given(
    offset=st.integers(min_value=0, max_value=2**50),
    length=st.integers(min_value=1, max_value=2**40),
    shift=st.integers(min_value=-3, max_value=3),
    total=st.sampled_from(["{size}", "*"]),
)
def test_a_206_is_taken_only_from_the_offset(
    offset: int, length: int, shift: int, total: str
) -> None:
    start = max(offset + shift, 0)
    header = f"bytes {start}-{start + length - 1}/{total.format(size=start + length)}"
    assert _resume_skip(206, header, offset) == (0 if start == offset else None)
    assert _resume_skip(206, header.replace(str(start), f"{start}\u00b2", 1), offset) is None
