#!/usr/bin/env python3
"""A stand-in Archy node, for archy-gate's tests only (see README.md beside this file).

It fakes the node's JSON-RPC backend (https://127.0.0.1/rpc/v1) and renders, on every change,
the files the podman, systemctl and bitcoin-cli shims (shims/) print. Python 3 stdlib only.

    archy_node.py --state DIR [--port N] [--bind ADDR] [--san IP]
        Serve DIR/scenario.json over HTTPS on ADDR:N (default 127.0.0.1; N 0: any free port);
        print "READY <port>" once listening; exit 0 on SIGTERM or SIGINT. --san IP: the
        self-signed certificate also names IP (the node's own address).
    archy_node.py --write-scenario NAME --state DIR [--password P]
        Write DIR/scenario.json, DIR/password and DIR/render/, then exit.
    archy_node.py --list-scenarios

It also speaks a minimal peer protocol with other stand-ins (node.identity, contact.*, file.*),
server to server on /peer/v1 of the same port, so multi-node scenarios can prove that two nodes
talked (README.md, "The peer protocol").
"""

import argparse
import copy
import hashlib
import http.client
import http.cookies
import http.server
import json
import os
import random
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time

DEFAULT_PASSWORD = "standin-password"
SERVER_VERSION = "0.0.0-standin"

# --------------------------------------------------------------------------------------------
# Scenarios


def _package(pid, version, containers):
    return {
        "id": pid,
        "version": version,
        "state": "running",
        "health": "healthy",
        "containers": list(containers),
        "units": [c + ".service" for c in containers],
    }


def _container(name, image, package):
    return {"name": name, "image": image, "package": package, "state": "running", "health": "healthy"}


def _synced_bitcoin():
    return {
        "chain": "main",
        "blocks": 850000,
        "headers": 850000,
        "bestblockhash": "00000000000000000002a7c4c1e48d76c5a37902165a270156b7a8d72728a054",
        "difficulty": 79351228131136.67,
        "time": 1718000000,
        "mediantime": 1717998000,
        "verificationprogress": 0.9999997,
        "initialblockdownload": False,
        "chainwork": "00000000000000000000000000000000000000007e5dbf54c7f6b58a6853cd8e",
        "size_on_disk": 650000000000,
        "pruned": False,
        "warnings": "",
    }


def _healthy():
    return {
        "server": {"version": SERVER_VERSION},
        "packages": [
            _package("bitcoind", "27.1.0", ["bitcoind"]),
            _package("lnd", "0.18.0", ["lnd", "lnd-tor"]),
            _package("mempool", "3.0.0", ["mempool-api", "mempool-web"]),
        ],
        "containers": [
            _container("bitcoind", "localhost/archy-standin/bitcoind:v27.1", "bitcoind"),
            _container("lnd", "localhost/archy-standin/lnd:v0.18.0-beta", "lnd"),
            _container("lnd-tor", "localhost/archy-standin/tor:0.4.8", "lnd"),
            _container("mempool-api", "localhost/archy-standin/backend:v3.0.0", "mempool"),
            _container("mempool-web", "localhost/archy-standin/frontend:v3.0.0", "mempool"),
        ],
        "units": {},  # filled in by normalise(): every package's units, active when running
        "bitcoin": _synced_bitcoin(),
    }


def _package_down():
    s = _healthy()
    _set_package_state(s, "lnd", running=False)
    return s


def _ibd():
    s = _healthy()
    s["bitcoin"].update(
        {"initialblockdownload": True, "blocks": 527000, "headers": 850000, "verificationprogress": 0.62}
    )
    return s


def _pruned():
    s = _healthy()
    s["bitcoin"].update({"pruned": True, "pruneheight": 790000, "automatic_pruning": True,
                         "prune_target_size": 576716800})
    return s


def _no_bitcoin():
    s = _healthy()
    s["packages"] = [p for p in s["packages"] if p["id"] != "bitcoind"]
    s["containers"] = [c for c in s["containers"] if c["package"] != "bitcoind"]
    s["bitcoin"] = None
    return s


