import pytest

from hub.config import Server
from hub.errors import PayloadTooLarge, RateLimited, UnsupportedMedia
from hub.limits import (
    RateLimiter,
    body_limit,
    check_body_size,
    check_content_type,
    check_source_rate,
)
from tests.source_factory import make_source


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_request_waits_for_a_token():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert [limiter.wait("shop", rate=2, burst=3) for _ in range(3)] == [0, 0, 0]
    assert limiter.wait("shop", rate=2, burst=3) == pytest.approx(0.5)


def test_tokens_refill_at_the_rate_up_to_the_burst():
    clock = FakeClock()
    limiter = RateLimiter(clock)
    for _ in range(3):
        limiter.wait("shop", rate=1, burst=3)
    clock.now += 60
    assert [limiter.wait("shop", rate=1, burst=3) for _ in range(4)][:3] == [0, 0, 0]
    assert limiter.wait("shop", rate=1, burst=3) > 0


def test_each_key_has_its_own_bucket():
    limiter = RateLimiter(FakeClock())
    limiter.wait("shop", rate=1, burst=1)
    assert limiter.wait("crm", rate=1, burst=1) == 0


@pytest.mark.parametrize(("rate", "retry_after"), [(10, 1), (1, 1), (0.5, 2), (0.1, 10)])
def test_a_limited_request_is_told_a_whole_number_of_seconds_of_at_least_one(rate, retry_after):
    limiter = RateLimiter(FakeClock())
    limiter.check("shop", rate=rate, burst=1)
    with pytest.raises(RateLimited) as caught:
        limiter.check("shop", rate=rate, burst=1)
    assert caught.value.retry_after == retry_after


def test_a_source_without_rate_limit_is_never_limited():
    limiter = RateLimiter(FakeClock())
    source = make_source()
    for _ in range(1000):
        check_source_rate(limiter, source)


def test_a_sources_burst_defaults_to_one_second_of_its_rate():
    limiter = RateLimiter(FakeClock())
    source = make_source(rate_limit=5)
    for _ in range(5):
        check_source_rate(limiter, source)
    with pytest.raises(RateLimited):
        check_source_rate(limiter, source)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON; charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/cloudevents+json",
        "application/vnd.api+json",
        "text/plain; charset=UTF-8",
    ],
)
def test_json_content_types_are_accepted(content_type):
    check_content_type(content_type)


@pytest.mark.parametrize(
    ("content_type", "named"),
    [
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("multipart/form-data; boundary=x", "multipart/form-data"),
        ("application/xml", "application/xml"),
        ("text/html", "text/html"),
        ("application/json; charset=latin-1", "latin-1"),
    ],
)
def test_other_content_types_are_refused_naming_the_type(content_type, named):
    with pytest.raises(UnsupportedMedia) as caught:
        check_content_type(content_type)
    assert named in caught.value.detail


def test_a_body_over_the_limit_is_refused():
    check_body_size(1024, 1024)
    with pytest.raises(PayloadTooLarge):
        check_body_size(1025, 1024)


@pytest.mark.parametrize(("source_limit", "expected"), [(None, 1_048_576), (4096, 4096)])
def test_the_source_limit_overrides_the_servers(source_limit, expected):
    assert body_limit(make_source(max_body_bytes=source_limit), Server()) == expected
