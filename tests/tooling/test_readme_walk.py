"""The README's by-hand walk says what works: the review's README findings (#17), each a check.

The walk itself was run on both emulators when it was written; these checks keep the properties
that made it work from being edited away: the alert queue exists, with a policy SNS can deliver
under, before the upload whose alert it should receive; the walk's files go to a scratch directory;
the local reconcile command names the emulator's endpoint; the logging claims match the code.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level (lines in
    fenced code blocks, such as shell comments, are no headings)."""
    level = len(heading.split(" ", 1)[0])
    lines = README.splitlines()
    start = lines.index(heading)
    fenced = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            fenced = not fenced
        heading_level = len(line) - len(line.lstrip("#"))
        if not fenced and 0 < heading_level <= level and line[heading_level : heading_level + 1] == " ":
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


def commands(text: str) -> str:
    """Only what is inside the ```bash blocks of `text`."""
    return "\n".join(re.findall(r"```bash\n(.*?)```", text, flags=re.S))


def test_the_alert_queue_is_subscribed_with_a_policy_before_the_rejected_upload() -> None:
    walk = commands(section("### Test 3: input validation"))
    policy, subscribe, upload, receive = (
        walk.index("set-queue-attributes"),
        walk.index("sns subscribe"),
        walk.index("put-object"),
        walk.index("receive-message"),
    )
    assert policy < subscribe < upload < receive
    assert '\\"sqs:SendMessage\\"' in walk
    assert '\\"aws:SourceArn\\"' in walk, "the queue accepts the alert topic only"
    assert "--wait-time-seconds" in walk[receive:], "the receive waits for the alert"


def test_the_walk_runs_in_a_scratch_directory() -> None:
    walk = section("## Run it locally, by hand")
    first = commands(walk)
    scratch = first.index('cd "$(mktemp -d)"')
    assert first.index("REPO=$PWD") < scratch
    assert scratch < first.index("> test.txt"), "files are written after leaving the repository"
    assert "terraform output -raw" not in first, "outputs are read with -chdir from the scratch directory"


def test_the_local_reconcile_command_names_the_endpoint() -> None:
    reconcile = commands(section("### Reconcile: the audit"))
    local = [line for line in reconcile.splitlines() if "reconcile" in line and "ENDPOINT_URL" in line]
    assert local, "a reconcile command for local stacks"
    assert all("--endpoint-url" in line for line in local)


def test_the_readme_says_object_keys_are_logged_as_the_handlers_do() -> None:
    """The trigger and the writer put the object key in their structured logs (field ``key``);
    the README once claimed "no file names in plain logs"."""
    assert "no file names in plain logs" not in README.lower()
    for function in ("lambda_trigger", "lambda_writer"):  # the handler, or one of its layers
        sources = [path.read_text(encoding="utf-8") for path in sorted((ROOT / function).rglob("*.py"))]
        assert any(re.search(r'"key": \w+\.key\b', source) for source in sources), function
    assert "The trigger and the writer log the full object key (field `key`)" in " ".join(
        section("## Security features").split()
    )
