import sys
from pathlib import Path

import pytest

# tests import the independent oracle as `from oracle import ...`
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL cluster for the whole run (tests/api_server.py starts it from the Debian
    binaries); each test takes a database of its own with `postgres.create_database()`."""
    from api_server import Postgres

    cluster = Postgres()
    try:
        cluster.start()  # raises (the test errors, loudly) if PostgreSQL cannot start
        yield cluster
    finally:
        cluster.stop()
