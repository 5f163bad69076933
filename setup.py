"""Only what pyproject.toml cannot say: the migrations, kept in the repository's top-level
``alembic/`` folder, ship inside the package as ``orchestrator._migrations``, so that an
installed wheel can run ``stepmail db upgrade`` (orchestrator/db/migrate.py finds them)."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["orchestrator*", "workers*"]),
        "orchestrator._migrations",
        "orchestrator._migrations.versions",
    ],
    package_dir={"orchestrator._migrations": "alembic"},
)
