"""The import graph (`scripts/import_graph.py`, run by `make lint`): no cycle, notifications the lowest app."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_graph"] = module
    spec.loader.exec_module(module)
    return module


checker = load_checker()


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write throwaway packages ({"pkg/module.py": source}) on sys.path."""

    def write(files: dict[str, str]) -> None:
        for name, source in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            for folder in path.relative_to(tmp_path).parents:
                (tmp_path / folder / "__init__.py").touch()
            path.write_text(source)

    monkeypatch.syspath_prepend(str(tmp_path))
    return write


def test_the_project_has_no_cycle_and_notifications_imports_no_app_above_it():
    assert checker.problems() == []


def test_a_cycle_hidden_in_a_function_is_found(packages):
    packages(
        {
            "shop/models.py": "def create():\n    from .services import make\n    return make()\n",
            "shop/services.py": "from .models import create\n\ndef make():\n    return 1\n",
            "shop/views.py": "from .services import make\n",
        }
    )
    (problem,) = checker.problems(("shop",), lowest="shop", above_lowest=())
    assert problem.startswith("Import cycle between 2 modules: shop.models, shop.services.")
    assert "shop.models -> shop.services  (shop.models:2)" in problem


def test_a_cycle_through_two_packages_is_found(packages):
    packages(
        {
            "upper/services.py": "from lower.services import notify\n",
            "lower/services.py": "def notify():\n    from upper.services import notify as again\n",
        }
    )
    (problem,) = checker.problems(("upper", "lower"), lowest="nobody", above_lowest=())
    assert "lower.services, upper.services" in problem


def test_a_task_counts_with_its_services(packages):
    """`services` queuing its own app's task and the task calling the service is one node, not a cycle."""
    packages(
        {
            "mail/services.py": "def send():\n    from .tasks import send_task\n",
            "mail/tasks.py": "from .services import send\n",
        }
    )
    assert checker.problems(("mail",), lowest="nobody", above_lowest=()) == []


def test_the_lowest_app_importing_an_app_above_it_is_refused(packages):
    packages(
        {
            "base/services.py": "def fan_out():\n    from top.models import User\n",
            "top/models.py": "User = object\n",
        }
    )
    assert checker.problems(("base", "top"), lowest="base", above_lowest=("top",)) == [
        "base imports an app above it: base.services -> top.models  (base.services:2)"
    ]


def test_a_package_importing_across_its_layer_contract_is_refused(packages):
    packages(
        {
            "plumbing/cache.py": "def get():\n    from shop.models import Item\n",
            "shop/models.py": "Item = object\n",
        }
    )
    found = checker.problems(
        ("plumbing", "shop"), lowest="nobody", above_lowest=(), forbidden={"plumbing": ("shop",)}
    )
    assert found == ["plumbing must not import shop: plumbing.cache -> shop.models  (plumbing.cache:2)"]
