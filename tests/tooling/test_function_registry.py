"""functions.json is the one list of the Lambda functions (issue #18).

Adding a function is a folder, a ``<folder>.tf`` and a registry entry: packaging, coverage (the
Makefile's --cov flags and scripts/check_coverage.py), the structure and Terraform tests, the IAM
proof, and provider.tf's log group names and error alarms read the registry. These tests check
that the registry matches the repository (folders, Terraform resources, outputs), and that no other
Python, Makefile or HCL file names the set of functions by hand: no line and no Python literal names
two functions, except in the allow-listed places below (each saying why it must, and checked to be
complete where it lists every function).
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import hcl2
import pytest

from devkit import functions
from devkit.iam_proof import justifications, tables

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = functions.FUNCTIONS
SCANNED_SUFFIXES = (".py", ".tf", ".hcl", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".sh")
# Files that must name several functions, and why. The registry itself is JSON (not scanned).
ALLOWED = {
    # terraform test asserts on resources, and HCL cannot reach a resource by a name read from data:
    # its every-function lists are checked against the registry (test_tftest_lists_name_every_function).
    "tests/pipeline.tftest.hcl": "terraform test names each resource it asserts on",
    # The walk-through in README.md names these two handlers (the ingestion path), not every function.
    "tests/tooling/test_readme_walk.py": "the README walk-through's two handlers",
    # Which scenarios show each function's grants (COMPONENT_SCENARIOS): per function, not derivable;
    # checked to cover the registry (test_the_iam_proof_knows_every_function).
    "devkit/iam_proof/tables.py": "the IAM proof's scenarios of each function",
    # This file: the probe below.
    "tests/tooling/test_function_registry.py": "the check's own probe",
}


def _tokens(function: functions.Function) -> list[str]:
    """What names a function unambiguously: its folder and its Terraform addresses and output."""
    return [function.folder, function.resource, function.role, function.log_group, function.output]


PATTERNS = {
    function.name: re.compile(
        r"(?<![\w.])(" + "|".join(re.escape(t) for t in _tokens(function)) + r")(?![\w])"
    )
    for function in FUNCTIONS
}


def named_in(text: str) -> set[str]:
    """The registry names of the functions a piece of text names."""
    return {name for name, pattern in PATTERNS.items() if pattern.search(text)}


def _constant_names(node: ast.expr | None) -> set[str]:
    """Functions a literal element names: a string naming them, or a registry name ("monitor")."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
        return set()
    exact = {function.name for function in FUNCTIONS if node.value == function.name}
    return named_in(node.value) | exact


