"""Domain errors. Transports map them: HTTP to problem+json, the gateway to call errors."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, *, errors: dict[str, Any] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(AppError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class EmailNotVerified(Forbidden):
    """A correct password for an account whose email was never verified."""

    code = "email_not_verified"
    title = "Email not verified"


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class Gone(AppError):
    status = 410
    code = "gone"
    title = "Gone"


class UnsupportedMediaType(AppError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class ValidationFailed(AppError):
    status = 422
    code = "validation_failed"
    title = "Validation failed"

    @classmethod
    def field(cls, name: str, message: str) -> ValidationFailed:
        return cls(f"{name}: {message}", errors={name: [message]})


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1):
        super().__init__(detail)
        self.retry_after = max(1, int(retry_after))


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
