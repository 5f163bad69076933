"""Transports behind one protocol, chosen by ``STEPMAIL_MAIL_TRANSPORT``.

Adding a transport is one module plus one line in ``FACTORIES``. Each factory imports its
module lazily, so the embedded default never loads the SendGrid or SMTP code it does not use.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.errors import ConfigurationError
from orchestrator.settings import Settings
from orchestrator.transports.base import SendResult, Transport

__all__ = ["FACTORIES", "SendResult", "Transport", "make_transport"]


def _outbox(settings: Settings) -> Transport:
    from orchestrator.transports.outbox import OutboxTransport

    return OutboxTransport(settings.outbox_dir)


def _smtp(settings: Settings) -> Transport:
    from orchestrator.transports.smtp import SmtpTransport

    password = settings.smtp_password
    return SmtpTransport(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=password.get_secret_value() if password is not None else None,
        starttls=settings.smtp_starttls,
        ssl=settings.smtp_ssl,
        timeout=settings.smtp_timeout,
    )


def _sendgrid(settings: Settings) -> Transport:
    from orchestrator.transports.sendgrid import SendGridTransport

    key = settings.sendgrid_api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigurationError(
            "STEPMAIL_SENDGRID_API_KEY must be set when STEPMAIL_MAIL_TRANSPORT=sendgrid"
        )
    return SendGridTransport(
        api_key=key.get_secret_value(),
        api_host=settings.sendgrid_api_host,
        timeout=settings.sendgrid_timeout,
        sandbox_mode=settings.sendgrid_sandbox,
        in_flight=settings.sendgrid_in_flight,
    )


FACTORIES: dict[str, Callable[[Settings], Transport]] = {
    "outbox": _outbox,
    "smtp": _smtp,
    "sendgrid": _sendgrid,
}


def make_transport(settings: Settings) -> Transport:
    """The transport the settings name; an unknown name is a configuration error."""
    factory = FACTORIES.get(settings.mail_transport)
    if factory is None:
        choices = ", ".join(sorted(FACTORIES))
        raise ConfigurationError(f"STEPMAIL_MAIL_TRANSPORT must be one of: {choices}")
    return factory(settings)
