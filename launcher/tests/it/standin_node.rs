//! The stand-in Archy node itself (tests/standin/): its JSON-RPC answers and
//! what its shims print inside a bare node. The other tests trust it, so it
//! is tested on its own first. HTTP goes through the host's curl.

use crate::support;

use serde_json::{json, Value};

use support::bare_node::BareNode;
use support::standin::StandinNode;

const PW: &str = "correct horse";

fn ids(state: &Value) -> Vec<String> {
    state["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn package<'a>(state: &'a Value, id: &str) -> &'a Value {
    state["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no package {id} in {state}"))
}

#[test]
fn health_needs_no_login() {
    let node = StandinNode::start_detached("healthy", PW);
    let reply = node.call("health", Value::Null, None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["jsonrpc"], "2.0");
    assert_eq!(reply.body["id"], 7);
    assert_eq!(reply.result(), &json!({"status": "ok"}));
}

#[test]
fn login_with_the_right_password_sets_a_session_cookie() {
    let node = StandinNode::start_detached("healthy", PW);
    let reply = node.call("auth.login", json!({"password": PW}), None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.result(), &Value::Null);
    let line = reply
        .headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap();
    assert!(line.contains("; Path=/; HttpOnly; Secure"), "{line}");
    let token = reply.cookie("session").unwrap();
    assert!(token.len() >= 32, "{token}");
    // Two logins, two sessions.
    assert_ne!(node.login(), token);
}

#[test]
fn a_wrong_password_is_refused_and_never_logged() {
    let node = StandinNode::start_detached("healthy", PW);
    let reply = node.call("auth.login", json!({"password": "wrong"}), None);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.error(), (34, "invalid password".to_string()));
    assert_eq!(reply.cookie("session"), None);
    let reply = node.call("auth.login", Value::Null, None);
    assert_eq!(reply.error().0, 34);
    node.login();
    assert_eq!(node.requests(), ["auth.login", "auth.login", "auth.login"]);
    for file in ["requests.log", "server.log"] {
        let text = std::fs::read_to_string(node.state_dir().join(file)).unwrap();
        assert!(
            !text.contains(PW) && !text.contains("wrong"),
            "{file}: {text}"
        );
    }
}

#[test]
fn without_a_valid_session_everything_else_is_401() {
    let node = StandinNode::start_detached("healthy", PW);
    for (method, cookie) in [
        ("server.get-state", None),
        ("server.get-state", Some("forged")),
        ("package.stop", None),
        ("no.such-method", None),
    ] {
        let reply = node.call(method, json!({"id": "lnd"}), cookie);
        assert_eq!(reply.status, 401, "{method}");
        assert_eq!(reply.error(), (34, "unauthorized".to_string()), "{method}");
    }
    assert_eq!(package(&node.scenario(), "lnd")["state"], "running");
}

#[test]
fn unknown_methods_and_packages_are_json_rpc_errors() {
    let node = StandinNode::start_detached("healthy", PW);
    let session = node.login();
    let reply = node.call("no.such-method", Value::Null, Some(&session));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.error().0, -32601);
    for params in [json!({"id": "nope"}), json!({}), Value::Null] {
        let reply = node.call("package.stop", params.clone(), Some(&session));
        assert_eq!(reply.error().0, -32602, "{params}");
    }
    let reply = node.post("{not json", None);
    assert_eq!(reply.error().0, -32700);
}

/// `launcher rpc`'s exit statuses against the stand-in: the node's answer is
/// the command's verdict (0 with the result; 1 for a JSON-RPC error, printed
/// as an answer, not as a launcher error).
#[test]
fn launcher_rpc_reports_the_nodes_answer_as_its_verdict() {
    let node = StandinNode::start_detached("healthy", PW);
    let session = tempfile::tempdir().unwrap();
    let call = |method: &str| {
        let output = std::process::Command::new(support::launcher())
            .args(["rpc", method, "--host", &node.host(), "--session"])
            .arg(session.path().join("cookie"))
            .env("ARCHY_PASSWORD", PW)
            .env_remove("ARCHY_SCHEME")
            .env_remove("ARCHY_CA")
            .output()
            .unwrap();
        support::Run::of(output)
    };
    let ok = call("server.get-state").expect(0);
    let state: Value = serde_json::from_str(&ok.stdout).unwrap();
    assert!(ids(&state).contains(&"bitcoind".to_string()), "{state}");

    let refused = call("no.such-method").expect(1);
    assert!(refused.stdout.is_empty(), "{}", refused.stdout);
    assert!(
        refused
            .stderr
            .starts_with("rpc no.such-method: error -32601"),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains(PW), "{}", refused.stderr);
}

