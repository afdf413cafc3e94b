"""Guessing passwords is throttled: a name that keeps failing is locked for a while, an
address that keeps failing is refused, and both answers say when to come back."""

import pytest

from sfumato.errors import TooManyRequests
from sfumato.throttle import LOGIN_FAILURES_PER_ADDRESS, SIGNUPS_PER_ADDRESS, Throttle

RIGHT = "a long password"


def _login(server, name, password):
    return server.client.post("/v1/auth/login", json={"username": name, "password": password})


def test_a_name_that_keeps_failing_is_locked_even_for_the_right_password(server):
    server.user("bob")
    server.user("carol")
    for _ in range(5):
        assert _login(server, "bob", "guess").status_code == 401
    locked = _login(server, "bob", RIGHT)
    assert locked.status_code == 429
    assert 1 <= int(locked.headers["Retry-After"]) <= 60
    message = locked.json()["error"]["message"]
    assert "locked" in message and "Try again in" in message
    # the name's case does not dodge the lock; another name still logs in
    assert _login(server, "BOB", RIGHT).status_code == 429
    assert _login(server, "carol", RIGHT).status_code == 200


def test_a_right_password_is_not_counted_as_a_failure(server):
    server.user("dan")
    for _ in range(8):
        assert _login(server, "dan", RIGHT).status_code == 200


def test_an_address_that_keeps_failing_is_refused_whatever_the_name():
    throttle = Throttle("memory://")
    for i in range(LOGIN_FAILURES_PER_ADDRESS.amount):
        throttle.before_login("10.0.0.1", f"name{i}")
        throttle.failed_login("10.0.0.1", f"name{i}")
    with pytest.raises(TooManyRequests, match="from your address") as refused:
        throttle.before_login("10.0.0.1", "someone-new")
    assert refused.value.retry_after >= 1
    throttle.before_login("10.0.0.2", "someone-new")  # another address is not held up


def test_sign_ups_from_one_address_are_bounded():
    throttle = Throttle("memory://")
    for _ in range(SIGNUPS_PER_ADDRESS.amount):
        throttle.signup("10.0.0.1")
    with pytest.raises(TooManyRequests, match="sign-ups"):
        throttle.signup("10.0.0.1")
    throttle.signup("10.0.0.2")
