#!/usr/bin/env python3
"""A compromised Archy node, as the operator's `ssh` sees it (test infrastructure).

Installed as `ssh` first on the PATH of `launcher fleet`, it answers every command the fleet
sends as a node would, from `scenario.json` beside this file, so that each answer can be made
hostile in one way: bytes before a status's JSON, strings with terminal escapes, a run dir
whose tar holds symlinks, devices or a file larger than any cap, a time of 2^62, an
upload that says "moved" but never holds the file. `scenario.json` maps each node (the host
part of the ssh destination) to its scenario; a node it does not name behaves. See README.md
beside this file.

It speaks ssh's command line as the launcher uses it (fleet/ssh.rs, fleet/ssh_command.rs): a
master (`-o ControlMaster=yes -N`, `ControlPath=`), `-O check`, `-O exit`, `-O forward` and
`-O cancel` (the round trip between sessions), and sessions (`-- DEST COMMAND`). Each session's
command is appended to `state/NODE/commands.log` beside this file.
"""

import io
import json
import os
import re
import signal
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NODE = None  # the host part of the destination, set by main()
STATE = None


def scenario():
    with open(os.path.join(HERE, "scenario.json")) as f:
        return json.load(f).get(NODE, {})


def state_file(name, default=""):
    try:
        with open(os.path.join(STATE, name)) as f:
            return f.read()
    except FileNotFoundError:
        return default


def set_state(name, text):
    with open(os.path.join(STATE, name), "w") as f:
        f.write(text)


def parse(argv):
    """ssh's arguments as fleet/ssh.rs gives them: options, then `--`, DEST, COMMAND."""
    opts = {"control": None, "master": False, "op": None, "command": None, "dest": ""}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1 :]
            if rest:
                opts["dest"] = rest[0]
            if len(rest) > 1:
                opts["command"] = rest[1]
            break
        if a in ("-o", "-F", "-O"):
            value = argv[i + 1]
            if a == "-o" and value.startswith("ControlPath="):
                opts["control"] = value[len("ControlPath=") :]
            if a == "-o" and value == "ControlMaster=yes":
                opts["master"] = True
            if a == "-O":
                opts["op"] = value
            i += 2
            continue
        if a == "-M":
            opts["master"] = True
        i += 1
    return opts


def out(data):
    sys.stdout.buffer.write(data)


def stream(fill, count):
    """`count` bytes of `fill`, written a MiB at a time (never held whole)."""
    chunk = fill * (1 << 20)
    while count > 0:
        n = min(count, len(chunk))
        out(chunk[:n])
        count -= n


def record(s, run_id):
    """A run.json as `launcher status RUN --json` prints it (launcher/src/runs.rs)."""
    now = int(time.time())
    rec = {
        "run_id": run_id,
        "state": s.get("state", "passed"),
        "bundle": {
            "file": "/var/tmp/archy-gate-fleet/archy-gate",
            "name": "archy-gate",
            "version": "0.1.0",
            "sha256": "0" * 64,
            "payload_sha256": "0" * 64,
            "verified": "payload+pin",
            "dir": "/var/tmp/archy-gate/b/x",
            "entry": "lifecycle/run-gate.sh",
        },
        "workdir": "/var/tmp/archy-gate",
        "started": "2026-01-01T00:00:00Z",
        "started_unix": now - 5,
        "ended": "2026-01-01T00:00:05Z",
        "duration_secs": 5,
        "exit_code": 0,
        "iterations": s.get("iterations", 2),
        "allow_destructive": False,
        "host": "127.0.0.1",
        "scheme": "https",
        "gate_args": [],
        "password_source": "stdin",
        "detached": True,
        "supervisor_pid": 10,
        "gate_pid": 11,
        "host_facts": {
            "hostname": "node",
            "os": "Debian",
            "kernel": "6.1",
            "arch": "x86_64",
            "cpus": 2,
            "load": [0.1, 0.1, 0.1],
        },
        "tests": {
            "passed": 4,
            "failed": 0,
            "skipped": 0,
            "failing": [],
            "sources": ["iteration-1.tap", "iteration-2.tap"],
        },
        "preflight": None,
        "forced": False,
        "message": None,
        "iteration_times": [
            {"n": 1, "started_unix": now - 5.0, "ended_unix": now - 2.5},
            {"n": 2, "started_unix": now - 2.5, "ended_unix": now - 0.0},
        ],
    }
    for key, value in s.get("record", {}).items():
        if isinstance(value, dict) and isinstance(rec.get(key), dict):
            rec[key].update(value)
        else:
            rec[key] = value
    return rec


