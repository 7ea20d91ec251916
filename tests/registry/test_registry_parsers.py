"""Property tests for the untrusted text the registry client parses."""

from __future__ import annotations

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from ocistore.registry.auth import choose_challenge, parse_challenges
from ocistore.registry.errors import parse_error_codes
from ocistore.registry.transport import redact_url, retry_after_seconds

TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
    min_size=1,
    max_size=12,
)
VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(deadline=None)  # results must not depend on machine load
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Bearer", "Basic", "Digest", "Negotiate"]),
            st.dictionaries(TOKEN, VALUE, max_size=5),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_formatted_challenges_parse_back(challenges: list[tuple[str, dict[str, str]]]) -> None:
    header = ", ".join(
        scheme + (" " + ", ".join(f"{k}={quote(v)}" for k, v in params.items()) if params else "")
        for scheme, params in challenges
    )
    parsed = parse_challenges([header])
    assert [(c.scheme, dict(c.params)) for c in parsed] == [
        (scheme.lower(), {k.lower(): v for k, v in params.items()}) for scheme, params in challenges
    ]


def test_scopes_with_commas_and_spaces_survive() -> None:
    [challenge] = parse_challenges(
        [
            'Bearer realm="https://auth.example/token",service="reg",'
            'scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope"'
        ]
    )
    assert challenge.params["scope"] == "repository:a/b:pull,push repository:c:pull"
    assert challenge.params["error"] == "insufficient_scope"
    assert choose_challenge(parse_challenges(['Basic realm="x"', challenge.scheme])) is not None


@settings(deadline=None)  # results must not depend on machine load
@given(st.text(max_size=300))
def test_any_header_text_parses_without_error(text: str) -> None:
    for challenge in parse_challenges([text]):
        assert challenge.scheme == challenge.scheme.lower()


@settings(deadline=None)  # results must not depend on machine load
@given(st.binary(max_size=500))
def test_any_error_body_parses_without_error(body: bytes) -> None:
    for code, message in parse_error_codes(body):
        assert len(code) <= 64 and len(message) <= 300


@settings(deadline=None)  # results must not depend on machine load
@given(st.dictionaries(TOKEN, VALUE.filter(lambda v: v != ""), min_size=1, max_size=5))
def test_redacted_urls_keep_no_query_value(query: dict[str, str]) -> None:
    url = httpx.URL("https://storage.example/blob", params=query)
    redacted = httpx.URL(redact_url(url))
    assert (redacted.host, redacted.path) == ("storage.example", "/blob")
    assert list(redacted.params.keys()) == list(query)
    assert set(redacted.params.values()) == {"REDACTED"}


@settings(deadline=None)  # results must not depend on machine load
@given(st.one_of(st.integers(min_value=0, max_value=10**6).map(str), st.text(max_size=40)))
def test_retry_after_is_a_non_negative_delay_or_none(value: str) -> None:
    request = httpx.Request("GET", "http://r/")
    try:
        response = httpx.Response(429, headers={"Retry-After": value}, request=request)
    except (ValueError, UnicodeEncodeError):
        return  # not a header value httpx can carry
    delay = retry_after_seconds(response)
    assert delay is None or delay >= 0
    if value.strip().isdigit():
        assert delay == float(value.strip())


def test_retry_after_http_date() -> None:
    request = httpx.Request("GET", "http://r/")
    past = httpx.Response(
        503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, request=request
    )
    assert retry_after_seconds(past) == 0.0
