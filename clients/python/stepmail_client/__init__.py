"""A Python client for Stepmail's API, installable on its own (it needs only httpx).

    from stepmail_client import StepmailClient

    with StepmailClient("https://stepmail.internal", api_key, signup_secret=hook_secret) as sm:
        sm.signup("acct_42", "taro@example.co.jp", "Taro Yamada", locale="ja")
        sm.track("acct_42", "report_created", id="evt-9f2c", report_type="approvals")
        sm.update_customer("acct_42", annual_contract_value=3_600_000)

Calls that fail with 429, 5xx or no answer are tried again with backoff and jitter
(:class:`RetryPolicy`); every call is safe to repeat.
"""

from stepmail_client.client import StepmailClient, TaskStatus
from stepmail_client.errors import StepmailApiError, StepmailClientError, StepmailConnectionError
from stepmail_client.retry import RetryPolicy
from stepmail_client.signing import sign, signed_headers

__all__ = [
    "RetryPolicy",
    "StepmailApiError",
    "StepmailClient",
    "StepmailClientError",
    "StepmailConnectionError",
    "TaskStatus",
    "sign",
    "signed_headers",
]
