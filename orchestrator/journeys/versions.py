"""What a journey version is: one distinct content of a journey file and of the templates it
uses, named by a hash of both. Pure: reading the files is the caller's job
(:mod:`orchestrator.rendering.snapshot`), storing them the store's (:mod:`orchestrator.versions`).

The hash covers the YAML text as written (a comment is a change: that is how an author makes
an earlier content current again) and each template's text, so a changed template is a new
version of every journey that uses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class JourneyContent:
    """A journey as files hold it: the YAML text and every template file it may render
    (name under the templates folder → text)."""

    journey_id: str
    yaml_text: str
    templates: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def template_hashes(self) -> dict[str, str]:
        return {name: text_hash(text) for name, text in sorted(self.templates.items())}

    @cached_property
    def content_hash(self) -> str:
        return version_hash(self.yaml_text, self.template_hashes)


def version_hash(yaml_text: str, template_hashes: Mapping[str, str]) -> str:
    canonical = json.dumps(
        {"journey": yaml_text, "templates": dict(sorted(template_hashes.items()))},
        ensure_ascii=False,
        sort_keys=True,
    )
    return text_hash(canonical)


@dataclass(frozen=True)
class VersionRef:
    """A stored version as people and messages name it: ``onboarding`` version 3."""

    id: int
    number: int
    content_hash: str

    def __str__(self) -> str:
        return f"version {self.number}"
