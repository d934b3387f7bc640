//! A bare node, standing in for an Archy node that has nothing of ours: a
//! chroot holding only busybox applets (no bash, no jq, no bats, no shared
//! libraries), with /proc and /dev/null. Commands run in a private mount
//! namespace, so /proc and any tmpfs vanish with them.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Run;

pub struct BareNode {
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl BareNode {
    pub fn new() -> BareNode {
        let dir = tempfile::tempdir().unwrap();
        let mut node = BareNode::at(dir.path().join("node"));
        node._dir = Some(dir);
        node
    }

    /// The same node built at `root` (which must not exist yet); the caller
    /// removes it.
    pub fn at(root: PathBuf) -> BareNode {
        let busybox = Path::new("/bin/busybox");
        assert!(
            busybox.exists(),
            "the bare node needs Debian's busybox-static: apt-get install busybox-static"
        );
        for d in [
            "bin", "usr/bin", "tmp", "var/tmp", "proc", "dev", "root", "etc",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for d in ["tmp", "var/tmp"] {
            fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o1777)).unwrap();
        }
        super::copy_executable(busybox, &root.join("bin/busybox"), 0o755);
        let list = Command::new(busybox).arg("--list").output().unwrap();
        assert!(list.status.success());
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                symlink("busybox", root.join("bin").join(applet)).unwrap();
            }
        }
        symlink("/bin/busybox", root.join("usr/bin/env")).unwrap();
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        let status = Command::new("mknod")
            .arg(root.join("dev/null"))
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(status.success(), "mknod /dev/null (needs root)");
        fs::set_permissions(root.join("dev/null"), fs::Permissions::from_mode(0o666)).unwrap();
        // bats reads process substitutions through /dev/fd, as every real node allows.
        symlink("/proc/self/fd", root.join("dev/fd")).unwrap();
        BareNode { root, _dir: None }
    }

    /// A path inside the node, as seen from the host.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    pub fn put(&self, inside: &str, bytes: &[u8], mode: u32) {
        let path = self.path(inside);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        super::write_executable(&path, bytes, mode);
    }

    /// Runs `script` with the node's /bin/sh, inside the chroot, with a
    /// clean environment plus `env`. `setup` runs first, outside the chroot
    /// but inside the same private mount namespace, with `$ROOT` set.
    pub fn sh_with(&self, setup: &str, env: &[(&str, &str)], script: &str) -> Run {
        let outer = r#"
            set -e
            mount -t proc proc "$ROOT/proc"
            eval "$SETUP"
            exec chroot "$ROOT" /usr/bin/env -i "$@"
        "#;
        let mut inner: Vec<String> = vec![
            "PATH=/bin:/usr/bin".into(),
            "HOME=/root".into(),
            "TERM=dumb".into(),
        ];
        inner.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        inner.extend(["/bin/sh".into(), "-c".into(), script.into()]);
        let output = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                outer,
                "sh",
            ])
            .args(&inner)
            .env("ROOT", &self.root)
            .env("SETUP", setup)
            .output()
            .expect("unshare runs");
        Run::of(output)
    }

    pub fn sh(&self, script: &str) -> Run {
        self.sh_with("", &[], script)
    }
}
