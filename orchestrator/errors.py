"""One exception family: callers catch what Stepmail raises, and retries are decided by type."""

from __future__ import annotations


class StepmailError(Exception):
    """Base class of every error Stepmail raises on purpose."""


class ConfigurationError(StepmailError):
    """Raised when a setting is missing or invalid; the message names the variable."""


class JourneyError(StepmailError):
    """Raised when a journey file cannot be loaded; carries the file, line and field at fault."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {what}{self.message}"


class TemplateError(StepmailError):
    """Raised when a mail template is missing, broken, or uses an undefined variable."""

    def __init__(self, template: str, line: int | None, message: str) -> None:
        self.template, self.line, self.message = template, line, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.template if self.line is None else f"{self.template}:{self.line}"
        return f"{where}: {self.message}"


class ConditionError(StepmailError):
    """Raised when a step condition cannot be compiled or evaluated."""


class DeliveryError(StepmailError):
    """Base class of transport failures; the subclass says whether a retry can help."""

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        self.status, self.body = status, body
        super().__init__(message)

    def __str__(self) -> str:
        text = super().__str__()
        if self.status is not None:
            text = f"{text} (HTTP {self.status})"
        return f"{text}: {self.body}" if self.body else text


class TransientDeliveryError(DeliveryError):
    """Raised when the provider did not take the mail but may later: retry with backoff."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Raised when the provider refused the mail for good (bad request, auth): never retried."""


class UnsafeMailError(PermanentDeliveryError):
    """Raised when a mail cannot be written safely (an address that is not a plain
    ``local@domain``, a header of our own that is not one line of ASCII): never sent."""


class UnknownDeliveryOutcome(DeliveryError):
    """Raised when the request may have reached the provider but no answer came back.

    Resending blindly could mail the customer twice, so the send is held as ``unknown``.
    """


# -- the operator console (issue 10) ---------------------------------------------------------
# Each class says its HTTP status (the console shows it as a page) and its ``stepmail`` exit
# code. The three bases mirror the error family of the architecture issue.


class InvalidField(StepmailError):
    """Raised when a value a caller gave is refused; ``field`` names it."""

    http_status = 422
    exit_code = 2

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFound(StepmailError):
    """Raised when what a caller names does not exist."""

    http_status = 404
    exit_code = 3


class Conflict(StepmailError):
    """Raised when the state of a thing does not allow what was asked."""

    http_status = 409
    exit_code = 4


class UserNotFound(NotFound):
    """Raised when no console user has the given address."""


class UserExists(Conflict):
    """Raised when adding a console user whose address is taken."""


class EnrollmentNotFound(NotFound):
    """Raised when an enrollment id does not exist."""


class EnrollmentStateConflict(Conflict):
    """Raised when pausing, resuming or ending an enrollment its state does not allow."""


class SendNotFailed(Conflict):
    """Raised when re-sending a step whose send did not fail."""


class ConsoleSendNotFound(NotFound):
    """Raised when a scheduled send id does not exist."""


class PermissionDenied(StepmailError):
    """Raised when a signed-in user's role does not allow the action."""

    http_status = 403
    exit_code = 77


class CsrfRejected(PermissionDenied):
    """Raised when a console form comes without its session's token, or from another site."""


class LoginRefused(StepmailError):
    """Raised when an address and password do not sign anyone in (never says which was wrong)."""

    http_status = 401
    exit_code = 77


class LoginThrottled(StepmailError):
    """Raised when too many sign-ins failed lately for the account or the client address."""

    http_status = 429
    exit_code = 77


class CustomerNotFoundInConsole(NotFound):
    """Raised when the console is asked for a customer no external id names."""
