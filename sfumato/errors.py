"""Errors meant for the person at the keyboard: each carries a sentence that says what to do."""


class SfumatoError(Exception):
    """A problem the user can fix. The CLI prints the message; the API turns it into a 4xx."""

    code = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidRequest(SfumatoError):
    code = "invalid_request"


class ModelNotFound(SfumatoError):
    code = "model_not_found"


class UnsupportedModel(SfumatoError):
    code = "unsupported_model"


class OutOfMemory(SfumatoError):
    code = "out_of_memory"


class NoMemoryToQuantize(OutOfMemory):
    """``--dtype int8``'s quantization would not fit in the free memory (a server runs such a
    model without int8)."""


class OutputExists(SfumatoError):
    code = "output_exists"


class NotFound(SfumatoError):
    code = "not_found"


class NotAuthenticated(SfumatoError):
    code = "not_authenticated"


class Forbidden(SfumatoError):
    code = "forbidden"


class Conflict(SfumatoError):
    code = "conflict"


class QueueFull(SfumatoError):
    code = "queue_full"


class TooLarge(SfumatoError):
    code = "too_large"
