"""One-click unsubscribe (RFC 8058): ``POST /unsubscribe/{token}`` suppresses at once, with no
cookie or login; ``GET`` shows a confirmation page in the customer's language."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.api.deps import RuntimeDep
from orchestrator.db.models import Customer
from orchestrator.db.tables import customers, suppressions
from orchestrator.runtime import Runtime
from orchestrator.suppression import suppress
from orchestrator.unsubscribe import InvalidUnsubscribeToken, read_unsubscribe_token

router = APIRouter()
_PAGES = Environment(
    loader=FileSystemLoader(str(Path(__file__).parent / "pages")),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_page(token: str, runtime: RuntimeDep) -> HTMLResponse:
    customer, suppressed = await run_in_threadpool(_lookup, runtime, token)
    return _page(customer, token, done=suppressed)


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
async def unsubscribe_now(token: str, runtime: RuntimeDep) -> HTMLResponse:
    """Works for the mailbox provider's one-click POST and for the page's button alike."""
    customer = await run_in_threadpool(_unsubscribe, runtime, token)
    return _page(customer, token, done=True)


def _customer_for(session: Session, runtime: Runtime, token: str) -> Customer:
    try:
        public_id = read_unsubscribe_token(runtime.settings.signing_secret(), token)
    except InvalidUnsubscribeToken:
        raise HTTPException(status_code=400, detail="invalid unsubscribe link") from None
    customer = session.execute(
        select(Customer).where(customers.c.public_id == public_id)
    ).scalar_one_or_none()
    if customer is None:
        raise HTTPException(status_code=404, detail="unknown recipient")
    return customer


def _lookup(runtime: Runtime, token: str) -> tuple[Customer, bool]:
    with Session(runtime.engine, expire_on_commit=False) as session, session.begin():
        customer = _customer_for(session, runtime, token)
        suppressed = session.execute(
            select(suppressions.c.id).where(suppressions.c.email == customer.email.lower())
        ).first()
        return customer, suppressed is not None


def _unsubscribe(runtime: Runtime, token: str) -> Customer:
    with Session(runtime.engine, expire_on_commit=False) as session, session.begin():
        customer = _customer_for(session, runtime, token)
        suppress(session, customer.email, "unsubscribe", "one-click", runtime.clock.now())
        return customer


def _page(customer: Customer, token: str, *, done: bool) -> HTMLResponse:
    language = "ja" if customer.locale.startswith("ja") else "en"
    html = _PAGES.get_template("unsubscribe.html").render(
        lang=language, email=customer.email, token=token, done=done
    )
    return HTMLResponse(html)