def python_hand_lists(path: Path) -> list[str]:
    """Literal lists/tuples/sets/dict keys, and a call's keywords, naming two or more functions."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            elements = list(node.elts)
        elif isinstance(node, ast.Dict):
            elements = list(node.keys)
        elif isinstance(node, ast.Call):  # f(lambda_trigger=..., lambda_writer=...)
            elements = [ast.Constant(k.arg) for k in node.keywords if k.arg]
        else:
            continue
        names = set().union(*(_constant_names(e) for e in elements)) if elements else set()
        if len(names) >= 2:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} literal naming {sorted(names)}")
    return found


def line_hand_lists(path: Path) -> list[str]:
    """Lines (a Makefile flag list, an HCL list, a string) naming two or more functions."""
    return [
        f"{path.relative_to(ROOT)}:{number} line naming {sorted(names)}"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(names := named_in(line)) >= 2
    ]


def scanned_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    return [
        ROOT / name
        for name in sorted(set(listed))
        if name
        and (name.endswith(SCANNED_SUFFIXES) or Path(name).name == "Makefile")
        and (ROOT / name).is_file()
    ]


def hand_lists(path: Path) -> list[str]:
    found = line_hand_lists(path)
    if path.suffix == ".py":
        found += python_hand_lists(path)
    return found


def test_nothing_but_the_registry_lists_the_functions() -> None:
    files = scanned_files()
    names = {str(path.relative_to(ROOT)) for path in files}
    assert {"Makefile", "provider.tf", "devkit/packaging.py", "scripts/check_coverage.py"} <= names
    assert set(ALLOWED) <= names, "every allow-listed file exists"
    offending = [
        found for path in files if str(path.relative_to(ROOT)) not in ALLOWED for found in hand_lists(path)
    ]
    assert offending == [], "list the functions in functions.json only (devkit/functions.py reads it)"


def test_the_check_sees_a_hand_list() -> None:
    folders = functions.folders()
    probe = ROOT / "build" / "registry-probe.py"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text(
        f"PACKAGES = (\n    {folders[0]!r},\n    {folders[1]!r},\n)\n"
        f'NAMES = {{"{FUNCTIONS[0].name}": 1, "{FUNCTIONS[1].name}": 2}}\n'
        f'FLAGS = "--cov={folders[0]} --cov={folders[1]}"\n'
        f"REPORT = dict({folders[0]}=1, {folders[1]}=2)\n"
    )
    try:
        assert sorted(line.split(" ", 1)[0] for line in hand_lists(probe)) == [
            "build/registry-probe.py:1",  # the tuple, one folder a line
            "build/registry-probe.py:5",  # the dict's keys: registry names
            "build/registry-probe.py:6",  # the string (a line)
            "build/registry-probe.py:7",  # the keywords (a line, and a call)
            "build/registry-probe.py:7",
        ]
    finally:
        probe.unlink()


def test_tftest_lists_name_every_function() -> None:
    """The every-function lists terraform test needs (``for f in [...]``, the log group pairs)."""
    text = (ROOT / "tests" / "pipeline.tftest.hcl").read_text()
    every = {f.resource for f in FUNCTIONS}
    lists = re.findall(r"for f in \[(aws_lambda_function\.[^\]]*)\]", text)
    assert len(lists) >= 3
    for found in lists:
        assert {item.strip() for item in found.split(",")} == every, found
    [pairs] = re.findall(r"for pair in \[(\[data\.aws_iam_policy_document.*\])\] :", text)
    assert set(re.findall(r"aws_cloudwatch_log_group\.\w+", pairs)) == {f.log_group for f in FUNCTIONS}


def test_each_function_has_its_folder_and_terraform_file() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("lambda_*/index.py")}
    assert on_disk == set(functions.folders()), "a function folder without a registry entry, or the reverse"
    for function in FUNCTIONS:
        assert (ROOT / function.terraform_file).is_file(), function.terraform_file
        for package in function.shared_packages:
            assert (ROOT / package / "__init__.py").is_file(), package
    assert len({f.name for f in FUNCTIONS}) == len({f.folder for f in FUNCTIONS}) == len(FUNCTIONS)


def unquote(value: object) -> object:
    """python-hcl2 keeps the quotes of a string literal."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _resources() -> dict[str, tuple[str, dict]]:
    """address -> (file, body) of every resource and output of the root configuration."""
    found: dict[str, tuple[str, dict]] = {}
    for path in sorted(ROOT.glob("*.tf")):
        if path.name.endswith("_override.tf"):
            continue
        document = hcl2.loads(path.read_text())
        for entry in document.get("resource", []):
            for kind, inner in entry.items():
                for name, body in inner.items():
                    found[f"{kind.strip(chr(34))}.{name.strip(chr(34))}"] = (path.name, body)
        for entry in document.get("output", []):
            for name, body in entry.items():
                found[f"output.{name.strip(chr(34))}"] = (path.name, body)
    return found


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.name)
def test_the_registry_matches_the_terraform(function: functions.Function) -> None:
    resources = _resources()
    file, body = resources[function.resource]
    assert file == function.terraform_file
    assert unquote(body["role"]) == f"${{{function.role}.arn}}"
    assert unquote(body["function_name"]) == f"${{local.name_prefix}}-{function.function_name_suffix}"
    assert unquote(body["filename"]) == f"${{local.dist_dir}}/{function.zip_name}"
    assert unquote(body["logging_config"][0]["log_group"]) == f"${{{function.log_group}.name}}"
    assert function.role in resources
    assert resources[function.log_group][0] == function.terraform_file
    assert resources[f"output.{function.output}"][1]["value"] == f"${{{function.resource}.function_name}}"


def test_every_function_resource_and_output_is_in_the_registry() -> None:
    resources = _resources()
    assert {a for a in resources if a.startswith("aws_lambda_function.")} == {f.resource for f in FUNCTIONS}
    function_outputs = {
        a.removeprefix("output.")
        for a, (_, body) in resources.items()
        if a.startswith("output.")
        and re.fullmatch(r"\$\{aws_lambda_function\.\w+\.function_name\}", body["value"])
    }
    assert function_outputs == {f.output for f in FUNCTIONS}


def test_the_iam_proof_knows_every_function() -> None:
    """Its per-function tables (the scenarios showing each role's grants) cover the registry."""
    assert set(justifications.FUNCTIONS) == {f.name for f in FUNCTIONS}
    assert set(tables.COMPONENT_SCENARIOS) - {"state_machine"} == {f.name for f in FUNCTIONS}
    assert set(tables.AWS_COMPONENT_SCENARIOS) == set(tables.COMPONENT_SCENARIOS), "make iam-proof-aws's too"
    for function in FUNCTIONS:
        assert f"as_{function.name}" in tables.SCENARIOS, f"a scenario acting as the {function.label} role"
