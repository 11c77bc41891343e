"""The unit-test harness lets a handler import only what its zip holds (devkit/lambda_harness.py)."""

from __future__ import annotations

import builtins
import sys
from collections.abc import Iterator
from pathlib import Path

import hcl2
import pytest

from devkit.lambda_harness import (
    COMMON_DIR,
    CONTRACT_ENV_VARS,
    ISOLATED_MODULES,
    LAMBDA_REQUIREMENTS,
    REPO_ROOT,
    FakeLambdaContext,
    FunctionLoader,
    ZipImportGuard,
    folder_modules,
    requirement_names,
    sqs_event,
    zip_library_modules,
)


@pytest.fixture
def functions_root(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def loader(monkeypatch: pytest.MonkeyPatch, functions_root: Path) -> Iterator[FunctionLoader]:
    loader = FunctionLoader(monkeypatch, "test", "HarnessTests", functions_root=functions_root)
    yield loader
    loader.close()


def write_function(root: Path, body: str, **extra_files: str) -> str:
    folder = root / "lambda_probe"
    folder.mkdir()
    (folder / "index.py").write_text(
        "from aws_lambda_powertools import Logger, Metrics\nlogger = Logger()\nmetrics = Metrics()\n" + body
    )
    for name, text in extra_files.items():
        (folder / name).write_text(text)
    return folder.name


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("import devkit.packaging", id="repository-tooling"),
        pytest.param("import moto", id="test-only-library-already-imported"),
        pytest.param("import pytest", id="test-runner"),
        pytest.param("from lambda_writer import index", id="another-function-folder"),
        pytest.param("import tests.conftest", id="tests"),
    ],
)
def test_an_import_the_zip_lacks_fails_even_when_the_test_process_has_it(
    loader: FunctionLoader, functions_root: Path, statement: str
) -> None:
    folder = write_function(functions_root, f"{statement}\n")
    top = statement.split()[1].split(".")[0]

    with pytest.raises(ModuleNotFoundError, match=f"No module named '{top}' in a function zip") as caught:
        loader.load(folder)

    assert caught.value.name == top


def test_the_flat_imports_of_the_old_layout_fail(loader: FunctionLoader, functions_root: Path) -> None:
    # lambda_common used to be copied to the zip root; now only the package is there
    folder = write_function(functions_root, "from key_validation import validate_key\n")

    with pytest.raises(ModuleNotFoundError, match="key_validation"):
        loader.load(folder)


def test_an_import_inside_a_function_is_checked_when_it_runs(
    loader: FunctionLoader, functions_root: Path
) -> None:
    folder = write_function(functions_root, "def lambda_handler(event, context):\n    import moto\n")
    module = loader.load(folder)

    with pytest.raises(ModuleNotFoundError, match="'moto' in a function zip"):
        module.lambda_handler({}, None)


def test_what_a_zip_holds_imports_fine(loader: FunctionLoader, functions_root: Path) -> None:
    folder = write_function(
        functions_root,
        "import json, unicodedata\n"
        "import boto3\n"
        "from botocore.exceptions import ClientError\n"
        "from lambda_common.alerts import display_text\n"
        "from lambda_common import key_validation\n"
        "import helpers\n",
        **{"helpers.py": "VALUE = 1\n"},
    )

    module = loader.load(folder)

    assert module.helpers.VALUE == 1
    assert module.display_text("a") == '"a"'
    assert module.key_validation.__file__.endswith("lambda_common/key_validation.py")


def test_the_guard_is_gone_after_the_test(functions_root: Path) -> None:
    original = builtins.__import__
    with pytest.MonkeyPatch.context() as monkeypatch:
        loader = FunctionLoader(monkeypatch, "test", "HarnessTests", functions_root=functions_root)
        loader.load(write_function(functions_root, ""))
        assert builtins.__import__ is not original
        loader.close()

    assert builtins.__import__ is original


def terraform_environment_variables() -> set[str]:
    """The name of every environment variable Terraform gives a function (``aws_lambda_function``)."""
    names: set[str] = set()
    for path in REPO_ROOT.glob("*.tf"):
        for resource in hcl2.loads(path.read_text()).get("resource", []):
            for type_name, blocks in resource.items():
                if type_name.strip('"') != "aws_lambda_function":
                    continue
                for function in blocks.values():
                    for environment in function.get("environment", []):
                        names |= set(environment["variables"])
    return names


