"""Third-party judges of archy-gate's evidence (test infrastructure only).

Run with the evidence venv's python (scripts/lib.sh: ensure_evidence_venv);
every judgement is made by a registry package, never by code of ours:

  check.py sbom FILE MANIFEST          CycloneDX's own strict JSON schema (cyclonedx-python-lib),
                                       then: every tool manifest.json lists is a component
  check.py provenance FILE SHA256      in-toto Statement v1 and SLSA Provenance v1, parsed strictly
                                       into in-toto-attestation's protobuf messages; subject SHA256
  check.py dsse JSONL PUBKEY_B64       securesystemslib's DSSE Envelope, verified with an ed25519
                                       key made from the minisign public key; each payload parsed
                                       strictly as a Statement (and a test-result predicate when it
                                       is one)

Prints one line per file judged; exits 1 with the reason on the first failure.
"""

import base64
import json
import sys

from google.protobuf import json_format


def fail(msg):
    print(f"check.py: FAIL: {msg}")
    sys.exit(1)


def strict(message, doc, what):
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        fail(f"{what} is not the spec's shape: {e}")
    return message


def statement(doc, what):
    from in_toto_attestation.v1.statement import Statement
    from in_toto_attestation.v1 import statement_pb2

    pb = strict(statement_pb2.Statement(), doc, what)
    try:
        Statement.copy_from_pb(pb).validate()
    except ValueError as e:
        fail(f"{what}: {e}")
    return pb


def sbom(path, manifest_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = open(path).read()
    doc = json.loads(text)
    if doc.get("specVersion") != "1.6":
        fail(f"{path}: specVersion {doc.get('specVersion')!r}, expected 1.6")
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if errors is not None:
        fail(f"{path} does not validate against CycloneDX 1.6 (strict): {errors}")
    manifest = json.load(open(manifest_path))
    have = {(c["name"], c.get("version")) for c in doc.get("components", [])}
    for tool in manifest["tools"]:
        if (tool["name"], tool["version"]) not in have:
            fail(f"{path}: manifest tool {tool['name']} {tool['version']} is not a component")
    if not any(c["name"] == "launcher" for c in doc["components"]):
        fail(f"{path}: no launcher component")
    print(f"sbom ok: {path}: CycloneDX 1.6 strict schema, {len(doc['components'])} components, "
          f"all {len(manifest['tools'])} manifest tools")


def provenance(path, sha):
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2

    doc = json.load(open(path))
    pb = statement(doc, path)
    if pb.predicate_type != "https://slsa.dev/provenance/v1":
        fail(f"{path}: predicateType {pb.predicate_type}")
    prov = strict(provenance_pb2.Provenance(), doc["predicate"], f"{path}'s predicate")
    if not prov.build_definition.build_type or not prov.run_details.builder.id:
        fail(f"{path}: no buildType or builder.id")
    if not prov.build_definition.resolved_dependencies:
        fail(f"{path}: no resolvedDependencies")
    digests = [s.digest.get("sha256") for s in pb.subject]
    if sha not in digests:
        fail(f"{path}: subject {digests}, not {sha}")
    print(f"provenance ok: {path}: Statement v1 + SLSA Provenance v1 (strict), "
          f"{len(prov.build_definition.resolved_dependencies)} resolved dependencies, subject {sha}")


def dsse(path, pub_b64):
    from securesystemslib.dsse import Envelope
    from securesystemslib.signer import SSlibKey
    from in_toto_attestation.predicates.test_result.v0 import test_result_pb2

    raw = base64.b64decode(pub_b64)
    if len(raw) != 42 or raw[:2] != b"Ed":
        fail("the public key is not a minisign Ed25519 key")
    # minisign's key id: the 8 bytes as a little-endian u64, upper-case hex.
    keyid = "%X" % int.from_bytes(raw[2:10], "little")
    key = SSlibKey(keyid, "ed25519", "ed25519", {"public": raw[10:].hex()})
    n = 0
    for i, line in enumerate(open(path), 1):
        if not line.strip():
            continue
        env = Envelope.from_dict(json.loads(line))
        try:
            env.verify([key], 1)
        except Exception as e:  # securesystemslib's VerificationError and friends
            fail(f"{path}:{i}: securesystemslib does not verify it: {e}")
        if env.payload_type != "application/vnd.in-toto+json":
            fail(f"{path}:{i}: payloadType {env.payload_type}")
        doc = json.loads(env.payload)
        pb = statement(doc, f"{path}:{i}")
        if pb.predicate_type == "https://in-toto.io/attestation/test-result/v0.1":
            strict(test_result_pb2.TestResult(), doc["predicate"], f"{path}:{i}'s test result")
        n += 1
    if n == 0:
        fail(f"{path}: no envelope")
    print(f"dsse ok: {path}: {n} envelope(s) verified by securesystemslib with key {keyid}")


def main(argv):
    if len(argv) != 3 or argv[0] not in ("sbom", "provenance", "dsse"):
        print(__doc__)
        sys.exit(2)
    {"sbom": sbom, "provenance": provenance, "dsse": dsse}[argv[0]](argv[1], argv[2])


if __name__ == "__main__":
    main(sys.argv[1:])
