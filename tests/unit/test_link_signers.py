"""The prepared signers sign byte for byte as before: links already in inboxes still verify."""

from __future__ import annotations

import hashlib
import hmac
import threading

import pytest
from itsdangerous import Signer

from orchestrator.errors import BadClickLink
from orchestrator.recipients.signers import prepared_signer
from orchestrator.recipients.survey_links import (
    make_program_token,
    make_survey_token,
    read_program_token,
    read_survey_token,
)
from orchestrator.recipients.unsubscribe_links import (
    make_unsubscribe_token,
    read_unsubscribe_token,
)
from orchestrator.tracking.links import ClickLink, click_key, read_click, sign_click

SECRET = "s3cret-signing-key"
# Made by the code before the signers were prepared (a plain itsdangerous Signer per token,
# a new HMAC per click link): what mails already sent carry.
UNSUBSCRIBE = "cus_7f3a.QbtqI32Ulk3oy2j7h6KEkLzxgsFhpG2DmM0zAOy9Pgg"
SURVEY = "cus_7f3a:nps.SvZhMz0TVVCgiu7gCj1w-U_sDNZkIt-9uue8MwMrnkA"
PROGRAM = "cus_7f3a:webinar-1.BaR2JBJLij5iNCOtT5jIzsi09TXfQVKPjVui9p_MK_4"
CLICK_URL = "https://example.com/docs?a=1&b=ü"
CLICK = "AAAAKmh0dHBzOi8vZXhhbXBsZS5jb20vZG9jcz9hPTEmYj3DvA.WHwDfpIYUovzoBlIDwkF0w"


def test_tokens_are_the_ones_signed_before() -> None:
    assert make_unsubscribe_token(SECRET, "cus_7f3a") == UNSUBSCRIBE
    assert make_survey_token(SECRET, "cus_7f3a", "nps") == SURVEY
    assert make_program_token(SECRET, "cus_7f3a", "webinar-1") == PROGRAM
    assert sign_click(click_key(SECRET), 42, CLICK_URL) == CLICK


def test_tokens_signed_before_still_verify() -> None:
    assert read_unsubscribe_token(SECRET, UNSUBSCRIBE) == "cus_7f3a"
    assert read_survey_token(SECRET, SURVEY) == ("cus_7f3a", "nps")
    assert read_program_token(SECRET, PROGRAM) == ("cus_7f3a", "webinar-1")
    assert read_click(click_key(SECRET), CLICK) == ClickLink(42, CLICK_URL)


@pytest.mark.parametrize("salt", ["stepmail.unsubscribe.v1", "another.salt"])
@pytest.mark.parametrize("value", ["", "cus_1", "山田:nps", "x" * 5000])
def test_a_prepared_signer_signs_as_a_plain_one(salt: str, value: str) -> None:
    plain = Signer(SECRET, salt=salt, digest_method=hashlib.sha256)
    prepared = prepared_signer(SECRET, salt)
    assert prepared.sign(value) == plain.sign(value)
    assert prepared.sign(value) == prepared.sign(value)  # the prepared HMAC is never fed
    assert plain.unsign(prepared.sign(value)) == value.encode()


def test_each_secret_and_salt_has_its_own_key() -> None:
    token = prepared_signer(SECRET, "a").sign("v")
    assert prepared_signer(SECRET, "b").sign("v") != token
    assert prepared_signer(SECRET + "x", "a").sign("v") != token


def test_a_click_tag_is_the_hmac_of_its_payload() -> None:
    key = click_key(SECRET)
    assert key == hmac.new(SECRET.encode(), b"stepmail.click.v1", hashlib.sha256).digest()
    for send_id, url in [(1, "https://a.example/"), (2**32 - 1, CLICK_URL)]:
        token = sign_click(key, send_id, url)
        assert read_click(key, token) == ClickLink(send_id, url)
    with pytest.raises(BadClickLink):
        read_click(click_key(SECRET + "x"), CLICK)


def test_threads_sharing_the_prepared_signers_get_the_same_tokens() -> None:
    expected = {
        n: Signer(SECRET, salt="t", digest_method=hashlib.sha256).sign(f"c{n}") for n in range(200)
    }
    failures: list[int] = []

    def sign_all() -> None:
        signer = prepared_signer(SECRET, "t")
        failures.extend(n for n in range(200) if signer.sign(f"c{n}") != expected[n])

    threads = [threading.Thread(target=sign_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