def test_the_loader_clears_every_variable_terraform_sets() -> None:
    names = terraform_environment_variables()

    assert {"SECURITY_SCAN_EXEMPTIONS", "WORKFLOW_TYPE", "TABLE_NAME"} <= names  # the parse found them
    assert names <= set(CONTRACT_ENV_VARS)


def test_a_contract_variable_of_the_process_does_not_reach_a_function(
    loader: FunctionLoader, functions_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECURITY_SCAN_EXEMPTIONS", '{"left-over": "from the shell"}')
    monkeypatch.setenv("WORKFLOW_TYPE", "EXPRESS")
    folder = write_function(
        functions_root,
        "import os\nSEEN = {n: os.environ.get(n) for n in ('SECURITY_SCAN_EXEMPTIONS', 'WORKFLOW_TYPE')}\n",
    )

    assert loader.load(folder).SEEN == {"SECURITY_SCAN_EXEMPTIONS": None, "WORKFLOW_TYPE": None}
    assert loader.load(folder, WORKFLOW_TYPE="STANDARD").SEEN["WORKFLOW_TYPE"] == "STANDARD"


def test_the_allowed_libraries_are_the_bundled_ones_and_the_runtime_boto3() -> None:
    assert set(requirement_names(LAMBDA_REQUIREMENTS)) >= {"aws-lambda-powertools"}
    allowed = zip_library_modules()

    assert {"aws_lambda_powertools", "typing_extensions", "jmespath", "boto3", "botocore", "json"} <= allowed
    assert not {"moto", "pytest", "devkit", "lambda_common", "emulator"} & allowed


def test_only_function_code_is_checked() -> None:
    guard = ZipImportGuard(library_modules=frozenset())
    common_file = str(COMMON_DIR / "alerts.py")

    guard.check("moto", {"__file__": "/elsewhere/conftest.py"}, 0)  # not function code
    guard.check("alerts", {"__file__": common_file}, 1)  # a relative import inside the package
    guard.check("lambda_common.key_validation", {"__file__": common_file}, 0)
    with pytest.raises(ModuleNotFoundError, match="'moto'"):
        guard.check("moto", {"__file__": common_file}, 0)


def test_sqs_event_wraps_each_body_in_one_queue_message() -> None:
    event = sqs_event({"Records": []}, "raw text")

    first, second = event["Records"]
    assert (first["messageId"], first["body"], first["eventSource"]) == (
        "message-0",
        '{"Records": []}',
        "aws:sqs",
    )
    assert (second["messageId"], second["body"]) == ("message-1", "raw text")
    assert first["eventSourceARN"].startswith("arn:aws:sqs:us-east-1:123456789012:")
    assert first["awsRegion"] == "us-east-1"


def test_the_fake_context_reports_the_remaining_time_it_is_given() -> None:
    assert FakeLambdaContext().get_remaining_time_in_millis() == 30_000
    assert FakeLambdaContext(remaining_time_in_millis=1_500).get_remaining_time_in_millis() == 1_500


def test_a_folders_own_packages_are_imported_afresh_with_each_load(
    loader: FunctionLoader, functions_root: Path
) -> None:
    """A layer package of the folder (as the trigger's ``trigger``) is forgotten with ``index``:
    a second load runs its module code again, and nothing of it is left after the test."""
    folder = write_function(functions_root, "from layer.state import COUNTER\nCOUNTER.append(1)\n")
    layer = functions_root / folder / "layer"
    layer.mkdir()
    (layer / "__init__.py").write_text("")
    (layer / "state.py").write_text("COUNTER: list[int] = []\n")

    first = loader.load(folder)
    second = loader.load(folder)

    assert first.COUNTER == [1]
    assert second.COUNTER == [1], "the layer's module state was not carried over from the first load"
    assert first.COUNTER is not second.COUNTER
    loader.close()
    assert not [name for name in sys.modules if name == "layer" or name.startswith("layer.")]


def test_the_repository_functions_layers_are_zip_root_modules() -> None:
    assert {"index", "lambda_common", "trigger", "security_monitor"} <= set(ISOLATED_MODULES)
    assert folder_modules(REPO_ROOT / "lambda_trigger") >= {"index", "trigger"}
