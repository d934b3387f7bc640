//! Values a scenario step publishes for the steps after it (a DID, a file's
//! hash): a flat JSON object of names to strings. They are data, shown in
//! reports and passed on the command line of later steps, so their names
//! are checked, their size is bounded, and a value holding a password is
//! refused: on the node against its own password, by the fleet against
//! every node's. A refused value is named, never repeated.

use std::collections::BTreeMap;

/// Values by name.
pub type Values = BTreeMap<String, String>;

/// The file a step writes its values to (`ARCHY_CROSS_PUBLISH`), in its run dir.
pub const PUBLISH_FILE: &str = "published.json";
/// All values of a scenario together, names and values, at most this many bytes.
pub const MAX_TOTAL_BYTES: usize = 16 * 1024;

/// `[a-z][a-z0-9_]{0,62}`: a shell-friendly name.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "value name {:?}: a lower-case letter, then lower-case letters, digits and '_' (at most 63)",
            crate::printable::printable(name)
        ))
    }
}

/// Bytes of names and values together.
pub fn size(values: &Values) -> usize {
    values.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Reads a values object (`--values`, a published file): names checked,
/// every value a string, the whole within [`MAX_TOTAL_BYTES`].
pub fn parse(text: &str) -> Result<Values, String> {
    if text.len() > 4 * MAX_TOTAL_BYTES {
        return Err(format!(
            "{} bytes of values, more than {MAX_TOTAL_BYTES}",
            text.len()
        ));
    }
    let values: Values = serde_json::from_str(text)
        .map_err(|e| format!("not a JSON object of names to strings ({e})"))?;
    for name in values.keys() {
        check_name(name)?;
    }
    if size(&values) > MAX_TOTAL_BYTES {
        return Err(format!(
            "{} bytes of values, more than {MAX_TOTAL_BYTES}",
            size(&values)
        ));
    }
    Ok(values)
}

/// Refuses a value that contains any of `secrets` (whose, password): names
/// the value and whose password it holds, never the password.
pub fn refuse_secrets(values: &Values, secrets: &[(String, String)]) -> Result<(), String> {
    for (name, value) in values {
        for (whose, secret) in secrets {
            if !secret.is_empty() && value.contains(secret.as_str()) {
                return Err(format!(
                    "value {name:?} holds {whose}'s password: refused, and kept nowhere"
                ));
            }
        }
    }
    Ok(())
}

/// `later` added to `earlier`: a name published twice is refused (a value
/// is set once, by one step on one node).
pub fn merge(earlier: &mut Values, later: &Values, by: &str) -> Result<(), String> {
    for (name, value) in later {
        if earlier.contains_key(name) {
            return Err(format!(
                "value {name:?} was published before; {by} published it again (a value is \
                 set once)"
            ));
        }
        earlier.insert(name.clone(), value.clone());
    }
    if size(earlier) > MAX_TOTAL_BYTES {
        return Err(format!(
            "the scenario's values reach {} bytes, more than {MAX_TOTAL_BYTES}",
            size(earlier)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_data() {
        let v = parse(r#"{"did_a": "did:archy:1", "hash": "ab"}"#).unwrap();
        assert_eq!(v["did_a"], "did:archy:1");
        assert!(parse(r#"{"Did": "x"}"#).unwrap_err().contains("value name"));
        assert!(parse(r#"{"n": 1}"#).is_err());
        assert!(parse(r#"["x"]"#).is_err());
        let big = format!(r#"{{"n": "{}"}}"#, "x".repeat(MAX_TOTAL_BYTES));
        assert!(parse(&big).unwrap_err().contains("more than"));
        let secrets = vec![("n2".to_string(), "s3cret".to_string())];
        let err =
            refuse_secrets(&parse(r#"{"leak": "a-s3cret-b"}"#).unwrap(), &secrets).unwrap_err();
        assert!(err.contains("\"leak\"") && err.contains("n2") && !err.contains("s3cret"));
        let mut all = v.clone();
        assert!(merge(&mut all, &v, "n1")
            .unwrap_err()
            .contains("published before"));
    }
}
