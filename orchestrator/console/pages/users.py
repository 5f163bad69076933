"""Console users, for admins: who may sign in, with which role; disable one (their sessions
end at once). Accounts are added with ``stepmail users add``: a password is never typed into
a page for someone else."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from starlette.responses import Response

from orchestrator.accounts.roles import Permission
from orchestrator.console.deps import Page, Posted, back, needs
from orchestrator.errors import InvalidField
from orchestrator.services import accounts

router = APIRouter()


@router.get("/users")
def users(page: Annotated[Page, needs(Permission.MANAGE_USERS)]) -> Response:
    return page.render("users.html", users=accounts.list_users(page.runtime.engine))


@router.post("/users/disable")
def disable(page: Annotated[Page, needs(Permission.MANAGE_USERS)], form: Posted) -> Response:
    page.check_form(form)
    assert page.session is not None
    email = form.required("email")
    if email.lower() == page.session.email:
        raise InvalidField("email", "you cannot disable your own account here")
    accounts.disable_user(page.runtime.engine, email, clock=page.runtime.clock, actor=page.actor)
    return back(form.get("back", max_length=2000), "user_disabled")
