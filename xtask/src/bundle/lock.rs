//! `bundle/inputs.lock`: every input's version, how it is fetched, and the
//! sha256 its artifact must have (the file's header describes the columns).
//! Read whole and checked line by line before anything is fetched.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub struct Lock {
    pub path: PathBuf,
    inputs: Vec<Input>,
}

pub struct Input {
    pub name: String,
    pub version: String,
    pub fetch: Fetch,
    /// Lowercase hex, 64 digits.
    pub sha256: String,
}

/// How an input's artifact is fetched, through the machine's own pip, npm
/// and apt.
pub enum Fetch {
    /// `pip download --no-deps --no-binary PROJECT PROJECT==VERSION`
    PypiSdist { project: String },
    /// `npm pack PACKAGE@VERSION`
    Npm { package: String },
    /// `apt-get download PACKAGE=VERSION`
    Apt { package: String },
    /// The file PATH inside the tarball of the input INPUT.
    Member { input: String, path: String },
}

impl Lock {
    pub fn read(path: &Path) -> Result<Lock> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let inputs = parse(&text).with_context(|| format!("in {}", path.display()))?;
        Ok(Lock {
            path: path.to_path_buf(),
            inputs,
        })
    }

    /// Every input, in the file's order.
    pub fn inputs(&self) -> &[Input] {
        &self.inputs
    }

    pub fn get(&self, name: &str) -> Result<&Input> {
        match self.inputs.iter().find(|input| input.name == name) {
            Some(input) => Ok(input),
            None => bail!("input '{name}' is not in {}", self.path.display()),
        }
    }
}

fn parse(text: &str) -> Result<Vec<Input>> {
    let mut inputs: Vec<Input> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first().is_none_or(|first| first.starts_with('#')) {
            continue;
        }
        let &[name, version, fetch, sha256] = fields.as_slice() else {
            bail!(
                "line {n}: expected NAME VERSION FETCH SHA256, found {} fields",
                fields.len()
            );
        };
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            bail!("line {n}: '{sha256}' is not a sha256 (64 lowercase hex digits)");
        }
        let fetch = parse_fetch(fetch).with_context(|| format!("line {n}"))?;
        if inputs.iter().any(|input| input.name == name) {
            bail!("line {n}: the input '{name}' is listed twice");
        }
        inputs.push(Input {
            name: name.to_owned(),
            version: version.to_owned(),
            fetch,
            sha256: sha256.to_owned(),
        });
    }
    for input in &inputs {
        if let Fetch::Member { input: from, .. } = &input.fetch {
            if !inputs.iter().any(|i| &i.name == from) {
                bail!(
                    "{} is a member of '{from}', which is not listed",
                    input.name
                );
            }
        }
    }
    Ok(inputs)
}

fn parse_fetch(fetch: &str) -> Result<Fetch> {
    let (method, rest) = fetch.split_once(':').unwrap_or((fetch, ""));
    let named = |what: &str| {
        if rest.is_empty() {
            bail!("'{fetch}': {method} needs a {what} after the colon");
        }
        Ok(rest.to_owned())
    };
    Ok(match method {
        "pypi-sdist" => Fetch::PypiSdist {
            project: named("project")?,
        },
        "npm" => Fetch::Npm {
            package: named("package")?,
        },
        "apt" => Fetch::Apt {
            package: named("package")?,
        },
        "member" => match rest.split_once(':') {
            Some((input, path)) if !input.is_empty() && !path.is_empty() => Fetch::Member {
                input: input.to_owned(),
                path: path.to_owned(),
            },
            _ => bail!("'{fetch}': expected member:INPUT:PATH"),
        },
        _ => bail!("unknown fetch method '{fetch}' (pypi-sdist:, npm:, apt: or member:INPUT:PATH)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "71b8d6e8f5fe81f6c6d0d110e3892251f6ce76ed095abd315e26e6e1193af3af";

    fn error(text: &str) -> String {
        format!("{:#}", parse(text).err().expect("a parse error"))
    }

    #[test]
    fn the_projects_lock_parses_with_every_fetch_method() {
        let text =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundle/inputs.lock"))
                .unwrap();
        let inputs = parse(&text).unwrap();
        let jq = inputs.iter().find(|i| i.name == "jq").unwrap();
        assert!(matches!(&jq.fetch, Fetch::Member { input, .. } if input == "jq-sdist"));
        assert!(inputs
            .iter()
            .any(|i| matches!(i.fetch, Fetch::PypiSdist { .. })));
        assert!(inputs.iter().any(|i| matches!(i.fetch, Fetch::Npm { .. })));
        assert!(inputs.iter().any(|i| matches!(i.fetch, Fetch::Apt { .. })));
    }

    #[test]
    fn a_bad_line_is_refused_by_its_number() {
        assert!(error(&format!("# c\n\nx 1 npm:x {SHA} extra\n")).starts_with("line 3: expected"));
        assert!(error("x 1 npm:x ABC\n").contains("'ABC' is not a sha256"));
        assert!(error(&format!("x 1 ftp:x {SHA}\n")).contains("unknown fetch method 'ftp:x'"));
        assert!(error(&format!("x 1 npm: {SHA}\n")).contains("npm needs a package"));
        assert!(error(&format!("x 1 member:y {SHA}\n")).contains("member:INPUT:PATH"));
        assert!(error(&format!("x 1 member:y:p {SHA}\n")).contains("'y', which is not listed"));
        assert!(error(&format!("x 1 npm:x {SHA}\nx 2 npm:x {SHA}\n")).contains("listed twice"));
    }
}
