"""One exception family: callers catch what Stepmail raises, retries are decided by type, and
each class knows how it shows itself, so the API (one exception handler, ``api/errors.py``)
and the CLI (one handler, ``cli/app.py``) map every error the same way.

Each class declares its HTTP status and the exit code of ``stepmail`` (the table is in the
README, "Exit codes"). An error the API never shows keeps the base class's 500.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

FieldErrors = list[dict[str, Any]]  # FastAPI's shape: each with ``type``, ``loc`` and ``msg``


class StepmailError(Exception):
    """Base class of every error Stepmail raises on purpose."""

    http_status: int = 500
    exit_code: int = 1

    def http_detail(self) -> object:
        """The ``detail`` of the JSON error body."""
        return str(self)

    def http_headers(self) -> dict[str, str]:
        return {}

    def cli_lines(self) -> list[str]:
        """What ``stepmail`` prints, one ``error:`` line each."""
        return str(self).splitlines() or [type(self).__name__]


# C0 and C1 controls (ESC starts the sequences that recolour, retitle or rewrite a terminal;
# CR returns to the line's start), DEL, Unicode line breaks and the bidirectional overrides
# that make text read in another order than it is stored; lone surrogates (a byte of a file
# name or an argument that is not UTF-8) cannot be written to a UTF-8 terminal at all.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(value: object) -> str:
    """Stored text as a terminal may show it: each control character and lone surrogate as a
    visible escape (``\\x1b``, ``\\r``, ``\\t``, ``\\udcff``), so an address, a reason or a
    source that came from outside (the API, a provider's webhook, a CSV) cannot drive the
    operator's terminal, split a tab-separated line or stop the output with an encoding error."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))


# -- configuration ---------------------------------------------------------------------------


class ConfigurationError(StepmailError):
    """Raised when a setting is missing or invalid; the message names the variable."""

    http_status = 503
    exit_code = 78  # EX_CONFIG


class WebhookNotConfigured(ConfigurationError):
    """Raised when SendGrid posts events and no webhook public key is set."""


class NoHealthDefinition(ConfigurationError):
    """Raised when the health job is asked for and the journeys folder has no health file."""


class DatabaseNotMigrated(ConfigurationError):
    """Raised when the database has no (or an older) schema: ``stepmail db upgrade`` fixes it."""


class ServerUnavailable(StepmailError):
    """Raised when the database or Redis does not answer; the message names the setting."""

    http_status = 503
    exit_code = 69  # EX_UNAVAILABLE


# -- bad input -------------------------------------------------------------------------------


class InvalidInput(StepmailError):
    """Raised when a caller's value is refused; the message names the field, flag or line."""

    http_status = 422
    exit_code = 2  # a usage error, as click's own


class UnsafeWebhookUrl(InvalidInput):
    """Raised when a webhook URL is not https/http, or points at a loopback, private or
    link-local address that the settings do not allow."""


class InvalidRequest(InvalidInput):
    """Raised when a request body breaks the rules; ``errors`` name each place at fault."""

    def __init__(self, errors: FieldErrors, status: int = 422, message: str = "") -> None:
        self.errors = errors
        self.http_status = status
        super().__init__(message or "; ".join(f"{e['loc']}: {e['msg']}" for e in errors))

    def http_detail(self) -> object:
        return self.errors


class InvalidJson(InvalidRequest):
    """Raised when a body is not JSON we can store (``guards.strict_json``)."""


class InvalidEventBatch(InvalidRequest):
    """Raised when a webhook body is not a JSON array of event objects."""

    def __init__(self, errors: FieldErrors) -> None:
        super().__init__(errors, 400, "; ".join(str(error["msg"]) for error in errors))


class InvalidField(InvalidInput):
    """Raised when a value a console form or command gave is refused; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


# -- authentication --------------------------------------------------------------------------


class AuthenticationError(StepmailError):
    """Raised when a caller cannot prove who it is."""

    http_status = 401
    exit_code = 77  # EX_NOPERM


class InvalidSignature(AuthenticationError):
    """Raised when a hook's signature is missing, malformed, wrong or outside the tolerance."""


class ApiKeyRequired(AuthenticationError):
    """Raised for every ``/v1`` request while ``STEPMAIL_API_KEY`` is unset."""

    def __init__(self) -> None:
        super().__init__("STEPMAIL_API_KEY is not configured")


class WrongApiKey(AuthenticationError):
    """Raised when the bearer token is missing or does not match."""

    def __init__(self) -> None:
        super().__init__("missing or wrong bearer token")

    def http_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class LoginRefused(AuthenticationError):
    """Raised when an address and password sign nobody in (it never says which was wrong)."""


class LoginThrottled(StepmailError):
    """Raised when too many sign-ins failed lately for the account or the client address."""

    http_status = 429
    exit_code = 77


class PermissionDenied(StepmailError):
    """Raised when a signed-in console user's role does not allow the action."""

    http_status = 403
    exit_code = 77


class CsrfRejected(PermissionDenied):
    """Raised when a console form comes without its session's token, or from another site."""


class InvalidUnsubscribeToken(AuthenticationError):
    """Raised when an unsubscribe token was not signed by us (tampered or truncated)."""


class BadUnsubscribeLink(StepmailError):
    """Raised when an unsubscribe link was not signed by us (400) or names no customer any
    more (404); the API answers with a page in ``lang``, not JSON."""

    def __init__(self, status: int, lang: str = "en") -> None:
        self.http_status, self.lang = status, lang
        super().__init__(f"bad unsubscribe link ({status})")


class BadSurveyLink(BadUnsubscribeLink):
    """Raised when a survey link was not signed by us (400) or names no customer any more
    (404); answered with a page in ``lang``."""


class BadClickLink(StepmailError):
    """Raised when a click link was not signed by us (changed, cut short or made up): the API
    answers with a small page that links nowhere, never a redirect."""

    http_status = 400

    def __init__(self) -> None:
        super().__init__("this link is not one of ours")


# -- not found, conflicts --------------------------------------------------------------------


class NotFound(StepmailError):
    """Raised when what a caller names does not exist."""

    http_status = 404
    exit_code = 3


class CustomerNotFound(NotFound):
    """Raised when no customer has the given external id."""


class TaskNotFound(NotFound):
    """Raised when a task id does not exist."""


class SendNotFound(NotFound):
    """Raised when a scheduled send id does not exist."""


class EnrollmentNotFound(NotFound):
    """Raised when an enrollment id does not exist."""


class UserNotFound(NotFound):
    """Raised when no console user has the given address."""


class JourneyNotFound(NotFound):
    """Raised when a command names a journey the journeys folder does not have."""


class StepNotFound(NotFound):
    """Raised when a command names a step its journey does not have."""


class WebhookNotFound(NotFound):
    """Raised when a webhook endpoint or message id does not exist."""


class MessageNotArchived(NotFound):
    """Raised when a send has no archived message (not sent, older than the archive, pruned)."""


class NotSuppressed(NotFound):
    """Raised when lifting the suppression of an address that is not suppressed."""

    def __init__(self, email: str) -> None:
        self.email = email
        super().__init__(f"{email} is not suppressed")

    def cli_lines(self) -> list[str]:
        """One line whatever was typed: an address with a CR LF was two ``error:`` lines."""
        return [f"{printable(self.email)} is not suppressed"]

    def http_detail(self) -> object:
        return "address is not suppressed"


class UnknownCustomers(NotFound):
    """Raised when events name customers Stepmail does not know; carries (index, external_id).
    In a batch it is a 422 naming each event, like any other bad field."""

    def __init__(self, unknown: Sequence[tuple[int, str]], *, batched: bool = True) -> None:
        self.unknown, self.batched = list(unknown), batched
        if batched:
            self.http_status = 422
        super().__init__(
            "unknown customer(s): "
            + ", ".join(f"events[{index}].external_id {eid!r}" for index, eid in self.unknown)
        )

    def http_detail(self) -> object:
        if not self.batched:
            return str(self)
        return [
            {
                "type": "unknown_customer",
                "loc": ["body", "events", index, "external_id"],
                "msg": f"unknown customer {external_id!r}",
            }
            for index, external_id in self.unknown
        ]


class Conflict(StepmailError):
    """Raised when the state of a thing does not allow what was asked."""

    http_status = 409
    exit_code = 4


class SendNotUnknown(Conflict):
    """Raised when settling a send whose outcome is not unknown."""


class JobAlreadyRunning(Conflict):
    """Raised when another process holds the claim of a periodic job."""


class EnrollmentStateConflict(Conflict):
    """Raised when pausing, resuming or ending an enrollment its state does not allow."""


class SendNotFailed(Conflict):
    """Raised when re-sending a step whose send did not fail."""


class UserExists(Conflict):
    """Raised when adding a console user whose address is taken."""


# -- journeys, templates, conditions ---------------------------------------------------------


class JourneyError(StepmailError):
    """Raised when a journey file cannot be loaded; carries the file, line and field at fault."""

    exit_code = 65  # EX_DATAERR

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"{self.field}: " if self.field else ""
        return f"{where}: {what}{self.message}"


class TemplateError(StepmailError):
    """Raised when a mail template is missing, broken, or uses an undefined variable."""

    exit_code = 65

    def __init__(self, template: str, line: int | None, message: str) -> None:
        self.template, self.line, self.message = template, line, message
        super().__init__(str(self))

    def __str__(self) -> str:
        # No line (0 included: a stylesheet that cannot be read is no line of it)
        where = f"{self.template}:{self.line}" if self.line else self.template
        return f"{where}: {self.message}"


class StylesheetError(StepmailError):
    """Raised when the mail stylesheet has something that cannot be inlined; ``line`` is in
    the CSS file."""

    exit_code = 65

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(message)


class ConditionError(StepmailError):
    """Raised when a step condition cannot be compiled or evaluated."""

    exit_code = 65


# -- the command line ------------------------------------------------------------------------


class FileAccessError(StepmailError):
    """Raised when a file a command was given cannot be read or written."""

    exit_code = 74  # EX_IOERR


class SimulationDidNotSettle(StepmailError):
    """Raised when ``stepmail simulate`` finds a journey that keeps rescheduling itself."""

    exit_code = 70  # EX_SOFTWARE


# -- delivery --------------------------------------------------------------------------------


class DeliveryError(StepmailError):
    """Base class of transport failures; the subclass says whether a retry can help."""

    exit_code = 69  # EX_UNAVAILABLE

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
