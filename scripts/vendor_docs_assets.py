"""Refresh the Swagger UI and ReDoc files that ``/docs`` and ``/redoc`` serve from the package.

    python scripts/vendor_docs_assets.py      # needs npm; then run the tests and commit

They come from the npm registry's own packages (``swagger-ui-dist``, ``redoc``), fetched with
``npm pack`` (which checks the registry's integrity hash), and are copied byte for byte with
their licences into ``orchestrator/api/docs_assets/``. ``VENDORED.json`` records each package's
version and integrity and each file's SHA-256; ``tests/api/test_docs.py`` checks the
files still match it. To move to a newer release, change a version below and run this again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "orchestrator" / "api" / "docs_assets"

# package, version, folder in docs_assets, {file in the npm tarball: name in that folder}
PACKAGES = [
    (
        "swagger-ui-dist",
        "5.35.0",
        "swagger_ui",
        {
            "package/swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "package/swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "package/swagger-ui.css": "swagger-ui.css",
            "package/favicon-32x32.png": "favicon-32x32.png",
            "package/LICENSE": "LICENSE",
            "package/NOTICE": "NOTICE",
        },
    ),
    (
        "redoc",
        "2.5.4",  # the 2.x line FastAPI's own docs page uses; 3.x is twice the size
        "redoc",
        {
            "package/bundles/redoc.standalone.js": "redoc.standalone.js",
            "package/bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
            "package/LICENSE": "LICENSE",
        },
    ),
]


# Each patch: (file, upstream text, our text, why). Applied after the copy; VENDORED.json keeps
# the upstream SHA-256 too, so the change stays visible and checkable.
PATCHES = [
    (
        "redoc/redoc.standalone.js",
        'src:"https://cdn.redoc.ly/redoc/logo-mini.svg"',
        'src:""',
        "ReDoc 2 loads its menu logo from its CDN; an empty src loads nothing and the logo "
        "hides itself (its onError), so no request ever leaves the server's own origin",
    ),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(package: str, version: str, workdir: Path) -> tuple[Path, str]:
    """``npm pack`` downloads the release tarball and verifies it against the registry."""
    packed = subprocess.run(
        ["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=True,
    )
    (info,) = json.loads(packed.stdout)
    return workdir / info["filename"], info["integrity"]


def vendor(
    package: str, version: str, folder: str, files: dict[str, str], workdir: Path
) -> dict[str, object]:
    tarball, integrity = fetch(package, version, workdir)
    target = ASSETS / folder
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(tarball) as archive:
        for member, name in files.items():
            source = archive.extractfile(member)
            assert source is not None, f"{package}@{version} has no {member}"
            (target / name).write_bytes(source.read())
    upstream = {f"{folder}/{name}": sha256(target / name) for name in sorted(files.values())}
    patches = [patch(*spec) for spec in PATCHES if spec[0] in upstream]
    return {
        "package": package,
        "version": version,
        "integrity": integrity,
        "files": {name: sha256(ASSETS / name) for name in upstream},
        "patches": [{**entry, "upstream_sha256": upstream[entry["file"]]} for entry in patches],
    }


def patch(name: str, old: str, new: str, why: str) -> dict[str, str]:
    path = ASSETS / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{name}: expected exactly one {old!r} to patch"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return {"file": name, "why": why}  # not the old text: the package names no CDN at all


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        manifest = [vendor(*spec, workdir=Path(workdir)) for spec in PACKAGES]
    (ASSETS / "VENDORED.json").write_text(json.dumps(manifest, indent=2) + "\n")
    releases = ", ".join(f"{entry['package']}@{entry['version']}" for entry in manifest)
    print(f"vendored {releases}")


if __name__ == "__main__":
    main()
