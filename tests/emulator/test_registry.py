"""The patch registry: one declared list, inert while no emulator runs, reviewable on a moto upgrade.

Also the list of every other moto touch-point (``registry.USES``), the moto version all of it was
written against, and the emulator package's structure: no function longer than ~60 lines, no file
longer than 600 (import cycles: tests/tooling/test_imports.py, over every first-party package).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator import Emulator, registry
from emulator.control import EmulatorControl
from emulator.registry import Patch, PatchTargetError, Use

pytestmark = pytest.mark.emulator
PACKAGE = Path(registry.__file__).parent
ROOT = PACKAGE.parent
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 600
# Underscore attributes read on objects that are the emulator's own, not moto's.
EMULATOR_OWNED = {"_workers": "sqs_event_sources: a retired poller's threads"}
REVIEW = (
    "review every Patch (README 'The patch registry') and every Use in emulator/registry.py against "
    "it, run tests/emulator, then set registry.MOTO_VERSION and the pin in requirements-dev.txt together"
)


def current(target: str) -> Any:
    owner_path, name = target.rsplit(".", 1)
    owner = registry.resolve(owner_path)
    return vars(owner).get(name, "<absent>") if hasattr(owner, "__dict__") else getattr(owner, name)


def test_every_patch_says_what_and_why() -> None:
    patches = registry.patches()
    assert len(patches) >= 25
    assert len({p.target for p in patches}) == len(patches), "one entry per target"
    for patch in patches:
        assert patch.target.startswith("moto."), patch.target
        assert len(patch.why) > 30, f"{patch.target}: say which moto behaviour differs from AWS"
        assert patch.module.startswith("emulator."), patch.target


def test_patches_are_installed_only_while_an_emulator_runs() -> None:
    targets = [p for p in registry.patches() if p.kind != "entries"]
    before = {p.target: current(p.target) for p in targets}
    assert not registry.installed()
    with Emulator(port=0):
        assert registry.installed()
        during = {p.target: current(p.target) for p in targets}
        assert all(during[t] is not before[t] for t in before), [t for t in before if during[t] is before[t]]
    assert not registry.installed()
    after = {p.target: current(p.target) for p in targets}
    assert all(after[t] is before[t] for t in before), [t for t in before if after[t] is not before[t]]
    from moto.awslambda import urls

    assert not any("runtime-management-config" in pattern for pattern in urls.url_paths)


def test_mock_aws_sees_plain_moto_after_an_emulator_ran() -> None:
    with Emulator(port=0):
        pass
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="plain-moto-bucket")
        s3.put_bucket_encryption(
            Bucket="plain-moto-bucket",
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": "k-1",
                        }
                    }
                ]
            },
        )
        s3.put_object(Bucket="plain-moto-bucket", Key="k", Body=b"x", ServerSideEncryption="aws:kms")
        # moto's own (un-AWS-like) choice: the bucket's key, not aws/s3; proof that no patch is active
        assert s3.head_object(Bucket="plain-moto-bucket", Key="k")["SSEKMSKeyId"] == "k-1"


def test_entries_put_back_the_values_they_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core.config import default_user_config

    original = default_user_config["iot"]
    replacing = Patch(
        "moto.core.config.default_user_config",
        "a test: one existing key replaced, one new key added",
        lambda _config: {"iot": {"use_valid_cert": True}, "emulator-test": {"added": True}},
        "entries",
    )
    monkeypatch.setattr(registry, "patches", lambda: [replacing])
    registry.install()
    try:
        assert default_user_config["iot"] == {"use_valid_cert": True}
        assert default_user_config["emulator-test"] == {"added": True}
    finally:
        registry.uninstall()
    assert default_user_config["iot"] is original
    assert "emulator-test" not in default_user_config


def test_an_emulator_leaves_motos_configuration_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both keys the emulator sets (Step Functions execution, the full Lambda backend) come back."""
    from moto.core.config import default_user_config

    custom_lambda = {"use_docker": False}  # what a mock_aws(config=...) test might have set
    monkeypatch.setitem(default_user_config, "lambda", custom_lambda)
    before = dict(default_user_config)
    with Emulator(port=0):
        assert default_user_config["stepfunctions"] == {"execute_state_machine": True}
        assert default_user_config["lambda"] == {"use_docker": True}
    assert default_user_config == before
    assert default_user_config["lambda"] is custom_lambda
    assert default_user_config["stepfunctions"] is before["stepfunctions"]


