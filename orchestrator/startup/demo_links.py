"""Links and addresses in the journeys and templates that no recipient can reach.

The shipped journeys are a demo: their ``vars`` point at ``relay.example`` (RFC 2606), so a
production service started with them would mail every customer links to a domain that does
not exist. Production refuses them as it refuses demo sender identities; development lists
them in its banner. Each problem names the file and line (one line per file: the first link
and how many more), read from the YAML values (not comments) and the template text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

from orchestrator.errors import JourneyError
from orchestrator.guards.hosts import public_host_problem
from orchestrator.journeys.loader import journey_files
from orchestrator.journeys.yaml_files import read_text
from orchestrator.settings import Settings
from orchestrator.startup.development_defaults import DevelopmentDefault

_URL_HOST = re.compile(r"\bhttps?://(?:[^/\s\"'<>{}@]*@)?(\[[^\]\s]*\]|[^/\s\"'<>{}:?#]+)", re.I)
_ADDRESS_DOMAIN = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)
TEMPLATE_SUFFIXES = (".html", ".txt")

Found = tuple[int, str, str]  # line, where (a YAML path or ""), the host at fault


def demo_links(settings: Settings) -> list[DevelopmentDefault]:
    """One item per file holding a link or address a recipient cannot reach."""
    found: list[DevelopmentDefault] = []
    for path in journey_files(settings.journeys_dir):
        found += _report("STEPMAIL_JOURNEYS_DIR", path, list(_in_yaml(path)))
    templates = settings.templates_dir
    if templates.is_dir():
        for path in sorted(p for p in templates.rglob("*") if p.suffix in TEMPLATE_SUFFIXES):
            found += _report("STEPMAIL_TEMPLATES_DIR", path, list(_in_template(path)))
    return found


def unreachable_hosts(text: str) -> Iterator[tuple[str, str]]:
    """(host, why) for each URL host and address domain in ``text`` a mailbox cannot reach."""
    hosts = [m.group(1) for m in _URL_HOST.finditer(text)]
    hosts += [m.group(1) for m in _ADDRESS_DOMAIN.finditer(text)]
    for host in hosts:
        problem = public_host_problem(host)
        if problem:
            yield host, problem


def _report(variable: str, path: Path, found: list[Found]) -> list[DevelopmentDefault]:
    if not found:
        return []
    line, where, host = found[0]
    more = f" (and {len(found) - 1} more in this file)" if len(found) > 1 else ""
    what = f"{where} links to {host}" if where else f"links to {host}"
    return [
        DevelopmentDefault(
            variable,
            f"holds demo links: {path}:{line}: {what}, which no recipient can reach{more}; "
            "set your own links and addresses",
        )
    ]


def _in_yaml(path: Path) -> Iterator[Found]:
    """Every string value of the file (comments are not values), with its line and path;
    a value an alias repeats is read once (aliases of aliases would repeat it millions of
    times, and one inside the value it names without end)."""
    try:
        root = yaml.compose(read_text(path), Loader=yaml.SafeLoader)
    except (JourneyError, yaml.YAMLError, RecursionError):
        return  # the journeys check reports an unreadable file
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    seen: set[int] = set()
    while stack:
        node, where = stack.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack += [(value, f"{where}.{key.value}".lstrip(".")) for key, value in node.value]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, f"{where}[{i}]") for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.ScalarNode) and isinstance(node.value, str):
            for host, _ in unreachable_hosts(node.value):
                yield node.start_mark.line + 1, where, host


def _in_template(path: Path) -> Iterator[Found]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return  # the templates check reports it
    text = _JINJA_COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)
    for number, line in enumerate(text.splitlines(), start=1):
        for host, _ in unreachable_hosts(line):
            yield number, "", host
