//! Which gate nodes a fleet run drives: `--limit` patterns (a name, a role,
//! a glob over names) and `--only` kinds read from the fleet dir's last
//! state. The nodes left out keep what the last run found; none of them is
//! connected to.

use std::collections::BTreeSet;

use super::roster::{Node, Roster};
use super::state::{FleetState, NodeState, Phase};
use crate::exit::{fail, ExitStatus};

/// The command line's choice of nodes.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// `--limit`: patterns; empty selects every node.
    pub limit: Vec<String>,
    /// `--only`: kinds of node (cli::ONLY_KINDS); empty selects every node.
    pub only: Vec<String>,
}

impl Selection {
    pub fn is_all(&self) -> bool {
        self.limit.is_empty() && self.only.is_empty()
    }

    /// The gate nodes of `roster` this run drives, given the last state
    /// (needed for `--only`). A pattern that matches no node is refused: a
    /// typo would otherwise run nothing and look green.
    pub fn nodes(
        &self,
        roster: &Roster,
        last: Option<&FleetState>,
    ) -> anyhow::Result<BTreeSet<String>> {
        let gate: Vec<&Node> = roster.nodes.iter().filter(|n| n.gate).collect();
        let mut chosen: BTreeSet<String> = gate.iter().map(|n| n.name.clone()).collect();
        for pattern in &self.limit {
            if !gate.iter().any(|n| matches(pattern, n)) {
                let names: Vec<&str> = gate.iter().map(|n| n.name.as_str()).collect();
                return Err(fail(
                    ExitStatus::Usage,
                    format!(
                        "--limit {pattern:?} matches no gate node of {}: give a node name ({}), a role (primary, fleet, tester, dev) or a glob (web-*)",
                        roster.path,
                        names.join(", ")
                    ),
                ));
            }
        }
        if !self.limit.is_empty() {
            chosen.retain(|name| {
                let node = gate.iter().find(|n| &n.name == name).expect("gate node");
                self.limit.iter().any(|p| matches(p, node))
            });
        }
        if !self.only.is_empty() {
            let last = last.ok_or_else(|| {
                fail(
                    ExitStatus::Usage,
                    format!(
                        "--only {}: the fleet dir holds no earlier run of this bundle to read: run `launcher fleet run` without --only first",
                        self.only.join(",")
                    ),
                )
            })?;
            chosen.retain(|name| {
                // A node the last run did not know has no result: it is "not-run".
                let kind_of = |kind: &str| match last.nodes.iter().find(|n| &n.name == name) {
                    Some(n) => is_kind(n, kind),
                    None => matches!(kind, "not-run" | "not-passed"),
                };
                self.only.iter().any(|k| kind_of(k))
            });
        }
        Ok(chosen)
    }

    /// The selection in words, for the plan and the progress lines.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.only.is_empty() {
            parts.push(format!("--only {}", self.only.join(",")));
        }
        if !self.limit.is_empty() {
            parts.push(format!("--limit {}", self.limit.join(",")));
        }
        parts.join(" ")
    }
}

/// Is `node` of `kind` (one of cli::ONLY_KINDS), as the last run left it?
pub fn is_kind(node: &NodeState, kind: &str) -> bool {
    let phase = node.phase;
    match kind {
        "failed" => matches!(phase, Phase::Failed | Phase::Error | Phase::Interrupted),
        "not-ready" => matches!(phase, Phase::NotReady | Phase::Waiting),
        "unreachable" => matches!(phase, Phase::Unreachable | Phase::Misbehaving),
        "not-run" => node.gate && matches!(phase, Phase::Skipped | Phase::Pending),
        "not-passed" => node.gate && phase != Phase::Passed,
        _ => false,
    }
}

/// A `--limit` pattern against a node: its name, its role, or a glob
/// (`*` any run of characters, `?` one) over its name.
fn matches(pattern: &str, node: &Node) -> bool {
    pattern == node.name || pattern == node.role.word() || glob(pattern, &node.name)
}

fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // The classic two-pointer match with one backtrack point per `*`.
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_over_names() {
        assert!(glob("web-*", "web-1"));
        assert!(glob("*", "a"));
        assert!(glob("n?", "n1"));
        assert!(glob("*-b*", "a-b-c"));
        assert!(!glob("web-*", "db-1"));
        assert!(!glob("n?", "n12"));
        assert!(!glob("a", "ab"));
    }
}
