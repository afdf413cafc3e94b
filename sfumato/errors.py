"""Errors meant for the person at the keyboard: each carries a sentence that says what to do.

Each kind has a code (what the API's JSON says, what a failed job keeps) and the HTTP status
that says whose fault it is; ``STATUS`` maps every code to its status, for the API's answers
and for a stored job's error, in this one place.
"""

STATUS: dict[str, int] = {"internal_error": 500}  # a bug: logged, never a user's sentence


class SfumatoError(Exception):
    """A problem the user can fix. The CLI prints the message; the API turns it into a 4xx."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str] | None:
        """HTTP headers the API's answer carries beside the error body."""
        return None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # the first class of a code sets its status (a subclass may share its parent's code)
        STATUS.setdefault(cls.code, cls.status)


STATUS[SfumatoError.code] = SfumatoError.status


class InvalidRequest(SfumatoError):
    code = "invalid_request"


class JobFailed(SfumatoError):
    """A job that failed, for the doors that wait for it (A1111's, Dezgo's): the job's own
    code and sentence, with the status its code has."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.status = code, STATUS.get(code, 500)


class ModelNotFound(SfumatoError):
    code = "model_not_found"
    status = 404


class UnsupportedModel(SfumatoError):
    code = "unsupported_model"


class OutOfMemory(SfumatoError):
    code = "out_of_memory"
    status = 507


class NoMemoryToQuantize(OutOfMemory):
    """``--dtype int8``'s quantization would not fit in the free memory (a server runs such a
    model without int8)."""


class OutputExists(SfumatoError):
    code = "output_exists"
    status = 409


class NotFound(SfumatoError):
    code = "not_found"
    status = 404


class NotAuthenticated(SfumatoError):
    code = "not_authenticated"
    status = 401


class Forbidden(SfumatoError):
    code = "forbidden"
    status = 403


class Conflict(SfumatoError):
    code = "conflict"
    status = 409


class QueueFull(SfumatoError):
    code = "queue_full"
    status = 429


class QuotaExceeded(SfumatoError):
    """Over the allowance the server's admin set (sfumato.quotas): not "slow down", which
    waiting would cure, but "this account may not", which needs a deletion or the admin."""

    code = "quota_exceeded"
    status = 403


class TimeLimitExceeded(QuotaExceeded):
    """A job that ran past the server's seconds per job (the worker fails it with this; a
    route that waits for the job, as Dezgo's do, answers with its status)."""

    code = "time_limit"


class TooLarge(SfumatoError):
    code = "too_large"
    status = 413


class NoGenerationData(SfumatoError):
    """A picture that says nothing of how it was made."""

    code = "no_generation_data"
    status = 422


class ServerStopping(SfumatoError):
    code = "server_stopping"
    status = 503


class Cancelled(SfumatoError):
    code = "cancelled"
    status = 409


class TooManyRequests(SfumatoError):
    """Throttled: the answer carries ``Retry-After``."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}  # when to come back