/// (package, state, health) as server.get-state reports them.
type Expected = (&'static str, &'static str, &'static str);

#[test]
fn get_state_per_scenario() {
    let cases: [(&str, &[&str], &[Expected]); 6] = [
        (
            "healthy",
            &["bitcoind", "lnd", "mempool"],
            &[
                ("bitcoind", "running", "healthy"),
                ("lnd", "running", "healthy"),
            ],
        ),
        (
            "package-down",
            &["bitcoind", "lnd", "mempool"],
            &[
                ("lnd", "stopped", "unhealthy"),
                ("mempool", "running", "healthy"),
            ],
        ),
        (
            "ibd",
            &["bitcoind", "lnd", "mempool"],
            &[("bitcoind", "running", "healthy")],
        ),
        (
            "no-bitcoin",
            &["lnd", "mempool"],
            &[("lnd", "running", "healthy")],
        ),
        ("adopted-container", &["bitcoind", "lnd", "mempool"], &[]),
        (
            "unit-activating",
            &["bitcoind", "lnd", "mempool"],
            &[("mempool", "running", "starting")],
        ),
    ];
    for (scenario, expected_ids, states) in cases {
        let node = StandinNode::start_detached(scenario, PW);
        let session = node.login();
        let state = node
            .call("server.get-state", Value::Null, Some(&session))
            .result()
            .clone();
        assert_eq!(state["server"]["version"], "0.0.0-standin");
        assert_eq!(ids(&state), expected_ids, "{scenario}");
        for (id, st, health) in states {
            let p = package(&state, id);
            assert_eq!(
                (p["state"].as_str(), p["health"].as_str()),
                (Some(*st), Some(*health)),
                "{scenario} {id}"
            );
        }
        let lnd = package(&state, "lnd");
        assert_eq!(lnd["containers"], json!(["lnd", "lnd-tor"]));
        assert_eq!(lnd["units"], json!(["lnd.service", "lnd-tor.service"]));
        assert!(lnd["version"].is_string());
    }
}

#[test]
fn stop_and_start_persist_and_the_server_reloads_a_new_scenario() {
    let node = StandinNode::start_detached("healthy", PW);
    let session = node.login();
    node.call("package.stop", json!({"id": "lnd"}), Some(&session))
        .result();
    let saved = node.scenario();
    assert_eq!(package(&saved, "lnd")["state"], "stopped");
    assert_eq!(saved["units"]["lnd-tor.service"], "inactive");
    node.call("package.start", json!({"id": "lnd"}), Some(&session))
        .result();
    assert_eq!(package(&node.scenario(), "lnd")["health"], "healthy");

    node.set_scenario("no-bitcoin");
    let state = node
        .call("server.get-state", Value::Null, Some(&session))
        .result()
        .clone();
    assert_eq!(
        ids(&state),
        ["lnd", "mempool"],
        "the session survives, the scenario is new"
    );
    assert_eq!(
        node.requests(),
        [
            "auth.login",
            "package.stop",
            "package.start",
            "server.get-state"
        ]
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut node = StandinNode::start_detached("healthy", PW);
    let status = node.stop().unwrap();
    assert!(status.success(), "{status:?}");
}

// ------------------------------------------------------------------------------------------
// The shims, inside a bare node

fn sh(node: &BareNode, script: &str) -> support::Run {
    node.sh(script)
}

#[test]
fn the_shims_print_the_scenario_inside_a_bare_node() {
    let node = BareNode::new();
    let standin = StandinNode::start(&node, "healthy", PW);
    let run = sh(&node, "podman ps -a --format '{{.Names}}'").expect(0);
    assert_eq!(
        run.stdout,
        "bitcoind\nlnd\nlnd-tor\nmempool-api\nmempool-web\n"
    );
    let run = sh(&node, "podman ps --format json").expect(0);
    let ps: Value = serde_json::from_str(&run.stdout).unwrap();
    let lnd = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"] == json!(["lnd"]))
        .unwrap();
    assert_eq!(lnd["State"], "running");
    assert_eq!(lnd["Status"], "Up 2 hours (healthy)");
    assert_eq!(lnd["Labels"]["io.archy.package"], "lnd");
    assert!(lnd["Image"].as_str().unwrap().contains("lnd"));

    let run = sh(&node, "systemctl --user is-active lnd.service; echo rc=$?").expect(0);
    assert_eq!(run.stdout, "active\nrc=0\n");
    let run = sh(
        &node,
        "systemctl is-active --user lnd.service lnd-tor; echo rc=$?",
    )
    .expect(0);
    assert_eq!(run.stdout, "active\nactive\nrc=0\n");
    let run = sh(
        &node,
        "systemctl --user is-active nothing.service; echo rc=$?",
    )
    .expect(0);
    assert_eq!(run.stdout, "inactive\nrc=3\n");
    let run = sh(
        &node,
        "systemctl --user list-units --type=service --state=activating --no-legend --plain",
    )
    .expect(0);
    assert_eq!(run.stdout, "");

    let run = sh(&node, "bitcoin-cli getblockchaininfo").expect(0);
    let info: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(info["initialblockdownload"], false);
    assert_eq!(info["pruned"], false);
    assert_eq!(info["blocks"], info["headers"]);
    assert_eq!(info["verificationprogress"], 0.9999997);
    drop(standin);
}

#[test]
fn stop_and_start_change_what_the_shims_print() {
    let node = BareNode::new();
    let standin = StandinNode::start(&node, "healthy", PW);
    let session = standin.login();
    standin
        .call("package.stop", json!({"id": "lnd"}), Some(&session))
        .result();

    let run = sh(&node, "podman ps --format '{{.Names}}'").expect(0);
    assert_eq!(run.stdout, "bitcoind\nmempool-api\nmempool-web\n");
    let run = sh(&node, "podman ps -a --format json").expect(0);
    let ps: Value = serde_json::from_str(&run.stdout).unwrap();
    for name in ["lnd", "lnd-tor"] {
        let c = ps
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Names"] == json!([name]))
            .unwrap();
        assert_eq!(c["State"], "exited", "{name}");
        assert!(
            c["Status"].as_str().unwrap().starts_with("Exited"),
            "{name}"
        );
    }
    let run = sh(&node, "systemctl --user is-active lnd.service; echo rc=$?").expect(0);
    assert_eq!(run.stdout, "inactive\nrc=3\n");

    standin
        .call("package.start", json!({"id": "lnd"}), Some(&session))
        .result();
    let run = sh(
        &node,
        "podman ps --format '{{.Names}}'; systemctl --user is-active lnd-tor.service",
    )
    .expect(0);
    assert_eq!(
        run.stdout,
        "bitcoind\nlnd\nlnd-tor\nmempool-api\nmempool-web\nactive\n"
    );
}

#[test]
fn the_shims_show_each_scenarios_fault() {
    let node = BareNode::new();
    let standin = StandinNode::start(&node, "adopted-container", PW);
    let run = sh(&node, "podman ps --format json").expect(0);
    let ps: Value = serde_json::from_str(&run.stdout).unwrap();
    let electrs = ps
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"] == json!(["electrs"]))
        .unwrap();
    assert_eq!(electrs["State"], "running");
    assert!(
        electrs["Labels"].get("io.archy.package").is_none(),
        "{electrs}"
    );

    standin.set_scenario("unit-activating");
    let run = sh(
        &node,
        "systemctl list-units --type=service --state=activating --no-legend --plain --user",
    )
    .expect(0);
    assert_eq!(
        run.stdout,
        "mempool-web.service loaded activating start mempool-web\n"
    );
    let run = sh(
        &node,
        "systemctl --user is-active mempool-web.service; echo rc=$?",
    )
    .expect(0);
    assert_eq!(run.stdout, "activating\nrc=3\n");

    for (scenario, ibd, pruned, progress) in [
        ("ibd", true, false, 0.62),
        ("pruned", false, true, 0.9999997),
    ] {
        standin.set_scenario(scenario);
        let run = sh(&node, "bitcoin-cli getblockchaininfo").expect(0);
        let info: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(info["initialblockdownload"], ibd, "{scenario}");
        assert_eq!(info["pruned"], pruned, "{scenario}");
        assert_eq!(info["verificationprogress"], progress, "{scenario}");
        if ibd {
            assert!(info["blocks"].as_u64() < info["headers"].as_u64());
        }
    }

    standin.set_scenario("no-bitcoin");
    let run = sh(
        &node,
        "command -v bitcoin-cli || echo none; podman ps -a --format '{{.Names}}'",
    )
    .expect(0);
    assert_eq!(run.stdout, "none\nlnd\nlnd-tor\nmempool-api\nmempool-web\n");
}

#[test]
fn the_shims_refuse_what_they_do_not_fake() {
    let node = BareNode::new();
    let _standin = StandinNode::start(&node, "healthy", PW);
    for cmd in [
        "podman images",
        "podman ps --format '{{.ID}}'",
        "podman ps --filter name=lnd",
        "podman",
        "systemctl is-active lnd.service",
        "systemctl --user restart lnd.service",
        "systemctl --user list-units --state=weird",
        "bitcoin-cli getnetworkinfo",
        "bitcoin-cli",
    ] {
        let run = sh(&node, cmd);
        assert_eq!(run.code, 2, "{cmd}: {}", run.stdout);
        assert!(
            run.stderr.contains("archy stand-in"),
            "{cmd}: {}",
            run.stderr
        );
        assert_eq!(run.stdout, "", "{cmd}");
    }
    // Without the rendered state the bitcoin-cli shim behaves as a missing command.
    let run = node.sh_with(
        "",
        &[("ARCHY_STANDIN_STATE", "/nowhere")],
        "bitcoin-cli getblockchaininfo",
    );
    assert_eq!(run.code, 127);
    assert_eq!(run.stderr, "bitcoin-cli: not found\n");
}

// ------------------------------------------------------------------------------------------
// The peer protocol, between two stand-ins on loopback

use std::time::Duration;

use support::standin::eventually;

/// Long enough for a delivery (1 to 3 s after the call) and a retry or two.
const DELIVERY: Duration = Duration::from_secs(20);

/// The `{"did", "host"}` entries of `contact.list`'s `key`.
fn contacts(node: &StandinNode, key: &str) -> Vec<(String, String)> {
    node.rpc("contact.list", Value::Null)[key]
        .as_array()
        .unwrap_or_else(|| panic!("contact.list has no {key}"))
        .iter()
        .map(|c| {
            (
                c["did"].as_str().unwrap().to_string(),
                c["host"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Waits until `node`'s `key` list is exactly `expected`.
fn eventually_lists(node: &StandinNode, key: &str, expected: &[(String, String)]) {
    eventually(&format!("contact.list {key}"), DELIVERY, || {
        let now = contacts(node, key);
        if now == expected {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    })
}

/// A port on loopback that nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_contact_request_is_delivered_accepted_and_seen_by_both_nodes() {
    let a = StandinNode::start_detached("healthy", "password-a");
    let b = StandinNode::start_detached("healthy", "password-b");
    let (did_a, did_b) = (a.did(), b.did());
    assert!(
        did_a.starts_with("did:archy:") && did_a.len() == 26,
        "{did_a}"
    );
    assert_ne!(did_a, did_b);
    assert_eq!(a.did(), did_a, "an identity is stable");

    assert_eq!(
        a.rpc("contact.request", json!({"host": b.host()})),
        Value::Null
    );
    // A knows whom it asked at once (it asked B who it is); B learns it later.
    assert_eq!(contacts(&a, "outgoing"), [(did_b.clone(), b.host())]);
    eventually_lists(&b, "incoming", &[(did_a.clone(), a.host())]);
    assert!(contacts(&b, "contacts").is_empty());

    assert_eq!(b.rpc("contact.accept", json!({"did": did_a})), Value::Null);
    assert_eq!(contacts(&b, "contacts"), [(did_a.clone(), a.host())]);
    assert!(contacts(&b, "incoming").is_empty());
    eventually_lists(&a, "contacts", &[(did_b.clone(), b.host())]);
    assert!(contacts(&a, "outgoing").is_empty());

    // The traffic went server to server, and each side logged it.
    assert!(a
        .peer_log()
        .contains(&format!("contact.request to {}: HTTP 200", b.host())));
    assert!(b.peer_log().contains("contact.request from 127.0.0.1"));
    assert!(b
        .peer_log()
        .contains(&format!("contact.accept to {}: HTTP 200", a.host())));
    // requests.log holds method names, never params.
    for node in [&a, &b] {
        let log = std::fs::read_to_string(node.state_dir().join("requests.log")).unwrap();
        assert!(
            !log.contains("did:archy") && !log.contains("127.0.0.1"),
            "{log}"
        );
    }

    // Accepting a request nobody made is refused; removing forgets either way.
    let session = b.login();
    let reply = b.call("contact.accept", json!({"did": did_a}), Some(&session));
    assert_eq!(reply.error().0, -32602);
    a.rpc("contact.remove", json!({"did": did_b}));
    b.rpc("contact.remove", json!({"did": did_a}));
    for (node, key) in [(&a, "contacts"), (&b, "contacts")] {
        assert!(contacts(node, key).is_empty());
    }
}

#[test]
fn a_shared_file_is_fetched_by_hash_and_the_sharer_logs_who_and_from_where() {
    let a = StandinNode::start_detached("healthy", "password-a");
    let b = StandinNode::start_detached("healthy", "password-b");
    let content = "the bytes A shares\nline two\n";
    let shared = a.rpc(
        "file.share",
        json!({"name": "notes.txt", "content": content}),
    );
    let hash = shared["hash"].as_str().unwrap().to_string();
    assert_eq!(hash, support::sha256_hex(content.as_bytes()));

    let fetched = b.rpc("file.fetch", json!({"host": a.host(), "hash": hash}));
    assert_eq!(
        fetched,
        json!({"name": "notes.txt", "content": content, "hash": hash})
    );
    assert_eq!(
        a.rpc("file.served", Value::Null),
        json!({"fetches": [{"hash": hash, "by_did": b.did(), "from_addr": "127.0.0.1"}]})
    );
    assert_eq!(
        b.rpc("file.served", Value::Null),
        json!({"fetches": []}),
        "the fetcher served nothing"
    );

    // An unknown hash is the peer's refusal, naming it; so is an unshared one.
    let session = b.login();
    let unknown = "0".repeat(64);
    let reply = b.call(
        "file.fetch",
        json!({"host": a.host(), "hash": unknown}),
        Some(&session),
    );
    assert_eq!(
        reply.error(),
        (-32011, format!("peer {}: unknown hash {unknown}", a.host()))
    );
    assert_eq!(a.rpc("file.unshare", json!({"hash": hash})), Value::Null);
    let reply = b.call(
        "file.fetch",
        json!({"host": a.host(), "hash": hash}),
        Some(&session),
    );
    assert_eq!(reply.error().0, -32011, "{}", reply.body);
    assert_eq!(
        a.rpc("file.served", Value::Null)["fetches"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "only what was served is logged"
    );
}

#[test]
fn an_unreachable_peer_is_an_error_naming_the_host() {
    let a = StandinNode::start_detached("healthy", "password-a");
    let gone = format!("127.0.0.1:{}", closed_port());
    let session = a.login();
    for (method, params) in [
        ("contact.request", json!({"host": gone})),
        ("file.fetch", json!({"host": gone, "hash": "a".repeat(64)})),
    ] {
        let reply = a.call(method, params, Some(&session));
        let (code, message) = reply.error();
        assert_eq!(code, -32010, "{method}: {message}");
        assert!(
            message.starts_with(&format!("peer {gone} unreachable: ")),
            "{method}: {message}"
        );
    }
    assert!(contacts(&a, "outgoing").is_empty());
    // Bad params, and no session: refused before any traffic.
    let reply = a.call(
        "file.fetch",
        json!({"host": "nohost", "hash": "x"}),
        Some(&session),
    );
    assert_eq!(reply.error().0, -32602);
    let reply = a.call("contact.list", Value::Null, None);
    assert_eq!(reply.status, 401);
}

#[test]
fn contact_requests_survive_restarts_of_either_node() {
    let mut a = StandinNode::start_detached("healthy", "password-a");
    let mut b = StandinNode::start_detached("healthy", "password-b");
    let (did_a, did_b) = (a.did(), b.did());
    a.rpc("contact.request", json!({"host": b.host()}));
    // B goes away before the request (due 1 to 3 s later) can arrive, and A
    // restarts: only the outbox A persisted can still deliver it.
    b.stop();
    a.restart();
    assert_eq!(a.did(), did_a, "the identity survives a restart");
    b.start_again();
    eventually_lists(&b, "incoming", &[(did_a.clone(), a.host())]);
    b.restart();
    assert_eq!(contacts(&b, "incoming"), [(did_a.clone(), a.host())]);
    b.rpc("contact.accept", json!({"did": did_a}));
    eventually_lists(&a, "contacts", &[(did_b, b.host())]);
}
