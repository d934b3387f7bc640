//! `report.html` as a person sees it: a real fleet over loopback sshd nodes
//! (a passing primary, a failing node, one not ready, one unreachable, one
//! listed only), its report opened in headless Chromium, and what the
//! browser rendered checked against `report.json`: every phase and node
//! shown, with the same numbers. A screenshot is kept for people to look
//! at (its path is printed).

use crate::support;

use std::fs;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::chromium::{file_url, probe, section, Chromium, Png};
use support::fixture::ArchyNode;
use support::ssh_node::{SshConfig, SshNode};
use support::{real_bundle_dir, Run};

const PASSWORD: &str = "fleet-secret-2718";
const WIDTH: u32 = 1280;

/// An SSH node called `name` faking `scenario` (support::fixture).
fn archy_node(name: &str, scenario: &str) -> ArchyNode<SshNode> {
    ArchyNode::build(scenario, PASSWORD).over_ssh(SshNode::start(name))
}

/// `node`'s roster entry, with `role`.
fn entry(node: &ArchyNode<SshNode>, role: &str) -> String {
    format!(
        "[[node]]\nname = \"{0}\"\nssh = \"{0}\"\nrole = \"{role}\"\npassword_env = \"ARCHY_PW_TEST\"\nhost = \"{1}\"\n",
        node.node.name(),
        node.standin.host()
    )
}

