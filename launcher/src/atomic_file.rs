//! Replacing a file in the operator's own dirs (pack's and sign's outputs,
//! the fleet's state): a fresh sibling temp file (random name, created
//! exclusively), written, synced, then renamed over the target, so a reader
//! sees the old file or the new one, never half of one. In a dir root shares
//! with other uids on a node, `private_fs::PrivateDir::write_atomic` does the same
//! by descriptor.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use anyhow::Context;
use camino::Utf8Path;

/// Writes `bytes` to `path` with `mode`, all at once.
pub fn write(path: &Utf8Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_str().is_empty())
        .unwrap_or(Utf8Path::new("."));
    let name = path.file_name().unwrap_or("out");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {dir}"))?;
    tmp.write_all(bytes)
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
        })
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {path}"))?;
    // On failure the temp file is removed when `tmp` drops.
    tmp.persist(path)
        .with_context(|| format!("cannot write {path}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_whole_with_the_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = camino::Utf8PathBuf::from_path_buf(dir.path().join("out")).unwrap();
        std::fs::write(&path, "old and longer").unwrap();
        super::write(&path, b"new", 0o640).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_missing_dir_is_named() {
        // Missing below a temp dir: were it ever made, it is made there.
        let dir = tempfile::tempdir().unwrap();
        let missing = camino::Utf8PathBuf::from_path_buf(dir.path().join("missing")).unwrap();
        let err = super::write(&missing.join("x"), b"", 0o644).unwrap_err();
        assert!(format!("{err:#}").contains(missing.as_str()), "{err:#}");
        assert!(!missing.exists());
    }
}