PREFLIGHT = {
    "verdict": "pass",
    "checks": [
        {"id": "rpc-health", "verdict": "pass", "reason": "the RPC answers", "evidence": []}
    ]
}

TAP_OK = "1..2\nok 1 up\nok 2 down\n"


def run_dir_tar(s):
    """The run dir as `tar cf - .` on the node would stream it, or as scenario says."""
    entries = s.get("tar") or [
        {"name": "./", "type": "dir"},
        {"name": "./run.json", "data": json.dumps(record(s, "x"))},
        {"name": "./gate.log", "data": "# iteration 1 of 2\n" + TAP_OK},
        {"name": "./iteration-1.tap", "data": TAP_OK},
        {"name": "./iteration-2.tap", "data": TAP_OK},
    ]
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.mtime = e.get("mtime", int(time.time()))
            info.mode = 0o644
            kind = e.get("type", "file")
            body = None
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = e["target"]
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = e["target"]
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "chardev":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = 1, 5
            elif "zeros" in e:
                info.size = e["zeros"]
                body = Zeros(e["zeros"])
            else:
                data = e["data"].encode()
                info.size = len(data)
                body = io.BytesIO(data)
            tar.addfile(info, body)


class Zeros(io.RawIOBase):
    """`n` zero bytes, made as they are read."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def session(command):
    s = scenario()
    with open(os.path.join(STATE, "commands.log"), "a") as log:
        log.write(command.replace("\n", "\\n") + "\n")
    junk = s.get("stderr_bytes", 0)
    if junk:
        chunk = b"E" * (1 << 20)
        while junk > 0:
            sys.stderr.buffer.write(chunk[: min(junk, len(chunk))])
            junk -= len(chunk)
    if "archy-gate: remote dir ok" in command:
        out(b"archy-gate: remote dir ok\n")
        return 0
    if command.startswith("if [ -f "):
        moved = state_file("moved")
        out(("%s\n%s\n" % (moved or "none", state_file("part", "0") or "0")).encode())
        return 0
    if "cat >> " in command:
        got = len(sys.stdin.buffer.read())
        offset = int(re.search(r"\[ (\d+) -gt 0 \]", command).group(1))
        set_state("part", str(offset + got))
        return 0
    if "mv -f " in command:
        if s.get("upload") != "lies":
            set_state("moved", re.search(r"= ([0-9a-f]{64}) \]", command).group(1))
        return 0
    if command.startswith("rm -f "):
        set_state("part", "0")
        return 0
    if " run --detach" in command:
        # The run's answer carries its preflight (launcher/src/commands/run.rs).
        sys.stdin.buffer.read()
        run_id = re.search(r"--run-id (\S+)", command).group(1)
        set_state("run_id", run_id)
        stream(b" ", s.get("preflight_prefix_bytes", 0))
        out(json.dumps({"run_id": run_id, "preflight": PREFLIGHT}).encode() + b"\n")
        return 0
    status = re.match(r"\S+ (status|wait) (\S+) --json", command)
    if status:
        # `wait RUN --json …` answers as `status RUN --json` once the run ended.
        run_id = status.group(2)
        if run_id != state_file("run_id"):
            sys.stderr.write("no run %s\n" % run_id)
            return 2
        stream(b" ", s.get("status_prefix_bytes", 0))
        out(json.dumps(record(s, run_id)).encode() + b"\n")
        return 0
    if "tar cf - ." in command:
        run_dir_tar(s)
        return 0
    sys.stderr.write("sh: unexpected command: %s\n" % command[:80])
    return 127


def main():
    global NODE, STATE
    opts = parse(sys.argv[1:])
    NODE = opts["dest"].rsplit("@", 1)[-1]
    STATE = os.path.join(HERE, "state", NODE)
    os.makedirs(STATE, exist_ok=True)
    control = opts["control"]
    if opts["master"]:
        open(control, "w").close()
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            signal.pause()
    if opts["op"] == "check":
        return 0 if control and os.path.exists(control) else 255
    if opts["op"] == "exit":
        if control and os.path.exists(control):
            os.unlink(control)
        return 0
    if opts["op"] == "forward":
        print(40000)  # the port sshd would have picked
        return 0
    if opts["op"] == "cancel":
        return 0
    if opts["command"] is None:
        sys.stderr.write("hostile_ssh.py: no command\n")
        return 255
    return session(opts["command"])


if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        code = 141
    os._exit(code)
