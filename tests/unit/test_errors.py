"""The error family: every class says how it shows itself over HTTP and which exit code the
command line ends with (the README's "Exit codes" table)."""

from __future__ import annotations

import inspect

import pytest

from orchestrator import errors
from orchestrator.errors import StepmailError

# class -> (HTTP status, exit code): the README table, class by class.
EXPECTED = {
    "StepmailError": (500, 1),
    "ConfigurationError": (503, 78),
    "WebhookNotConfigured": (503, 78),
    "NoHealthDefinition": (503, 78),
    "DatabaseNotMigrated": (503, 78),
    "ServerUnavailable": (503, 69),
    "InvalidInput": (422, 2),
    "InvalidRequest": (422, 2),
    "InvalidJson": (422, 2),
    "UnsafeWebhookUrl": (422, 2),
    "InvalidEventBatch": (400, 2),
    "InvalidField": (422, 2),
    "AuthenticationError": (401, 77),
    "InvalidSignature": (401, 77),
    "ApiKeyRequired": (401, 77),
    "WrongApiKey": (401, 77),
    "InvalidUnsubscribeToken": (401, 77),
    "LoginRefused": (401, 77),
    "LoginThrottled": (429, 77),
    "PermissionDenied": (403, 77),
    "CsrfRejected": (403, 77),
    "BadUnsubscribeLink": (400, 1),
    "BadSurveyLink": (400, 1),
    "BadClickLink": (400, 1),
    "NotFound": (404, 3),
    "CustomerNotFound": (404, 3),
    "TaskNotFound": (404, 3),
    "SendNotFound": (404, 3),
    "JourneyNotFound": (404, 3),
    "StepNotFound": (404, 3),
    "NotSuppressed": (404, 3),
    "WebhookNotFound": (404, 3),
    "MessageNotArchived": (404, 3),
    "EnrollmentNotFound": (404, 3),
    "UserNotFound": (404, 3),
    "UnknownCustomers": (422, 3),
    "Conflict": (409, 4),
    "SendNotUnknown": (409, 4),
    "JobAlreadyRunning": (409, 4),
    "EnrollmentStateConflict": (409, 4),
    "SendNotFailed": (409, 4),
    "UserExists": (409, 4),
    "JourneyError": (500, 65),
    "TemplateError": (500, 65),
    "StylesheetError": (500, 65),
    "ConditionError": (500, 65),
    "FileAccessError": (500, 74),
    "SimulationDidNotSettle": (500, 70),
    "DeliveryError": (500, 69),
    "TransientDeliveryError": (500, 69),
    "PermanentDeliveryError": (500, 69),
    "UnsafeMailError": (500, 69),
    "UnknownDeliveryOutcome": (500, 69),
}
SAMPLE_ARGUMENTS: dict[str, tuple[object, ...]] = {
    "InvalidRequest": ([{"type": "t", "loc": ["body", "x"], "msg": "m"}],),
    "InvalidJson": ([{"type": "t", "loc": ["body"], "msg": "m"}],),
    "InvalidEventBatch": ([{"type": "t", "loc": ["body"], "msg": "m"}],),
    "ApiKeyRequired": (),
    "WrongApiKey": (),
    "BadUnsubscribeLink": (400,),
    "BadSurveyLink": (400,),
    "BadClickLink": (),
    "NotSuppressed": ("a@example.com",),
    "InvalidField": ("email", "not a valid address"),
    "UnknownCustomers": ([(0, "c1")],),
    "JourneyError": ("j.yaml", 3, "steps", "m"),
    "TemplateError": ("t.html", 2, "m"),
    "StylesheetError": (4, "m"),
}


def family() -> list[type[StepmailError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, StepmailError)
    ]


def test_every_class_of_the_family_is_in_the_table() -> None:
    assert sorted(cls.__name__ for cls in family()) == sorted(EXPECTED)


@pytest.mark.parametrize("cls", family(), ids=lambda cls: cls.__name__)
def test_each_class_has_its_status_and_exit_code(cls: type[StepmailError]) -> None:
    error = cls(*SAMPLE_ARGUMENTS.get(cls.__name__, ("message",)))
    assert (error.http_status, error.exit_code) == EXPECTED[cls.__name__]
    assert error.cli_lines() and all(error.cli_lines())


def test_a_single_unknown_customer_is_a_404_with_a_sentence() -> None:
    error = errors.UnknownCustomers([(0, "c1")], batched=False)
    assert error.http_status == 404
    assert error.http_detail() == "unknown customer(s): events[0].external_id 'c1'"


def test_a_batch_names_each_unknown_customer_as_a_field() -> None:
    error = errors.UnknownCustomers([(2, "c9")])
    assert error.http_detail() == [
        {
            "type": "unknown_customer",
            "loc": ["body", "events", 2, "external_id"],
            "msg": "unknown customer 'c9'",
        }
    ]


def test_not_suppressed_says_the_address_on_the_command_line_only() -> None:
    error = errors.NotSuppressed("a@example.com")
    assert error.cli_lines() == ["a@example.com is not suppressed"]
    assert error.http_detail() == "address is not suppressed"
    assert errors.NotSuppressed("a\r\nb").cli_lines() == ["a\\r\\nb is not suppressed"]


def test_a_multi_line_error_is_one_cli_line_each() -> None:
    assert errors.ConfigurationError("one\ntwo").cli_lines() == ["one", "two"]
