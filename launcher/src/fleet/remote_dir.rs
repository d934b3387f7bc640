//! The bundle's dir on a node, made private to the remote user before
//! anything there is written or executed: the node-side half of the trust
//! rule (private_fs.rs). Every dir on the way must be owned by root or that user
//! and writable by no one else unless sticky; the last one is made 0700, or,
//! when it exists, must be the user's and writable by the user alone. Then
//! no other uid on the node (the app user, its containers) can swap the
//! uploaded file between its hash check and its execution, or plant a
//! `.part` symlink that root would write through.
//!
//! The node has no launcher yet at this point, so the check is a POSIX sh
//! script (busybox ash and bash both run it), built from a path whose names
//! the roster already restricted to a safe charset.

use super::ssh::{quote, Ssh, SshError};
use super::state::Phase;

/// The exit status the script uses for "refused", with its reason on stdout.
const REFUSED: i32 = 3;
const OK_LINE: &str = "archy-gate: remote dir ok";

fn script(dir: &str) -> String {
    let names: Vec<String> = dir
        .split('/')
        .filter(|c| !c.is_empty())
        .map(quote)
        .collect();
    format!(
        r#"umask 077
me=$(id -u)
refuse() {{ echo "$*"; exit {REFUSED}; }}
trusted() {{ [ "$1" = 0 ] || [ "$1" = "$me" ]; }}
p=/
for c in {names}; do
  st=$(stat -c '%u %a' -- "$p") || refuse "cannot look at $p"
  set -- $st
  trusted "$1" || refuse "$p is owned by uid $1, not by root or you (uid $me)"
  [ $((0$2 & 022)) = 0 ] || [ $((0$2 & 01000)) != 0 ] || refuse "$p has mode $2: others can write it and it is not sticky"
  if [ "$p" = / ]; then n=/$c; else n=$p/$c; fi
  [ -L "$n" ] && refuse "$n is a symlink: another user may have planted it; remove it or set remote_path"
  [ -e "$n" ] || mkdir -m 700 -- "$n" 2>/dev/null || [ -d "$n" ] || refuse "cannot create $n"
  [ -L "$n" ] && refuse "$n is a symlink: another user may have planted it; remove it or set remote_path"
  [ -d "$n" ] || refuse "$n is not a directory"
  p=$n
done
st=$(stat -c '%u %a' -- "$p") || refuse "cannot look at $p"
set -- $st
[ "$1" = "$me" ] || refuse "$p is owned by uid $1, not by you (uid $me): another user made it; remove it or set remote_path"
[ $((0$2 & 022)) = 0 ] || refuse "$p has mode $2: others can write it, so they may have planted anything in it; remove it"
chmod 700 -- "$p" || refuse "cannot chmod 700 $p"
echo '{OK_LINE}'
"#,
        names = names.join(" "),
    )
}

/// Makes the dir of `remote` (the bundle's path on the node) private, or
/// says why it cannot be trusted: `Err` is where the node ends, and why.
pub fn make_private(ssh: &mut Ssh, remote: &str) -> Result<(), (Phase, String)> {
    let dir = remote.rsplit_once('/').map_or("/", |(d, _)| d);
    let out = ssh.run(&script(dir), b"").map_err(|e| match e {
        SshError::Misbehaved(why) => (Phase::Misbehaving, why),
        e => (Phase::Error, format!("cannot check the remote dir: {e}")),
    })?;
    let said = crate::printable::printable(out.stdout_text().trim()).into_owned();
    let stderr = crate::printable::printable(out.stderr.trim()).into_owned();
    match out.code {
        0 if said.contains(OK_LINE) => Ok(()),
        REFUSED => Err((
            Phase::Error,
            format!("refusing the node's bundle dir: {said}"),
        )),
        code => Err((
            Phase::Error,
            format!("checking the remote dir {dir} failed (exit {code}): {said}{stderr}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::Command;

    /// The script under each shell a node may have, against real dirs.
    #[test]
    fn the_script_makes_the_dir_private_or_says_why_not() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        for shell in [["busybox", "sh"], ["bash", "--posix"]] {
            let run = |dir: &std::path::Path| {
                let out = Command::new(shell[0])
                    .arg(shell[1])
                    .arg("-c")
                    .arg(script(dir.to_str().unwrap()))
                    .output()
                    .unwrap();
                (
                    out.status.code(),
                    String::from_utf8_lossy(&out.stdout).into_owned(),
                )
            };
            let fresh = shared.join(format!("fresh-{}", shell[0]));
            let (code, said) = run(&fresh);
            assert_eq!((code, said.trim()), (Some(0), OK_LINE), "{shell:?}");
            assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);

            let theirs = shared.join(format!("theirs-{}", shell[0]));
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let (code, said) = run(&theirs);
            assert_eq!(code, Some(REFUSED), "{shell:?}: {said}");
            assert!(said.contains("owned by uid 65534"), "{said}");

            let link = shared.join(format!("link-{}", shell[0]));
            std::os::unix::fs::symlink(&fresh, &link).unwrap();
            let (code, said) = run(&link);
            assert_eq!(code, Some(REFUSED), "{shell:?}: {said}");
            assert!(said.contains("is a symlink"), "{said}");

            let open = shared.join(format!("open-{}", shell[0]));
            std::fs::create_dir(&open).unwrap();
            std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
            let (code, said) = run(&open);
            assert_eq!(code, Some(REFUSED), "{shell:?}: {said}");
            assert!(said.contains("others can write it"), "{said}");

            let below = open.join("deeper");
            let (code, said) = run(&below);
            assert_eq!(code, Some(REFUSED), "{shell:?}: {said}");
            assert!(said.contains("not sticky"), "{said}");
        }
    }
}
