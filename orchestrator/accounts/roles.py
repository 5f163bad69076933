"""Roles and what each may do. Pure: a table, no I/O.

Each role includes the one below it: a viewer reads; a CSM also works tasks and customers
(assign, note, close; re-send a failed step); an editor also holds and ends enrollments, sends
test mails and reads the audit log; an admin also manages users, suppressions and sends whose
outcome is unknown.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    CSM = "csm"
    EDITOR = "editor"
    ADMIN = "admin"


class Permission(StrEnum):
    READ = "read"
    WORK_TASKS = "work_tasks"  # assign, add a note, close
    WORK_CUSTOMERS = "work_customers"  # re-send a failed step
    CONTROL_ENROLLMENTS = "control_enrollments"  # pause, resume, end
    SEND_TESTS = "send_tests"
    READ_AUDIT = "read_audit"
    MANAGE_SUPPRESSIONS = "manage_suppressions"
    SETTLE_SENDS = "settle_sends"  # unknown outcomes
    MANAGE_USERS = "manage_users"


_OWN: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.CSM: frozenset({Permission.WORK_TASKS, Permission.WORK_CUSTOMERS}),
    Role.EDITOR: frozenset(
        {Permission.CONTROL_ENROLLMENTS, Permission.SEND_TESTS, Permission.READ_AUDIT}
    ),
    Role.ADMIN: frozenset(
        {Permission.MANAGE_SUPPRESSIONS, Permission.SETTLE_SENDS, Permission.MANAGE_USERS}
    ),
}
_ORDER = (Role.VIEWER, Role.CSM, Role.EDITOR, Role.ADMIN)


def permissions(role: Role) -> frozenset[Permission]:
    """Everything ``role`` may do: its own grants and those of every role below it."""
    granted: set[Permission] = set()
    for each in _ORDER[: _ORDER.index(role) + 1]:
        granted |= _OWN[each]
    return frozenset(granted)


def can(role: Role, permission: Permission) -> bool:
    return permission in permissions(role)
