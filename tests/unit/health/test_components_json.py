"""The moved scores' components go to the history as one JSON array, each element's text
made once for the scores with the same components (health/rescore.py): the array must say
exactly what encoding every result's own components says, whatever was made before, for
another definition too. (Before, one element orjson refused sent the whole array through
``json.dumps``; now only that element is, which also keeps a NaN elsewhere in the batch a
``null`` that PostgreSQL accepts.)"""

from __future__ import annotations

import json

from orchestrator.db.json_text import json_text
from orchestrator.health.rescore import _components_json
from orchestrator.health.score import score
from tests.unit.health.test_score import DEFINITION, HOSTILE_NPS, KEY_FEATURES


def test_the_array_is_every_results_own_components() -> None:
    heavier = DEFINITION.model_copy(
        update={
            "components": tuple(
                c.model_copy(update={"weight": c.weight * 2}) for c in DEFINITION.components
            )
        }
    )
    raws = [
        {
            "logins": n % 4,
            "adoption": set(KEY_FEATURES[: n % 3]),
            "nps": HOSTILE_NPS[n % len(HOSTILE_NPS)],
        }
        for n in range(60)
    ]
    for _ in range(2):  # the second time from what the first made
        for definition in (DEFINITION, heavier, DEFINITION):
            results = {n: score(definition, raw) for n, raw in enumerate(raws)}
            moved = list(results)[::-1]
            made = _components_json(results, moved)
            # each element as its own encoding says (a number JSON has no text for, NaN or an
            # int past 64 bits, is written as json_text writes it alone)
            afresh = ",".join(json_text(results[n].components) for n in moved)
            assert made == f"[{afresh}]"
            assert json.loads(made)[0]["logins"]["weight"] == definition.components[0].weight