def _adopted_container():
    s = _healthy()
    s["containers"].append(_container("electrs", "localhost/archy-standin/electrs:v0.10.5", None))
    return s


def _unit_activating():
    s = _healthy()
    mempool = _find_package(s, "mempool")
    mempool["health"] = "starting"
    s["units"] = {"mempool-web.service": "activating"}
    web = next(c for c in s["containers"] if c["name"] == "mempool-web")
    web["health"] = "starting"
    return s


SCENARIOS = {
    "healthy": _healthy,
    "package-down": _package_down,
    "ibd": _ibd,
    "pruned": _pruned,
    "no-bitcoin": _no_bitcoin,
    "adopted-container": _adopted_container,
    "unit-activating": _unit_activating,
}


def make_scenario(name):
    s = SCENARIOS[name]()
    s["scenario"] = name
    return normalise(s)


def normalise(s):
    """Fill in defaults: every package unit has a state (active when the package runs)."""
    s.setdefault("server", {"version": SERVER_VERSION})
    s.setdefault("containers", [])
    s.setdefault("bitcoin", None)
    units = s.setdefault("units", {})
    for p in s.setdefault("packages", []):
        for u in p.get("units", []):
            units.setdefault(u, "active" if p.get("state") == "running" else "inactive")
    return s


def _find_package(s, pid):
    return next((p for p in s["packages"] if p["id"] == pid), None)


def _set_package_state(s, pid, running):
    p = _find_package(s, pid)
    p["state"] = "running" if running else "stopped"
    p["health"] = "healthy" if running else "unhealthy"
    for c in s["containers"]:
        if c.get("package") == pid or c["name"] in p["containers"]:
            c["state"] = "running" if running else "exited"
            c["health"] = "healthy" if running else None
    for u in p.get("units", []):
        s.setdefault("units", {})[u] = "active" if running else "inactive"


# --------------------------------------------------------------------------------------------
# Rendering: the files the shims cat (they run where there is no python and no jq)

CREATED = 1717990000  # a fixed time: renders depend only on the scenario


def _podman_entry(c):
    running = c["state"] == "running"
    health = c.get("health")
    status = "Up 2 hours" if running else "Exited (0) 5 minutes ago"
    if running and health:
        status += " (%s)" % health
    labels = {"io.archy.standin": "true"}
    if c.get("package"):
        labels["io.archy.package"] = c["package"]
    if c.get("package") or c.get("unit"):
        labels["PODMAN_SYSTEMD_UNIT"] = c.get("unit") or c["name"] + ".service"
    return {
        "AutoRemove": False,
        "Command": None,
        "Created": CREATED,
        "CreatedAt": "2 hours ago",
        "Exited": not running,
        "ExitedAt": -62135596800 if running else CREATED + 7000,
        "ExitCode": 0,
        "Id": (c["name"].encode().hex() + "0" * 64)[:64],
        "Image": c["image"],
        "IsInfra": False,
        "Labels": labels,
        "Mounts": [],
        "Names": [c["name"]],
        "Networks": ["archy"],
        "Pid": 0,
        "Pod": "",
        "PodName": "",
        "Ports": None,
        "StartedAt": CREATED,
        "State": c["state"],
        "Status": status,
    }


