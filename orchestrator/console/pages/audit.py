"""The audit log: every operator action, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.responses import Response

from orchestrator.accounts.roles import Permission
from orchestrator.console.deps import Page, needs
from orchestrator.console.pages.ids import optional_id
from orchestrator.services.audit import audit_page

router = APIRouter()


@router.get("/audit")
def audit(page: Annotated[Page, needs(Permission.READ_AUDIT)], before: str = "") -> Response:
    rows, next_before = audit_page(page.runtime.engine, before_id=optional_id(before))
    return page.render("audit.html", rows=rows, next_before=next_before)
