"""``PATCH /v1/customers/{external_id}``: what the product knows changed about a customer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from orchestrator.api.deps import ApiKeyAuth, RuntimeDep
from orchestrator.api.openapi import answers
from orchestrator.api.routing import StrictRoute
from orchestrator.runtime import Runtime
from orchestrator.usage.customers import (
    CustomerPatch,
    CustomerUpdate,
    CustomerView,
    update_customer,
)
from orchestrator.usage.events import usage_rules

router = APIRouter(route_class=StrictRoute, dependencies=[ApiKeyAuth], responses=answers(401))


@router.patch(
    "/v1/customers/{external_id}",
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
    result = await run_in_threadpool(_update, runtime, external_id, patch)
    if result.task_ids:
        background.add_task(runtime.notify_now, result.task_ids)
    return result.customer


def _update(runtime: Runtime, external_id: str, patch: CustomerPatch) -> CustomerUpdate:
    with Session(runtime.engine) as session, session.begin():
        result = update_customer(
            session, external_id, patch, usage_rules(runtime), runtime.clock.now()
        )
        # Serialised before the commit: a customer that cannot be answered is not stored.
        result.customer.model_dump_json()
        return result