def render(state_dir, s):
    out = os.path.join(state_dir, "render")
    files = {}
    everything = [_podman_entry(c) for c in s["containers"]]
    up = [e for e in everything if e["State"] == "running"]
    files["podman/ps-a.json"] = json.dumps(everything, indent=4) + "\n"
    files["podman/ps.json"] = json.dumps(up, indent=4) + "\n"
    files["podman/ps-a.names"] = "".join(e["Names"][0] + "\n" for e in everything)
    files["podman/ps.names"] = "".join(e["Names"][0] + "\n" for e in up)
    units = s.get("units", {})
    for unit, st in units.items():
        files["systemctl/is-active/" + unit] = st + "\n"
    sub = {"active": "running", "activating": "start", "inactive": "dead", "failed": "failed"}
    lines = {}
    for unit in sorted(units):
        st = units[unit]
        line = "%s loaded %s %s %s\n" % (unit, st, sub.get(st, st), unit[: -len(".service")])
        lines.setdefault(st, []).append(line)
        lines.setdefault("all", []).append(line)
    for st in ["all", "active", "activating", "inactive", "failed"]:
        files["systemctl/list-units." + st] = "".join(lines.get(st, []))
    if s.get("bitcoin") is not None:
        files["bitcoin/getblockchaininfo"] = json.dumps(s["bitcoin"], indent=2) + "\n"
        files["bitcoin/getblockcount"] = "%d\n" % s["bitcoin"]["blocks"]
    # A new generation dir, then the render symlink swapped onto it in one rename: a shim
    # reading at the same moment sees the old files or the new, never a mix or nothing.
    gens = os.path.join(state_dir, "render.d")
    os.makedirs(gens, exist_ok=True)
    numbers = sorted(int(n) for n in os.listdir(gens) if n.isdigit())
    gen = (numbers[-1] + 1) if numbers else 1
    tmp = os.path.join(gens, "%d" % gen)
    for rel, text in files.items():
        path = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    if os.path.isdir(out) and not os.path.islink(out):
        _rmtree(out)
    link = out + ".tmp"
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink("render.d/%d" % gen, link)  # relative: valid inside the node's chroot too
    os.replace(link, out)
    for n in numbers[:-1]:  # keep the previous generation for readers still in it
        _rmtree(os.path.join(gens, "%d" % n))


def _rmtree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                _rmtree(entry.path)
            else:
                os.unlink(entry.path)
        os.rmdir(path)


def write_atomic(path, text, mode=0o644):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_scenario(state_dir, s):
    write_atomic(os.path.join(state_dir, "scenario.json"), json.dumps(s, indent=2) + "\n")
    render(state_dir, s)


# --------------------------------------------------------------------------------------------
# The peer protocol: contacts (DID federation) and peer file fetch, server to server over
# HTTPS to the peer's own address, path /peer/v1 (README.md, "The peer protocol").

PEER_PATH = "/peer/v1"
PEER_FILE = "peer.json"  # identity, contacts, shares, served log and undelivered messages
PEER_LOG = "peer.log"  # each peer message sent or received: its type and address, no content
DELIVERY_DELAY = (1.0, 3.0)  # seconds before a contact request or acceptance is delivered
RETRY_EVERY = 2.0  # seconds between attempts to deliver to a peer that did not answer
GIVE_UP_AFTER = 3600.0  # an undelivered message is dropped after this long
PEER_TIMEOUT = 5.0  # seconds for one server-to-server call
MAX_PEER_BODY = 1 << 20
PEER_UNREACHABLE = -32010  # JSON-RPC error: the peer did not answer
PEER_REFUSED = -32011  # JSON-RPC error: the peer answered with a refusal (an unknown hash)
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$")
_DID = re.compile(r"^did:archy:[0-9a-f]{16}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")


def _host_param(params):
    host = params.get("host")
    if not isinstance(host, str) or not _HOST.match(host) or not 0 < int(host.rsplit(":", 1)[1]) < 65536:
        raise RpcError(-32602, "host must be ADDR:PORT, not %r" % (host,))
    return host


def _string_param(params, key, pattern=None):
    value = params.get(key)
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise RpcError(-32602, "%s: %r is not valid" % (key, value))
    return value


def _own_host(server_address, client_ip=None):
    """This server's address as a peer dials it: the bound address, or (bound to every
    address) the one a peer's connection came to."""
    ip, port = server_address[0], server_address[1]
    if ip in ("0.0.0.0", "::", ""):
        ip = client_ip
    if ip is None:
        return None
    return ("[%s]:%d" if ":" in ip else "%s:%d") % (ip, port)


def _source_ip(server_address):
    """Outgoing calls leave from the address this server is bound to (so a peer sees this
    node's own address even when several stand-ins share a host), unless bound to all."""
    ip = server_address[0]
    return None if ip in ("0.0.0.0", "::", "") else ip


