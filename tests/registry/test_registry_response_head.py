"""``ocistore._core.parse_response_head`` (httparse) on hostile bytes, and against h11 (the
parser of the full path) on well-formed response heads."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocistore import _core
from ocistore.errors import MalformedResponseError, OciStoreError

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
names = st.text(TOKEN_CHARS, min_size=1, max_size=20).filter(
    lambda name: name.lower() not in ("content-length", "transfer-encoding")  # h11 checks these
)
# Field values: visible ASCII and obs-text, spaces and tabs inside but not at either end.
visible = st.sampled_from(
    [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0x80, 0x100)]
)
values = st.builds(
    lambda first, middle: (first + middle).rstrip(" \t") if first else "",
    st.text(visible, max_size=1),
    st.text(st.one_of(visible, st.sampled_from(" \t")), max_size=30),
)
reasons = st.text(st.sampled_from([chr(c) for c in range(0x20, 0x7F)]), max_size=20)


@st.composite
def heads(draw: st.DrawFn) -> tuple[bytes, int, list[tuple[str, str]]]:
    status = draw(st.integers(200, 599))
    fields = draw(st.lists(st.tuples(names, values), max_size=12))
    space = draw(st.sampled_from(["", " ", "\t", "  "]))  # optional blanks around a value
    lines = [f"HTTP/1.1 {status} {draw(reasons)}"]
    lines += [f"{name}:{space}{value}{space}" for name, value in fields]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data, status, fields


def _h11(data: bytes) -> h11.Response:
    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="HEAD", target="/", headers=[("Host", "registry")]))
    connection.receive_data(data)
    event = connection.next_event()
    assert isinstance(event, h11.Response)
    return event


@given(heads(), st.binary(max_size=40))
def test_agrees_with_h11_on_well_formed_heads(
    head: tuple[bytes, int, list[tuple[str, str]]], after: bytes
) -> None:
    data, status, fields = head
    parsed = _core.parse_response_head(data + after)
    assert parsed is not None
    minor_version, parsed_status, parsed_fields, length = parsed
    assert (minor_version, parsed_status, length) == (1, status, len(data))
    assert parsed_fields == fields
    reference = _h11(data)
    assert reference.status_code == parsed_status
    assert [(n.decode(), v.decode("latin-1")) for n, v in reference.headers.raw_items()] == [
        (name, value) for name, value in parsed_fields
    ]


@given(heads())
def test_every_prefix_of_a_head_is_incomplete(
    head: tuple[bytes, int, list[tuple[str, str]]],
) -> None:
    data = head[0]
    for end in range(len(data)):
        assert _core.parse_response_head(data[:end]) is None


@given(st.binary(max_size=300))
def test_any_bytes_give_a_head_none_or_the_typed_error(data: bytes) -> None:
    try:
        parsed = _core.parse_response_head(data)
    except MalformedResponseError as error:
        assert isinstance(error, OciStoreError) and isinstance(error, ValueError)
        return
    if parsed is not None:
        assert 0 < parsed[3] <= len(data) and data[: parsed[3]].endswith(b"\n")


@pytest.mark.parametrize(
    "data",
    [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nNo Colon\r\n\r\n", b"HTTP/1.1 99999 X\r\n\r\n"],
)
def test_malformed_heads_raise(data: bytes) -> None:
    with pytest.raises(MalformedResponseError, match="malformed HTTP response head"):
        _core.parse_response_head(data)
