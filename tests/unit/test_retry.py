import pytest

from failover.errors import AuthError, Throttled, Transient
from failover.retry import RetryPolicy


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(max_retry_after=5.0)
    assert policy.delay(1, Throttled("slow down", retry_after=2.0)) == 2.0
    assert policy.delay(1, Throttled("slow down", retry_after=600.0)) == 5.0


def test_backoff_is_bounded_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0)
    for attempt in range(1, 20):
        assert 0.0 <= policy.delay(attempt, Transient("x")) <= 1.0


def test_transient_errors_are_retried_a_bounded_number_of_times() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        raise Transient("reset")

    with pytest.raises(Transient):
        RetryPolicy(max_attempts=3, initial_backoff=0.0).call(flaky)
    assert len(calls) == 3


def test_auth_errors_fail_fast() -> None:
    calls = []

    def denied() -> str:
        calls.append(1)
        raise AuthError("AccessDenied")

    with pytest.raises(AuthError):
        RetryPolicy(max_attempts=5).call(denied)
    assert len(calls) == 1


def test_success_after_a_retry() -> None:
    outcomes = iter([Throttled("503", retry_after=0.0), "ok"])

    def sometimes() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    seen = []
    assert RetryPolicy().call(sometimes, on_retry=lambda e, d: seen.append(e)) == "ok"
    assert len(seen) == 1
