"""A real MariaDB for the GDS tests (``atlas_ray.featurestore._gds._gds_testing.local_mariadb``): the
machine's at 127.0.0.1:3306 when root logs in without a password, else a private ``mariadbd`` started
for the session (``ATLAS_TEST_MARIADB=start`` forces that). Each test database has a unique name and is
dropped after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from atlas_ray.featurestore._gds._gds_testing import LocalMariaDB, local_mariadb


@pytest.fixture(scope="session")
def mariadb() -> Iterator[LocalMariaDB]:
    try:
        with local_mariadb() as server:
            yield server
    except RuntimeError as error:
        pytest.fail(str(error))


@pytest.fixture
def gds_database(mariadb: LocalMariaDB) -> Iterator[str]:
    """A new, empty database with a unique name (dropped at the end)."""
    name = f"atlas_gds_test_{uuid.uuid4().hex[:10]}"
    admin = mariadb.connect(autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