/// Where a copy of the screenshot and the report stay after the test.
fn keep_dir() -> PathBuf {
    let dir = support::workspace_root().join("target/fleet-report-html");
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_html_report_shows_every_phase_and_node_with_report_json_numbers() {
    let prim = archy_node("prim", "healthy");
    let broken = archy_node("broken", "package-down");
    let syncing = archy_node("syncing", "ibd");
    let mut config = SshConfig::new();
    for n in [&prim, &broken, &syncing] {
        config.add(&n.node);
    }
    config.add_refusing("gone");
    let dir = support::lab::scratch("html.");
    let roster = dir.path().join("fleet.toml");
    fs::write(
        &roster,
        format!(
            "[defaults]\niterations = 2\nssh_config = \"{}\"\nssh_options = [\"-o\", \"ConnectTimeout=5\"]\n\n{}\n{}\n{}\n{}\n{}",
            config.path().display(),
            entry(&prim, "primary"),
            entry(&broken, "fleet"),
            entry(&syncing, "fleet"),
            "[[node]]\nname = \"gone\"\nssh = \"gone\"\nrole = \"tester\"\npassword_env = \"ARCHY_PW_TEST\"\n",
            "[[node]]\nname = \"dev1\"\nssh = \"dev1\"\nrole = \"dev\"\ngate = false\n",
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = Run::of(
        Command::new(support::launcher())
            .args(["fleet", "run", "--jobs", "4", "--roster"])
            .arg(&roster)
            .arg("--bundle")
            .arg(real_bundle_dir().join("archy-gate"))
            .arg("--out")
            .arg(&out)
            .env("ARCHY_PW_TEST", PASSWORD)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("/report.html"), "{}", run.stdout);
    let report: Value =
        serde_json::from_slice(&fs::read(out.join("report.json")).unwrap()).unwrap();
    let nodes = report["nodes"].as_array().unwrap();
    let phase_of = |name: &str| {
        nodes.iter().find(|n| n["name"] == name).unwrap()["phase"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // The fleet did what this test needs to show.
    assert_eq!(phase_of("prim"), "passed");
    assert_eq!(phase_of("broken"), "failed");
    assert_eq!(phase_of("syncing"), "not-ready");
    assert_eq!(phase_of("gone"), "unreachable");
    assert_eq!(phase_of("dev1"), "skipped");

    let html_path = out.join("report.html");
    let chromium = Chromium::new();
    let page = probe(&chromium, &html_path);

    // Every phase, shown.
    for phase in [
        "primaries",
        "rest",
        "cross",
        "listed",
        "timeline",
        "failures",
    ] {
        assert_eq!(section(&page, phase)["shown"], true, "{phase}: {page:#}");
    }
    assert!(section(&page, "cross")["title"]
        .as_str()
        .unwrap()
        .contains("Cross-node suites"));
    let gate: Vec<&Value> = nodes.iter().filter(|n| n["gate"] == true).collect();
    let passed = gate.iter().filter(|n| n["phase"] == "passed").count();
    assert_eq!(
        page["verdict"],
        format!("{passed} of {} gate nodes passed", gate.len())
    );

    let rows = page["rows"].as_array().unwrap();
    for n in nodes {
        let name = n["name"].as_str().unwrap();
        let row = rows
            .iter()
            .find(|r| r["node"] == name)
            .unwrap_or_else(|| panic!("no row for {name}: {page:#}"));
        let where_ = match (n["gate"].as_bool().unwrap(), n["role"].as_str().unwrap()) {
            (false, _) => "listed",
            (true, "primary") => "primaries",
            (true, _) => "rest",
        };
        assert_eq!(row["phase"], where_, "{name}");
        assert_eq!(row["shown"], true, "{name} is on the page");
        let badge = &row["badge"];
        assert_eq!(badge["shown"], true, "{name}");
        assert_ne!(
            badge["color"], badge["background"],
            "{name}'s badge is unreadable"
        );
        let cells = &row["cells"];
        let phase = n["phase"].as_str().unwrap();
        assert!(
            cells["phase"].as_str().unwrap().starts_with(phase),
            "{name}: {} in the page, {phase} in report.json",
            cells["phase"]
        );
        if !n["gate"].as_bool().unwrap() {
            continue;
        }
        let iterations = match n["iterations_passed"].as_u64() {
            Some(p) => format!("{p} of {}", n["iterations"]),
            None => "-".into(),
        };
        assert_eq!(cells["iterations"], iterations, "{name}");
        if n["tests"].is_null() {
            assert_eq!(cells["tests"], "-", "{name}");
        } else {
            for k in ["passed", "failed", "skipped"] {
                assert_eq!(cells[k], n["tests"][k].to_string(), "{name} {k}: {cells}");
            }
        }
        for failing in n["tests"]["failing"].as_array().into_iter().flatten() {
            assert!(
                cells["failing"]
                    .as_str()
                    .unwrap()
                    .contains(failing.as_str().unwrap()),
                "{name}: {failing} in {}",
                cells["failing"]
            );
        }
        let findings = n["preflight_findings"].as_array().unwrap();
        for f in findings {
            assert!(
                cells["preflight"]
                    .as_str()
                    .unwrap()
                    .contains(f.as_str().unwrap()),
                "{name}: {f} in {}",
                cells["preflight"]
            );
        }
        if findings.is_empty() {
            if let Some(checks) = n["preflight"]["checks"].as_array() {
                assert_eq!(
                    cells["preflight"],
                    format!("all {} checks passed", checks.len()),
                    "{name}"
                );
            }
        }
        match n["upload"]["sent"].as_u64() {
            Some(sent) => assert!(
                cells["upload"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("{sent} bytes sent")),
                "{name}: {sent} bytes in {}",
                cells["upload"]
            ),
            None => assert_eq!(cells["upload"], "-", "{name}"),
        }
    }
    assert!(
        page["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["suite"].is_null()),
        "no cross-node suite in this roster"
    );

    // The timeline: a lane per gate node, a bar per recorded step.
    let lanes = page["lanes"].as_array().unwrap();
    assert_eq!(lanes.len(), gate.len(), "{page:#}");
    for n in &gate {
        let name = n["name"].as_str().unwrap();
        let lane = lanes.iter().find(|l| l["node"] == name).unwrap();
        assert_eq!(lane["shown"], true, "{name}'s lane");
        let steps = n["steps"].as_array().unwrap();
        let bars = lane["steps"].as_array().unwrap();
        assert_eq!(bars.len(), steps.len(), "{name}: {lane:#}");
        for (bar, step) in bars.iter().zip(steps) {
            assert_eq!(bar["shown"], true, "{name}: {bar}");
            assert_eq!(bar["outcome"], step["outcome"], "{name}: {bar} {step}");
        }
        // The steps node.rs recorded agree with the rest of report.json.
        let iterations: Vec<&Value> = steps
            .iter()
            .filter(|s| s["kind"].get("iteration").is_some())
            .collect();
        match n["iterations_passed"].as_u64() {
            Some(p) => {
                assert_eq!(iterations.len() as u64, n["iterations"].as_u64().unwrap());
                let green = iterations.iter().filter(|s| s["outcome"] == "passed");
                assert_eq!(green.count() as u64, p, "{name}");
            }
            None => assert!(iterations.is_empty(), "{name}"),
        }
        let kinds: Vec<String> = steps
            .iter()
            .map(|s| match s["kind"].as_str() {
                Some(k) => k.to_string(),
                None => "iteration".into(),
            })
            .collect();
        let expected: &[&str] = match n["phase"].as_str().unwrap() {
            "passed" | "failed" => &["upload", "preflight", "iteration", "iteration"],
            "not-ready" => &["upload", "preflight"],
            _ => &[],
        };
        assert_eq!(kinds, expected, "{name}");
        let (from, to) = (
            n["started_unix"].as_f64().unwrap_or(0.0),
            n["ended_unix"].as_f64().unwrap_or(f64::MAX),
        );
        let mut last = 0.0;
        for s in steps {
            let at = s["started_unix"].as_f64().unwrap();
            let end = at + s["seconds"].as_f64().unwrap();
            // The host's clock is kept in whole seconds for the node.
            // The node's times are whole seconds; an iteration's length is
            // the node's clock, in whole seconds too.
            assert!(
                at >= from && end <= to + 2.0,
                "{name}: {s} outside {from}..{to}"
            );
            assert!(at + 1e-6 >= last, "{name}: steps in order");
            last = at;
        }
    }

    // Each failing test links to its result line in the node's fetched log.
    let log_links: Vec<&Value> = page["links"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["href"].as_str().unwrap().starts_with("nodes/") && !l["node"].is_null())
        .collect();
    let broken_report = nodes.iter().find(|n| n["name"] == "broken").unwrap();
    assert_eq!(
        log_links.len() as u64,
        broken_report["tests"]["failed"].as_u64().unwrap(),
        "one link per failing result: {log_links:#?}"
    );
    for link in log_links {
        let node = link["node"].as_str().unwrap();
        let href = link["href"].as_str().unwrap();
        assert!(
            href.starts_with(&format!("nodes/{node}/gate.log#")),
            "{href}"
        );
        let line: usize = link["text"]
            .as_str()
            .unwrap()
            .strip_prefix("gate.log:")
            .unwrap()
            .parse()
            .unwrap();
        let log = fs::read_to_string(out.join("nodes").join(node).join("gate.log")).unwrap();
        let at = log.lines().nth(line - 1).unwrap();
        let test = link["test"].as_str().unwrap();
        assert!(
            at.starts_with("not ok ") && at.contains(test),
            "gate.log line {line} is {at:?}, not {test}'s result"
        );
        assert_eq!(link["shown"], true);
    }

    // What a person sees: a screenshot of the whole page.
    let height = page["height"].as_u64().unwrap().clamp(600, 8000) as u32;
    let png = out.join("report.png");
    chromium.screenshot(&file_url(&html_path), &png, WIDTH, height);
    let image = Png::read(&png);
    assert_eq!((image.width, image.height), (WIDTH, height));
    assert!(image.distinct_colours() > 50, "a blank screenshot");
    // The timeline's bars, drawn: the primary's passed iterations (green),
    // the broken node's failed ones (red); the legend alone has 140 of each.
    for (colour, what) in [
        ([0x16, 0xa3, 0x4a], "passed iterations"),
        ([0xdc, 0x26, 0x26], "failed iterations"),
    ] {
        let seen = image.count(colour);
        assert!(seen > 1000, "{what}: {seen} pixels of #{colour:02x?}");
    }
    let keep = keep_dir();
    fs::copy(&png, keep.join("report.png")).unwrap();
    fs::copy(&html_path, keep.join("report.html")).unwrap();
    // Past the harness's capture: the path is for people, pass or fail.
    let _ = writeln!(
        std::io::stderr(),
        "report.html screenshot: {}",
        keep.join("report.png").display()
    );
}
