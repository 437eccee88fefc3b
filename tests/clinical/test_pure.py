"""clinical/ is pure: importing every module of it loads no Django and nothing of ours but clinical."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import clinical


def test_clinical_imports_only_the_standard_library_and_stdnum():
    modules = [f"clinical.{m.name}" for m in pkgutil.iter_modules([str(Path(clinical.__file__).parent)])]
    code = "import sys; " + "; ".join(f"import {m}" for m in modules) + "; print(sorted({n.split('.')[0] for n in sys.modules}))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(clinical.__file__).parent.parent
    ).stdout
    assert len(modules) >= 7
    for forbidden in ("django", "rest_framework", "journeys", "patients", "carclinic", "pydantic"):
        assert f"'{forbidden}'" not in loaded, forbidden
    assert "'stdnum'" in loaded
