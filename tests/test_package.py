"""The distribution as a user installs it: one import name, layers that point one way, numba's cache
outside the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What the engine must never load: the layers above it and the web stack they bring.
ABOVE_ENGINE = ("marshrut.api", "marshrut.benchmarks", "marshrut.cli", "marshrut.whatif", "marshrut.registry",
                "fastapi", "starlette", "uvicorn", "typer")


def _loaded_after(code: str, env: dict | None = None) -> dict:
    """Runs `code` in a fresh interpreter (outside the repository) and returns what it printed as JSON."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/",
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_engine_imports_no_layer_above_it():
    # Every module of the engine, not only its __init__: a lazy import inside a function would not show.
    loaded = _loaded_after(
        "import json, pkgutil, importlib, sys\n"
        "import marshrut.engine as e\n"
        "for m in pkgutil.walk_packages(e.__path__, 'marshrut.engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(json.dumps(sorted(sys.modules)))")
    above = [name for name in loaded if name.startswith(ABOVE_ENGINE)]
    assert "marshrut.engine.solver.decompose" in loaded and "marshrut.engine.registry.client" in loaded
    assert above == [], f"the engine loads layers above it: {above}"


def test_engine_sources_name_no_layer_above_it():
    # A lazy `from marshrut.api import ...` inside a function body escapes the import test above.
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and any(
                    f" {layer}" in stripped or f" {layer}." in stripped for layer in ABOVE_ENGINE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert offenders == []


def test_the_public_names_of_the_engine_are_in_one_place():
    loaded = _loaded_after("import json, marshrut.engine as e; print(json.dumps(e.__all__))")
    for name in ("load_bundle", "validate_bundle", "Params", "params_from_dict", "plan_region", "solve",
                 "write_plan", "InputError", "RegionData"):
        assert name in loaded


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    (path,) = out.glob("marshrut-*.whl")
    return path


def test_the_wheel_installs_one_top_level_name(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (record,) = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        paths = [line.split(",")[0] for line in archive.read(record).decode().splitlines() if line]
    tops = {path.split("/")[0] for path in paths if not path.split("/")[0].endswith(".dist-info")}
    assert tops == {"marshrut"}
    # What a user needs ships with it; the tests and the repository's tooling do not.
    assert "marshrut/datasets/samples/tomsk-school-44/teachers.csv" in paths
    assert "marshrut/api/web/index.html" in paths
    assert "marshrut/engine/solver/routes.py" in paths and "marshrut/cli.py" in paths
    assert not any(path.startswith("marshrut/tests") or "/__pycache__/" in path for path in paths)


def test_numba_caches_in_the_users_cache_folder(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "NUMBA_CACHE_DIR": ""}
    loaded = _loaded_after("import json, numba, marshrut.engine.solver.routes as r\n"
                           "print(json.dumps([numba.config.CACHE_DIR, r.__file__]))", env)
    cache, module = Path(loaded[0]), Path(loaded[1])
    assert cache == tmp_path / "xdg" / "marshrut" / "numba"
    assert module.parent not in cache.parents and not cache.is_relative_to(module.parents[2])


def test_numba_cache_dir_from_the_environment_wins(tmp_path):
    loaded = _loaded_after("import json, numba, marshrut.engine.solver.routes\n"
                           "print(json.dumps(numba.config.CACHE_DIR))", {"NUMBA_CACHE_DIR": str(tmp_path / "nb")})
    assert Path(loaded) == tmp_path / "nb"


def test_python_dash_m_marshrut_is_the_command():
    out = subprocess.run([sys.executable, "-m", "marshrut", "--help"], capture_output=True, text=True, timeout=120,
                         cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    for command in ("plan", "validate", "serve", "registry", "datasets"):
        assert command in out.stdout
