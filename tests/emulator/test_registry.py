"""The patch registry: one declared list, inert while no emulator runs, reviewable on a moto upgrade.

Also the emulator package's structure: no import cycles, and no function longer than ~60 lines.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator import Emulator, registry
from emulator.registry import Patch, PatchTargetError

pytestmark = pytest.mark.emulator
PACKAGE = Path(registry.__file__).parent
MAX_FUNCTION_LINES = 60


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


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    annotations_only = _type_checking_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "emulator":
                found.update(f"emulator.{alias.name}" for alias in node.names)
            elif node.module.startswith("emulator."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("emulator."))
    return found


def test_the_package_has_no_import_cycles() -> None:
    modules = _emulator_modules()
    graph = {name: _imports(tree) & set(modules) for name, tree in modules.items()}
    graph["emulator.__init__"] = graph.pop("emulator.__init__", set())

    def visit(name: str, path: tuple[str, ...]) -> None:
        for dependency in graph.get(name, ()):
            assert dependency not in path, f"import cycle: {' -> '.join((*path, dependency))}"
            visit(dependency, (*path, dependency))

    for name in graph:
        visit(name, (name,))


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
