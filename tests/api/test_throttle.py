"""Guessing passwords is throttled: a name that keeps failing is locked for a while, an
address that keeps failing is refused, and both answers say when to come back."""

import pytest

from sfumato.errors import TooManyRequests
from sfumato.throttle import ACTIONS, LOGIN_FAILURES_PER_ADDRESS, SIGNUPS_PER_ADDRESS, Throttle
from tests.api.conftest import png
from tests.api.test_keys import browser

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


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_what_a_user_repeats_is_bounded_per_user_and_per_address(action):
    throttle, limits = Throttle("memory://"), ACTIONS[action]
    for _ in range(limits.per_user.amount):
        throttle.action(action, 1, "10.0.0.1")
    with pytest.raises(TooManyRequests, match=f"Too many {limits.what}") as refused:
        throttle.action(action, 1, "10.0.0.2")  # another address does not dodge the user's
    assert refused.value.retry_after >= 1
    throttle.action(action, 2, "10.0.0.1")  # another user from the same address goes on
    users = iter(range(3, 10_000))
    for _ in range(limits.per_address.amount):
        throttle.action(action, next(users), "10.0.0.3")
    with pytest.raises(TooManyRequests, match="from your address"):
        throttle.action(action, next(users), "10.0.0.3")  # many accounts, one address


def test_key_creation_past_its_limit_is_429_with_retry_after(server):
    erin, csrf = browser(server, "erin")  # keys are made from a login session
    limit = ACTIONS["key"].per_user.amount
    for i in range(limit):
        assert erin.post("/v1/keys", json={"name": f"bot {i}"}, headers=csrf).status_code == 201
    refused = erin.post("/v1/keys", json={"name": "one more"}, headers=csrf)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    assert len(erin.get("/v1/keys").json()["keys"]) == limit  # none more was made


def test_reading_pictures_past_its_limit_is_429(server):
    fay, picture = server.user("fay"), png()
    for _ in range(ACTIONS["image_info"].per_user.amount):
        answer = server.post("/v1/image-info", fay, files={"file": ("a.png", picture)})
        assert answer.json()["error"]["code"] == "no_generation_data"  # read, and answered
    refused = server.post("/v1/image-info", fay, files={"file": ("a.png", picture)})
    assert refused.status_code == 429
    assert "Too many pictures read" in refused.json()["error"]["message"]