def test_a_missing_target_fails_install_with_the_patch_named(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Patch("moto.s3.models.S3Backend.no_such_method", "a moto upgrade renamed it", lambda o: o)
    real = registry.patches
    monkeypatch.setattr(registry, "patches", lambda: [*real(), broken])
    with pytest.raises(PatchTargetError, match="no_such_method does not exist"):
        registry.install()
    assert not registry.installed(), "a failed install reverts what it applied"
    assert (
        current("moto.s3.models.S3Backend.put_object")
        is vars(importlib.import_module("moto.s3.models").S3Backend)["put_object"]
    )


def _emulator_modules() -> dict[str, ast.Module]:
    return {f"emulator.{path.stem}": ast.parse(path.read_text()) for path in sorted(PACKAGE.glob("*.py"))}


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:`` (annotations only: never imported at run time)."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }


def test_annotation_only_imports_name_what_their_module_defines() -> None:
    """``if TYPE_CHECKING:`` imports never run, so nothing else notices one that points elsewhere."""
    wrong = []
    for module, tree in _emulator_modules().items():
        annotations_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if id(node) not in annotations_only or not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            source = importlib.import_module(node.module)
            wrong.extend(
                f"{module}: {node.module}.{alias.name}"
                for alias in node.names
                if alias.name not in vars(source)
                or getattr(vars(source)[alias.name], "__module__", node.module) != node.module
            )
    assert wrong == []


def test_no_function_is_longer_than_sixty_lines() -> None:
    long = [
        f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for module, tree in _emulator_modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_readme_lists_every_patch() -> None:
    readme = (PACKAGE / "README.md").read_text()
    missing = [p.target for p in registry.patches() if f"`{p.target.removeprefix('moto.')}`" not in readme]
    assert missing == []


def test_the_installed_moto_is_the_one_the_registry_was_written_against() -> None:
    installed = registry.installed_moto_version()
    assert installed == registry.MOTO_VERSION, (
        f"moto {installed} is installed, but the emulator's patches and touch-points were written against "
        f"moto {registry.MOTO_VERSION}: {REVIEW}"
    )


def test_the_pin_and_the_readme_name_the_registry_version() -> None:
    pins = re.findall(r"^moto\[server\]==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert pins == [registry.MOTO_VERSION], f"requirements-dev.txt pins moto {pins}: {REVIEW}"
    assert f"moto {registry.MOTO_VERSION} runs" in (PACKAGE / "README.md").read_text()


def test_every_patch_target_and_touch_point_is_where_moto_had_it() -> None:
    """Without installing anything: replaced targets exist, added ones do not, entries are dicts,
    imported names import, private attributes are still moto's, stored ones are still not."""
    found = registry.problems()
    assert found == [], f"moto {registry.installed_moto_version()} differs under the emulator:\n" + "\n".join(
        found
    )


def test_problems_name_what_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        registry,
        "USES",
        (
            Use("moto.sqs.models.no_such_backends", "import", ("sqs_event_sources",)),
            Use("moto.sqs.models.Queue._no_such_state", "private", ("cloudwatch_alarms",)),
            Use("moto.sqs.models.Queue._messages", "stores", ("sqs_move_tasks",)),
        ),
    )
    monkeypatch.setattr(
        registry,
        "patches",
        lambda: [
            Patch(
                "moto.sqs.models.Queue.no_such_method",
                "a moto upgrade renamed it",
                lambda o: o,
                "replace",
                "m",
            ),
            Patch("moto.sqs.models.Queue.add_message", "moto gained it", lambda o: o, "add", "m"),
            Patch("moto.core.config.__name__", "no dict", lambda o: {}, "entries", "m"),
        ],
    )
    found = registry.problems()
    assert len(found) == 6, found
    for expected in (
        "Queue.no_such_method does not exist",
        "Queue.add_message already exists",
        "__name__ is no longer a dict",
        "no_such_backends (import, used by emulator.sqs_event_sources)",
        "_no_such_state: moto no longer defines it (read by emulator.cloudwatch_alarms)",
        "_messages: moto now defines it too",
    ):
        assert any(expected in problem for problem in found), (expected, found)


def _moto_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for module, tree in _emulator_modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "moto":
                for alias in node.names:
                    found[f"{node.module}.{alias.name}"].add(module.removeprefix("emulator."))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "moto":
                        found[alias.name].add(module.removeprefix("emulator."))
    return found


def _uses(*kinds: str) -> dict[str, set[str]]:
    return {use.target: set(use.modules) for use in registry.USES if use.kind in kinds}


def test_every_name_imported_from_moto_is_listed() -> None:
    listed = _uses("import")
    imported = _moto_imports()
    assert imported == listed, {
        "imported, not in registry.USES": sorted(set(imported) - set(listed)),
        "listed, no longer imported": sorted(set(listed) - set(imported)),
        "modules differ": {
            t: (sorted(imported[t]), sorted(listed[t]))
            for t in imported.keys() & listed.keys()
            if imported[t] != listed[t]
        },
    }


def _private_attributes(tree: ast.Module, constants: dict[str, str]) -> set[str]:
    """Underscore attributes read or set on anything but ``self``/``cls`` of the emulator's own
    classes (a patch's ``self`` is moto's object), named in getattr/setattr (a string or one of the
    emulator's string ``constants``), or ``_emulator_*``."""
    own_methods = {
        id(inner)
        for cls in ast.walk(tree)
        if isinstance(cls, ast.ClassDef)
        for method in cls.body
        if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(method)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            on_own = (
                isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
                and id(node) in own_methods
            )
            found.update(() if on_own else [node.attr])
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update([node.value] if re.fullmatch(r"_emulator_\w+", node.value) else [])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "getattr",
            "setattr",
            "hasattr",
        ):
            name = node.args[1] if len(node.args) > 1 else None
            value = constants.get(name.id) if isinstance(name, ast.Name) else getattr(name, "value", None)
            if isinstance(value, str) and value.startswith("_") and not value.startswith("__"):
                found.add(value)
    return found


def test_every_private_moto_attribute_is_listed() -> None:
    modules = _emulator_modules()
    constants = {
        target.id: node.value.value
        for tree in modules.values()
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    touched: dict[str, set[str]] = defaultdict(set)
    for module, tree in modules.items():
        for name in _private_attributes(tree, constants) - set(EMULATOR_OWNED):
            touched[name].add(module.removeprefix("emulator."))
    listed: dict[str, set[str]] = defaultdict(set)
    for target, modules in _uses("private", "stores").items():
        listed[target.rsplit(".", 1)[1]] |= modules
    listed.pop("__dict__")  # performance: vars() of moto's ASL components, listed by hand
    assert touched == listed, {
        "touched, not in registry.USES": sorted(set(touched) - set(listed)),
        "listed, no longer touched": sorted(set(listed) - set(touched)),
        "modules differ": {
            t: (sorted(touched[t]), sorted(listed[t]))
            for t in touched.keys() & listed.keys()
            if touched[t] != listed[t]
        },
    }


def test_no_emulator_file_is_longer_than_600_lines() -> None:
    lengths = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    assert {name: n for name, n in lengths.items() if n > MAX_FILE_LINES} == {}


def test_the_emulator_is_what_its_admin_api_expects() -> None:
    """admin.py and app.py see the server through the EmulatorControl Protocol (no import cycle)."""
    emulator = Emulator(port=0)
    members = [name for name in vars(EmulatorControl) if not name.startswith("_")]
    members += list(EmulatorControl.__annotations__)
    assert {"faults", "health", "trigger_rule", "evaluate_alarms"} <= set(members)
    missing = [name for name in members if not hasattr(emulator, name)]
    assert missing == []
    for name in members:
        expected = getattr(EmulatorControl, name, None)
        if callable(expected):
            assert list(inspect.signature(expected).parameters) == list(
                inspect.signature(getattr(Emulator, name)).parameters
            ), name