def peer_call(host, msg, source_ip=None):
    """POSTs one message to https://HOST/peer/v1 and returns (HTTP status, JSON body).
    TLS between stand-ins is not verified (README.md: a property of the stand-in, not of
    Archy). Raises OSError when the peer does not answer."""
    name, port = host.rsplit(":", 1)
    name = name.strip("[]")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(
        name, int(port), timeout=PEER_TIMEOUT, context=ctx,
        source_address=(source_ip, 0) if source_ip else None,
    )
    try:
        data = json.dumps(msg).encode()
        conn.request("POST", PEER_PATH, body=data, headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        raw = reply.read(MAX_PEER_BODY + 1)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": "not JSON (HTTP %d)" % reply.status}
        return reply.status, body
    except (OSError, http.client.HTTPException) as e:
        raise OSError(str(e) or type(e).__name__) from e
    finally:
        conn.close()


class Peer:
    """One node's side of the peer protocol: its DID, contacts, shared files, served log, and
    an outbox of messages a thread delivers after a delay. Everything is in DIR/peer.json,
    rewritten on every change, so a restart loses nothing (an undelivered message included)."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self.lock = threading.Lock()
        path = os.path.join(state_dir, PEER_FILE)
        if os.path.exists(path):
            with open(path) as f:
                self.state = json.load(f)
        else:
            self.state = {"did": "did:archy:" + secrets.token_hex(8)}
        for key in ("contacts", "incoming", "outgoing", "served", "outbox"):
            self.state.setdefault(key, [])
        self.state.setdefault("shares", {})
        with self.lock:
            self._save()
        threading.Thread(target=self._deliver_forever, name="peer-outbox", daemon=True).start()

    @property
    def did(self):
        return self.state["did"]

    def _save(self):  # under self.lock
        write_atomic(os.path.join(self.dir, PEER_FILE), json.dumps(self.state, indent=2) + "\n")

    def _log(self, line):
        with open(os.path.join(self.dir, PEER_LOG), "a") as f:
            f.write(line + "\n")

    def _drop(self, key, did):  # under self.lock
        self.state[key] = [e for e in self.state[key] if e["did"] != did]

    def _find(self, key, did):  # under self.lock
        return next((e for e in self.state[key] if e["did"] == did), None)

    def _queue(self, to_host, to_did, msg, source_ip):  # under self.lock
        due = time.time() + random.uniform(*DELIVERY_DELAY)
        self.state["outbox"].append({"to_host": to_host, "to_did": to_did, "msg": msg,
                                     "source_ip": source_ip, "due": due, "queued": time.time()})

    # ---- JSON-RPC methods (the session was checked): (server_address, params) -> result

    def rpc_identity(self, _server_address, _params):
        return {"did": self.did}

    def rpc_contact_request(self, server_address, params):
        host = _host_param(params)
        # Who is there, asked now, so an unreachable peer is this call's error; the request
        # itself goes later, from the outbox.
        status, body = self._call(host, {"type": "hello"}, _source_ip(server_address))
        did = body.get("did") if status == 200 else None
        if not isinstance(did, str) or not _DID.match(did):
            raise RpcError(PEER_REFUSED, "peer %s did not say who it is: %s" % (host, body))
        if did == self.did:
            raise RpcError(-32602, "%s is this node (%s)" % (host, did))
        with self.lock:
            if self._find("contacts", did) is None:
                self._drop("outgoing", did)
                self.state["outgoing"].append({"did": did, "host": host})
                own = _own_host(server_address)
                self._queue(host, did, {"type": "contact.request", "did": self.did, "host": own,
                                        "port": server_address[1]}, _source_ip(server_address))
                self._save()
        return None

    def rpc_contact_list(self, _server_address, _params):
        with self.lock:
            return {k: [{"did": e["did"], "host": e["host"]} for e in self.state[k]]
                    for k in ("contacts", "incoming", "outgoing")}

    def rpc_contact_accept(self, server_address, params):
        did = _string_param(params, "did", _DID)
        with self.lock:
            entry = self._find("incoming", did)
            if entry is None:
                raise RpcError(-32602, "no pending contact request from %s" % did)
            self._drop("incoming", did)
            self._drop("contacts", did)
            self.state["contacts"].append(entry)
            self._queue(entry["host"], did, {"type": "contact.accept", "did": self.did,
                                             "host": _own_host(server_address),
                                             "port": server_address[1]},
                        _source_ip(server_address))
            self._save()
        return None

    def rpc_contact_remove(self, _server_address, params):
        did = _string_param(params, "did", _DID)
        with self.lock:
            for key in ("contacts", "incoming", "outgoing"):
                self._drop(key, did)
            self.state["outbox"] = [m for m in self.state["outbox"] if m["to_did"] != did]
            self._save()
        return None

    def rpc_file_share(self, _server_address, params):
        name = _string_param(params, "name")
        content = _string_param(params, "content")
        digest = hashlib.sha256(content.encode()).hexdigest()
        with self.lock:
            self.state["shares"][digest] = {"name": name, "content": content}
            self._save()
        return {"hash": digest}

    def rpc_file_fetch(self, server_address, params):
        host = _host_param(params)
        digest = _string_param(params, "hash", _HASH)
        status, body = self._call(host, {"type": "file.get", "hash": digest, "did": self.did},
                                  _source_ip(server_address))
        if status != 200:
            raise RpcError(PEER_REFUSED, "peer %s: %s" % (host, body.get("error", body)))
        name, content = body.get("name"), body.get("content")
        if not isinstance(name, str) or not isinstance(content, str):
            raise RpcError(PEER_REFUSED, "peer %s sent no file: %s" % (host, body))
        got = hashlib.sha256(content.encode()).hexdigest()
        if got != digest:
            raise RpcError(PEER_REFUSED, "peer %s sent a file whose sha256 is %s, not %s"
                           % (host, got, digest))
        return {"name": name, "content": content, "hash": digest}

    def rpc_file_served(self, _server_address, _params):
        with self.lock:
            return {"fetches": [dict(f) for f in self.state["served"]]}

    def rpc_file_unshare(self, _server_address, params):
        digest = _string_param(params, "hash", _HASH)
        with self.lock:
            self.state["shares"].pop(digest, None)
            self._save()
        return None

    def _call(self, host, msg, source_ip):
        try:
            status, body = peer_call(host, msg, source_ip)
        except OSError as e:
            self._log("%s to %s: unreachable: %s" % (msg["type"], host, e))
            raise RpcError(PEER_UNREACHABLE, "peer %s unreachable: %s" % (host, e))
        self._log("%s to %s: HTTP %d" % (msg["type"], host, status))
        return status, body if isinstance(body, dict) else {"error": body}

    # ---- server to server

    def receive(self, msg, from_addr):
        """A message on /peer/v1 from the TCP address from_addr: (HTTP status, body)."""
        kind = msg["type"]
        self._log("%s from %s" % (kind, from_addr))
        if kind == "hello":
            return 200, {"did": self.did}
        if kind in ("contact.request", "contact.accept"):
            did, port = msg.get("did"), msg.get("port")
            if not isinstance(did, str) or not _DID.match(did) or not isinstance(port, int):
                return 400, {"error": "bad %s" % kind}
            host = msg.get("host")
            if not isinstance(host, str) or not _HOST.match(host):
                host = _own_host(("", port), from_addr)
            with self.lock:
                if kind == "contact.request":
                    if self._find("contacts", did) is None:
                        self._drop("incoming", did)
                        self.state["incoming"].append({"did": did, "host": host})
                elif self._find("outgoing", did) is not None:
                    # Only an acceptance of a request this node made (and still wants) counts.
                    entry = self._find("outgoing", did)
                    self._drop("outgoing", did)
                    self._drop("contacts", did)
                    self.state["contacts"].append(entry)
                self._save()
            return 200, {"ok": True}
        if kind == "file.get":
            digest, did = msg.get("hash"), msg.get("did")
            with self.lock:
                shared = self.state["shares"].get(digest) if isinstance(digest, str) else None
                if shared is None:
                    return 404, {"error": "unknown hash %s" % digest}
                self.state["served"].append({"hash": digest, "by_did": did, "from_addr": from_addr})
                self._save()
                return 200, {"name": shared["name"], "content": shared["content"], "hash": digest}
        return 400, {"error": "unknown message type %s" % kind}

    def _deliver_forever(self):
        while True:
            time.sleep(0.2)
            with self.lock:
                now = time.time()
                due = [m for m in self.state["outbox"] if m["due"] <= now]
            for m in due:
                try:
                    status, _body = peer_call(m["to_host"], m["msg"], m.get("source_ip"))
                    ok, why = status == 200, "HTTP %d" % status
                except OSError as e:
                    ok, why = False, "unreachable: %s" % e
                self._log("%s to %s: %s" % (m["msg"]["type"], m["to_host"], why))
                with self.lock:
                    if m not in self.state["outbox"]:
                        continue  # removed meanwhile (contact.remove)
                    if ok or time.time() - m["queued"] > GIVE_UP_AFTER:
                        self.state["outbox"].remove(m)
                    else:
                        m["due"] = time.time() + RETRY_EVERY
                    self._save()


PEER_METHODS = {
    "node.identity": Peer.rpc_identity,
    "contact.request": Peer.rpc_contact_request,
    "contact.list": Peer.rpc_contact_list,
    "contact.accept": Peer.rpc_contact_accept,
    "contact.remove": Peer.rpc_contact_remove,
    "file.share": Peer.rpc_file_share,
    "file.fetch": Peer.rpc_file_fetch,
    "file.served": Peer.rpc_file_served,
    "file.unshare": Peer.rpc_file_unshare,
}


# --------------------------------------------------------------------------------------------
# The server


class Node:
    """The scenario, its password and the sessions; reloads scenario.json when it is replaced."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self.lock = threading.Lock()
        self.sessions = set()
        self.seen = None
        self.load()
        self.peer = Peer(state_dir)

    def _stat(self):
        st = os.stat(os.path.join(self.dir, "scenario.json"))
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load(self):
        with open(os.path.join(self.dir, "scenario.json")) as f:
            self.state = normalise(json.load(f))
        with open(os.path.join(self.dir, "password")) as f:
            self.password = f.read().rstrip("\n")
        self.seen = self._stat()
        render(self.dir, self.state)

    def refresh(self):
        if self._stat() != self.seen:
            self.load()

    def save(self):
        write_scenario(self.dir, self.state)
        self.seen = self._stat()

    def log(self, method):
        with open(os.path.join(self.dir, "requests.log"), "a") as f:
            f.write(method + "\n")


class RpcError(Exception):
    def __init__(self, code, message, http_status=200):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "archy-standin/" + SERVER_VERSION

    def log_message(self, fmt, *args):  # to stderr, which the tests send to DIR/server.log
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _send(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.split("?")[0] == "/rpc/v1":
            self._send(405, {"error": "use POST"}, [("Allow", "POST")])
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path.split("?")[0] == PEER_PATH:
            self.peer_message()
            return
        if self.path.split("?")[0] != "/rpc/v1":
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(404, {"error": "not found"})
            return
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        node = self.server.node
        rid = None
        try:
            try:
                req = json.loads(raw)
            except ValueError:
                node.log("(parse error)")
                raise RpcError(-32700, "parse error")
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                node.log("(invalid request)")
                raise RpcError(-32600, "invalid request")
            rid = req.get("id")
            method = req["method"]
            params = req.get("params")
            node.log(method)
            if method in PEER_METHODS:  # outside node.lock: they may wait on another node
                self._send(200, {"jsonrpc": "2.0", "id": rid, "result": self.call_peer(node, method, params)})
                return
            with node.lock:
                node.refresh()
                result, headers = self.call(node, method, params)
            self._send(200, {"jsonrpc": "2.0", "id": rid, "result": result}, headers)
        except RpcError as e:
            body = {"jsonrpc": "2.0", "id": rid, "error": {"code": e.code, "message": e.message}}
            self._send(e.http_status, body)

    def session_ok(self, node):
        cookie = http.cookies.SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie") or "")
        except http.cookies.CookieError:
            return False
        return "session" in cookie and cookie["session"].value in node.sessions

    def call_peer(self, node, method, params):
        """One of the peer protocol's JSON-RPC methods (PEER_METHODS): the session first."""
        if not self.session_ok(node):
            raise RpcError(34, "unauthorized", http_status=401)
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise RpcError(-32602, "params must be an object")
        return PEER_METHODS[method](node.peer, self.server.server_address, params)

    def peer_message(self):
        """POST /peer/v1: a message from another stand-in (server to server, no session)."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PEER_BODY:
            self._send(413, {"error": "too large"})
            self.close_connection = True
            return
        raw = self.rfile.read(length)
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self._send(400, {"error": "not a peer message"})
            return
        status, body = self.server.node.peer.receive(msg, self.client_address[0])
        self._send(status, body)

    def call(self, node, method, params):
        if method == "health":
            return {"status": "ok"}, []
        if method == "auth.login":
            password = params.get("password") if isinstance(params, dict) else None
            if not isinstance(password, str) or not secrets.compare_digest(
                password.encode(), node.password.encode()
            ):
                raise RpcError(34, "invalid password")
            token = secrets.token_hex(24)
            node.sessions.add(token)
            return None, [("Set-Cookie", "session=%s; Path=/; HttpOnly; Secure" % token)]
        if not self.session_ok(node):
            raise RpcError(34, "unauthorized", http_status=401)
        if method == "auth.logout":
            return None, []
        if method == "server.get-state":
            packages = [
                {k: p[k] for k in ("id", "version", "state", "health", "containers", "units")}
                for p in node.state["packages"]
            ]
            return {"server": copy.deepcopy(node.state["server"]), "packages": packages}, []
        if method in ("package.stop", "package.start"):
            pid = params.get("id") if isinstance(params, dict) else None
            if not isinstance(pid, str) or _find_package(node.state, pid) is None:
                raise RpcError(-32602, "unknown package: %s" % pid)
            _set_package_state(node.state, pid, running=method == "package.start")
            node.save()
            return None, []
        raise RpcError(-32601, "method not found: %s" % method)


def ensure_cert(state_dir, san=None):
    tls = os.path.join(state_dir, "tls")
    cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
    if not (os.path.exists(cert) and os.path.exists(key)):
        os.makedirs(tls, exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "3650", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost" + (",IP:" + san if san else ""),
             "-keyout", key + ".tmp", "-out", cert + ".tmp"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        os.replace(key + ".tmp", key)
        os.replace(cert + ".tmp", cert)
    return cert, key


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(state_dir, port, bind="127.0.0.1", san=None):
    node = Node(state_dir)
    cert, key = ensure_cert(state_dir, san)
    server = Server((bind, port), Handler)
    server.node = node
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)

    def stop(_signum, _frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description="A stand-in Archy node for archy-gate's tests.")
    ap.add_argument("--state", help="the state dir (scenario.json, password, render/, tls/)")
    ap.add_argument("--port", type=int, default=0, help="port to serve on (0: any free port)")
    ap.add_argument("--bind", default="127.0.0.1", help="address to serve on (0.0.0.0: all of the node's)")
    ap.add_argument("--san", default=None, help="an IP the certificate names besides 127.0.0.1")
    ap.add_argument("--write-scenario", metavar="NAME", help="write scenario NAME into --state, exit")
    ap.add_argument("--password", default=None, help="with --write-scenario (default: %s)" % DEFAULT_PASSWORD)
    ap.add_argument("--list-scenarios", action="store_true")
    args = ap.parse_args(argv)
    if args.list_scenarios:
        print("\n".join(SCENARIOS))
        return 0
    if not args.state:
        ap.error("--state DIR is required")
    if args.write_scenario:
        if args.write_scenario not in SCENARIOS:
            ap.error("unknown scenario %r (known: %s)" % (args.write_scenario, ", ".join(SCENARIOS)))
        os.makedirs(args.state, exist_ok=True)
        write_scenario(args.state, make_scenario(args.write_scenario))
        pw_path = os.path.join(args.state, "password")
        if args.password is not None or not os.path.exists(pw_path):
            write_atomic(pw_path, (args.password or DEFAULT_PASSWORD) + "\n", 0o600)
        return 0
    return serve(args.state, args.port, args.bind, args.san)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
