"""Commands that train nothing stay light: they load neither Ray nor PyTorch (issue 20).

Each check runs in a fresh interpreter, since this test process has imported both long ago."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("ray", "torch", "optuna")
QUICKSTART = Path(__file__).resolve().parents[1] / "search_spaces" / "quickstart.yaml"


def loaded_after(code: str, heavy: tuple[str, ...] = ("ray", "torch")) -> list[str]:
    probe = code + f"\nimport sys\nprint(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["tunelab", "tunelab.cli", "tunelab.store", "tunelab.analysis", "tunelab.trust.report"])
def test_importing_a_reading_module_loads_neither_ray_nor_torch(module: str) -> None:
    assert loaded_after(f"import {module}") == []


# Strategies declare their names and options in plain Python; only `build` imports the library.
@pytest.mark.parametrize("module", ["tunelab.spec", "tunelab_models", "tunelab.search.searchers", "tunelab.search.schedulers",
                                    "tunelab.training.knobs", "tunelab.biasvar"])
def test_declarations_load_no_library_they_build_with(module: str) -> None:
    assert loaded_after(f"import {module}", heavy=HEAVY) == []


@pytest.mark.parametrize("argv", [["--help"], ["validate", str(QUICKSTART)], ["studies", "--storage", "{storage}"],
                                  ["results", "light", "--storage", "{storage}"]])
def test_commands_that_train_nothing_load_neither_ray_nor_torch(argv: list[str], tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from startup import stored_study

    stored_study(tmp_path)  # a study called "stored"
    (tmp_path / "stored").rename(tmp_path / "light")
    from tunelab.store import StudyPaths, StudyWriter

    StudyWriter(StudyPaths.of(tmp_path, "light")).update_study(name="light")
    args = [arg.format(storage=tmp_path) for arg in argv]
    code = (f"from tunelab.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as exited:\n    assert not exited.code, exited.code")
    assert loaded_after(code) == []
