"""``PATCH /v1/customers/{external_id}``: what the product knows changed about a customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path
from fastapi.concurrency import run_in_threadpool

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.routing import StrictRoute
from orchestrator.customers.changes import CustomerPatch, CustomerView
from orchestrator.services.customers import update_customer

router = APIRouter(route_class=StrictRoute, dependencies=[ApiKeyAuth], responses=answers(401))


@router.patch(
    # ``:path``: an id may hold ``/`` (``acct/42``), and the server decodes ``%2F`` before
    # routing, so a one-segment route could never reach that customer (probe L8).
    "/v1/customers/{external_id:path}",
    response_model=CustomerView,
    summary="Update a customer (attributes merge; the tier follows the contract value)",
    responses=answers(404, 413, 422, s404="Unknown customer"),
)
async def patch_customer(
    external_id: Annotated[str, Path(min_length=1, max_length=255)],
    patch: CustomerPatch,
    runtime: RuntimeDep,
    background: BackgroundTasks,
) -> CustomerView:
    return await run_in_threadpool(
        update_customer,
        runtime.engine,
        external_id,
        patch,
        rules=runtime.usage_rules(),
        clock=runtime.clock,
        notify=lambda task_ids: background.add_task(runtime.notify_now, task_ids),
    )
