"""Throttling, counted by the ``limits`` library in moving windows: what a stranger can
hammer (failed logins and sign-ups, per address and per account name), and what a signed-in
user repeats at a cost to the server (key creation, uploads, reading a picture's settings,
queueing generations; per user and per address, so many accounts behind one address do not
multiply the allowance).

A login past its limit is refused with 429 and ``Retry-After`` before any password is hashed
(each hash is deliberately slow, so unthrottled logins were also a cheap way to load the
server), and a name that keeps failing is locked for the window, whoever tries it: the
sentence says so and says when to try again.

The counts live in the server's memory by default; ``SFUMATO_RATE_LIMIT_STORAGE`` names a
shared store (``redis://127.0.0.1:6379``) for several API processes. The address is the
connection's: behind a reverse proxy, every client is the proxy (X-Forwarded-For is not
trusted, since anyone can send it).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from sfumato.errors import TooManyRequests

ENV_STORAGE = "SFUMATO_RATE_LIMIT_STORAGE"

# a person mistypes a password a few times; a guesser tries thousands
LOGIN_FAILURES_PER_NAME = parse("5/minute")
LOGIN_FAILURES_PER_ADDRESS = parse("30/minute")
# a family or a classroom behind one address still gets its accounts
SIGNUPS_PER_ADDRESS = parse("30/hour")


@dataclass(frozen=True)
class Action:
    what: str  # as the refusal names it: "Too many {what}."
    per_user: RateLimitItem
    per_address: RateLimitItem


# each far above what a person at the page or a well-behaved script does (a submit takes a
# second or more to run even on a GPU, and the queue limit holds a user's backlog anyway)
ACTIONS = {
    "key": Action("API keys made", parse("20/hour"), parse("60/hour")),
    "upload": Action("uploads", parse("60/minute"), parse("120/minute")),
    "image_info": Action("pictures read", parse("60/minute"), parse("120/minute")),
    "submit": Action("generations queued", parse("60/minute"), parse("120/minute")),
}


class Throttle:
    def __init__(self, storage: str | None = None):
        uri = storage or os.environ.get(ENV_STORAGE) or "memory://"
        self._limiter = MovingWindowRateLimiter(storage_from_string(uri))

    def check(self, limit: RateLimitItem, key: str, refusal: str) -> None:
        """Refuse (429) when ``key`` has used up ``limit``; the refusal says when to retry."""
        if self._limiter.test(limit, key):
            return
        stats = self._limiter.get_window_stats(limit, key)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(f"{refusal} Try again in {wait} s.", retry_after=wait)

    def count(self, limit: RateLimitItem, key: str) -> None:
        self._limiter.hit(limit, key)

    def before_login(self, address: str, name: str) -> None:
        self.check(
            LOGIN_FAILURES_PER_NAME,
            f"login-name:{name.lower()}",
            f"Too many failed logins for {name!r}: it is locked for a while.",
        )
        self.check(
            LOGIN_FAILURES_PER_ADDRESS,
            f"login-address:{address}",
            "Too many failed logins from your address.",
        )

    def failed_login(self, address: str, name: str) -> None:
        self.count(LOGIN_FAILURES_PER_NAME, f"login-name:{name.lower()}")
        self.count(LOGIN_FAILURES_PER_ADDRESS, f"login-address:{address}")

    def action(self, name: str, user_id: int, address: str) -> None:
        """Counts one ``ACTIONS[name]`` by this user from this address, or refuses it (429)
        when either has done too many; a refused attempt is not counted."""
        action = ACTIONS[name]
        user_key, address_key = f"{name}-user:{user_id}", f"{name}-address:{address}"
        self.check(action.per_user, user_key, f"Too many {action.what}.")
        self.check(action.per_address, address_key, f"Too many {action.what} from your address.")
        self.count(action.per_user, user_key)
        self.count(action.per_address, address_key)

    def signup(self, address: str) -> None:
        """Counts this sign-up attempt, or refuses it when the address has made too many."""
        key = f"signup-address:{address}"
        self.check(SIGNUPS_PER_ADDRESS, key, "Too many sign-ups from your address.")
        self.count(SIGNUPS_PER_ADDRESS, key)
