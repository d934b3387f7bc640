//! The trust rule for the file system, in one place. Trusted are root and
//! the caller's own uid; every other uid on the node is not (the app user,
//! anything escaping its containers, anyone with a shell). What such a user
//! can write must never decide what we execute, write or report.
//!
//! So a directory we use is reached by walking its path one component at a
//! time with descriptors (`openat` with `O_NOFOLLOW`), checking each on the
//! opened descriptor: owned by a trusted uid, and writable by nobody else
//! unless sticky (then the next entry must be ours, which a sticky dir keeps
//! others from renaming). The last component is made by us, 0700, or, when
//! it exists, must be ours and writable by us alone. Beneath such a
//! [`PrivateDir`] no other uid can create, rename or replace anything, so
//! paths below it are as good as descriptors; files are still created
//! exclusively and without following symlinks.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};

use camino::{Utf8Path, Utf8PathBuf};
use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Symlinks followed while walking one path; more is a loop.
const MAX_SYMLINKS: usize = 40;

/// The uid this process acts as.
pub fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == my_uid()
}

/// Why a path cannot be trusted (or used), in words for the operator.
#[derive(Debug)]
pub struct Untrusted {
    pub path: Utf8PathBuf,
    pub why: String,
    /// Nothing is there at all (as opposed to something we refuse).
    pub missing: bool,
    /// A file that is not a directory (nor a symlink) is there: in nobody's
    /// way, and no sign of an attack (the README's bundle is /tmp/archy-gate).
    pub not_a_dir: bool,
}

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.why)
    }
}

impl std::error::Error for Untrusted {}

fn untrusted(path: &Utf8Path, why: impl Into<String>) -> Untrusted {
    Untrusted {
        path: path.to_owned(),
        why: why.into(),
        missing: false,
        not_a_dir: false,
    }
}

fn missing(path: &Utf8Path) -> Untrusted {
    Untrusted {
        missing: true,
        ..untrusted(path, "it does not exist")
    }
}

fn io_untrusted(path: &Utf8Path, what: &str, e: impl Into<io::Error>) -> Untrusted {
    untrusted(path, format!("{what}: {}", e.into()))
}

/// Who owns what, in the words every refusal uses.
fn owner_words(uid: u32) -> String {
    let me = my_uid();
    format!("owned by uid {uid}, not by you (uid {me}) or root: another user made it")
}

/// A directory only we (and root) can write, with ancestors no other uid
/// can swap. Holds its descriptor; the path is for messages and for
/// programs that need one (the gate, its environment).
pub struct PrivateDir {
    fd: OwnedFd,
    path: Utf8PathBuf,
}

/// Whether [`PrivateDir::open`] may create what is missing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Make missing directories (0700), the last one included.
    Yes,
    /// Only open what exists.
    No,
}

impl PrivateDir {
    /// Walks `path` from `/`, checking every directory on the way, and opens
    /// (or, with `Create::Yes`, makes) its last component as a private dir.
    pub fn open(path: &Utf8Path, create: Create) -> Result<PrivateDir, Untrusted> {
        let (fd, path) = walk(path, create, check_private)?;
        Ok(PrivateDir { fd, path })
    }

    pub fn path(&self) -> &Utf8Path {
        &self.path
    }

    /// Makes this dir 0700: readable by us alone, records and logs included.
    pub fn restrict(&self) -> io::Result<()> {
        rfs::fchmod(&self.fd, Mode::RWXU).map_err(io::Error::from)
    }

    /// A private dir beneath this one: made 0700 unless it exists, and then
    /// it must be ours and writable by us alone.
    pub fn ensure_dir(&self, name: &str) -> Result<PrivateDir, Untrusted> {
        let path = self.path.join(name);
        match rfs::mkdirat(&self.fd, name, Mode::RWXU) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io_untrusted(&path, "cannot create it", e)),
        }
        self.open_dir(name)
    }

    /// A new private dir beneath this one; `None` when the name is taken.
    pub fn create_dir(&self, name: &str) -> Result<Option<PrivateDir>, Untrusted> {
        let path = self.path.join(name);
        match rfs::mkdirat(&self.fd, name, Mode::RWXU) {
            Ok(()) => self.open_dir(name).map(Some),
            Err(Errno::EXIST) => Ok(None),
            Err(e) => Err(io_untrusted(&path, "cannot create it", e)),
        }
    }

    /// An existing dir beneath this one, if it is ours alone.
    pub fn open_dir(&self, name: &str) -> Result<PrivateDir, Untrusted> {
        let path = self.path.join(name);
        let fd = rfs::openat(&self.fd, name, dir_flags(), Mode::empty()).map_err(|e| match e {
            Errno::LOOP | Errno::NOTDIR => untrusted(&path, "it is a symlink or not a directory"),
            Errno::NOENT => missing(&path),
            e => io_untrusted(&path, "cannot open it", e),
        })?;
        check_private(&fd, &path)?;
        Ok(PrivateDir { fd, path })
    }

    /// Creates `name` exclusively (never through a symlink, never an
    /// existing file) with exactly `mode`, open for writing.
    pub fn create_file(&self, name: &str, mode: u32) -> io::Result<File> {
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode as _),
        )?;
        // The umask narrowed it; the caller's mode is the truth.
        rfs::fchmod(&fd, Mode::from_raw_mode(mode as _))?;
        Ok(File::from(fd))
    }

    /// Opens `name` for reading: a regular file we own, not a symlink.
    pub fn open_file(&self, name: &str) -> io::Result<File> {
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )?;
        check_own_file(&fd, &self.path.join(name))?;
        Ok(File::from(fd))
    }

    /// Opens `name` for reading and writing, creating it (`mode`) if
    /// missing: a regular file we own, never through a symlink.
    pub fn open_or_create_file(&self, name: &str, mode: u32) -> io::Result<File> {
        let fd = rfs::openat(
            &self.fd,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::from_raw_mode(mode as _),
        )?;
        check_own_file(&fd, &self.path.join(name))?;
        rfs::fchmod(&fd, Mode::from_raw_mode(mode as _))?;
        Ok(File::from(fd))
    }

    /// Replaces `name` atomically with `bytes` (mode `mode`): a reader sees
    /// the old file or the new one, never half of one.
    pub fn write_atomic(&self, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
        let (tmp, mut file) = self.create_temp_file(name, mode)?;
        let written = file.write_all(bytes);
        if let Err(e) = written.and_then(|()| {
            rfs::renameat(&self.fd, tmp.as_str(), &self.fd, name).map_err(io::Error::from)
        }) {
            let _ = rfs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty());
            return Err(e);
        }
        Ok(())
    }

    /// A new file beside `name`, for a write-then-rename.
    fn create_temp_file(&self, name: &str, mode: u32) -> io::Result<(String, File)> {
        for n in 0..1000u32 {
            let tmp = format!(".{name}.tmp-{}-{n}", std::process::id());
            match self.create_file(&tmp, mode) {
                Ok(file) => return Ok((tmp, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other(format!(
            "cannot make a temporary file for {name} in {}",
            self.path
        )))
    }

    /// Removes `name` and everything beneath it, if it is there. (std's
    /// remove_dir_all works on descriptors and never follows symlinks.)
    pub fn remove_all(&self, name: &str) -> io::Result<()> {
        match std::fs::remove_dir_all(self.path.join(name)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                rfs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(io::Error::from)
            }
            other => other,
        }
    }

    /// Renames `from` to `to`, both beneath this dir.
    pub fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rfs::renameat(&self.fd, from, &self.fd, to).map_err(io::Error::from)
    }

    /// The names beneath this dir.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for item in std::fs::read_dir(&self.path)? {
            if let Ok(name) = item?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// Walks `path` from `/` with descriptors, checking every dir on the way as
/// an ancestor and the last one with `check_last`.
fn walk(
    path: &Utf8Path,
    create: Create,
    check_last: fn(&OwnedFd, &Utf8Path) -> Result<(), Untrusted>,
) -> Result<(OwnedFd, Utf8PathBuf), Untrusted> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        let cwd = std::env::current_dir().map_err(|e| io_untrusted(path, "no cwd", e))?;
        Utf8PathBuf::from_path_buf(cwd)
            .map_err(|_| untrusted(path, "the current directory is not UTF-8"))?
            .join(path)
    };
    let mut pending = components(&absolute);
    pending.reverse();
    let root = || {
        let fd = rfs::open("/", dir_flags(), Mode::empty())
            .map_err(|e| io_untrusted(&absolute, "cannot open /", e))?;
        check_ancestor(&fd, Utf8Path::new("/"))?;
        Ok::<_, Untrusted>(vec![(fd, Utf8PathBuf::from("/"))])
    };
    // The dirs walked so far, `/` first: `..` in a symlink goes back one.
    let mut walked = root()?;
    let mut hops = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if walked.len() > 1 {
                walked.pop();
            }
            continue;
        }
        let last = pending.is_empty();
        let (fd, at) = walked.last().expect("/ stays");
        let here = at.join(&name);
        if create == Create::Yes {
            match rfs::mkdirat(fd, name.as_str(), Mode::RWXU) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(io_untrusted(&here, "cannot create it", e)),
            }
        }
        let opened = rfs::openat(fd, name.as_str(), dir_flags(), Mode::empty());
        match opened {
            Ok(next) => {
                if last {
                    check_last(&next, &here)?;
                } else {
                    check_ancestor(&next, &here)?;
                }
                walked.push((next, here));
            }
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => {
                // A symlink, or not a directory at all: a symlink that
                // a trusted uid made, in a dir we trust, is followed.
                let st = rfs::statat(fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| io_untrusted(&here, "cannot look at it", e))?;
                if FileType::from_raw_mode(st.st_mode as _) != FileType::Symlink {
                    return Err(Untrusted {
                        not_a_dir: true,
                        ..untrusted(&here, "it is not a directory")
                    });
                }
                if !trusted_owner(st.st_uid as u32) {
                    return Err(untrusted(
                        &here,
                        format!("it is a symlink {}", owner_words(st.st_uid as u32)),
                    ));
                }
                if last {
                    // Our own dir is never reached through a link: what
                    // we report and remove must be where it says.
                    return Err(untrusted(&here, "it is a symlink, not a directory"));
                }
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err(untrusted(&here, "too many symlinks"));
                }
                let target = rfs::readlinkat(fd, name.as_str(), Vec::new())
                    .map_err(|e| io_untrusted(&here, "cannot read the symlink", e))?;
                let target = Utf8PathBuf::from(
                    target
                        .into_string()
                        .map_err(|_| untrusted(&here, "its symlink target is not UTF-8"))?,
                );
                if target.is_absolute() {
                    walked = root()?;
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            Err(Errno::NOENT) => return Err(missing(&here)),
            Err(e) => return Err(io_untrusted(&here, "cannot open it", e)),
        }
    }
    let (fd, path) = walked.pop().expect("/ stays");
    if walked.is_empty() {
        return Err(untrusted(&path, "/ itself is not a work dir"));
    }
    Ok((fd, path))
}

/// Opens a file root acts on but did not make (the node's trust file): it
/// and every dir above it owned by root or the caller and writable by no
/// one else (a dir may be sticky), never through a symlink; the checks are
/// made on the descriptors that are then used. `None` when it is absent.
pub fn open_trusted_file(path: &Utf8Path) -> Result<Option<File>, Untrusted> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(untrusted(path, "name a file by its absolute path"));
    };
    let dir = match walk(dir, Create::No, check_ancestor) {
        Ok((fd, _)) => fd,
        Err(e) if e.missing => return Ok(None),
        Err(e) => return Err(e),
    };
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let fd = match rfs::openat(&dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err(untrusted(path, "it is a symlink, not a plain file")),
        Err(e) => return Err(io_untrusted(path, "cannot open it", e)),
    };
    let st = rfs::fstat(&fd).map_err(|e| io_untrusted(path, "cannot look at it", e))?;
    if FileType::from_raw_mode(st.st_mode as _) != FileType::RegularFile {
        return Err(untrusted(path, "it is not a plain file"));
    }
    let uid = st.st_uid as u32;
    if !trusted_owner(uid) {
        return Err(untrusted(path, owner_words(uid)));
    }
    let mode = st.st_mode as u32 & 0o7777;
    if mode & 0o022 != 0 {
        return Err(untrusted(
            path,
            format!("others can write it (mode {mode:04o})"),
        ));
    }
    rfs::fcntl_setfl(&fd, OFlags::empty()).map_err(|e| io_untrusted(path, "cannot read it", e))?;
    Ok(Some(File::from(fd)))
}

impl AsFd for PrivateDir {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// A path's names, `..` kept (the walk resolves it), `.` dropped.
fn components(path: &Utf8Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            camino::Utf8Component::Normal(name) => Some(name.to_string()),
            camino::Utf8Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// A directory on the way: owned by a trusted uid, and writable by no one
/// else unless sticky (which keeps others from renaming what we own there).
fn check_ancestor(fd: &OwnedFd, path: &Utf8Path) -> Result<(), Untrusted> {
    let st = rfs::fstat(fd).map_err(|e| io_untrusted(path, "cannot look at it", e))?;
    let uid = st.st_uid as u32;
    if !trusted_owner(uid) {
        return Err(untrusted(path, owner_words(uid)));
    }
    let mode = st.st_mode as u32;
    if mode & 0o022 != 0 && mode & 0o1000 == 0 {
        return Err(untrusted(
            path,
            format!(
                "others can write it (mode {:04o}) and it is not sticky, so they could swap what lies beneath",
                mode & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Our own dir: ours, and writable by us alone.
fn check_private(fd: &OwnedFd, path: &Utf8Path) -> Result<(), Untrusted> {
    let st = rfs::fstat(fd).map_err(|e| io_untrusted(path, "cannot look at it", e))?;
    let uid = st.st_uid as u32;
    if uid != my_uid() {
        return Err(untrusted(path, owner_words(uid)));
    }
    let mode = st.st_mode as u32 & 0o7777;
    if mode & 0o022 != 0 {
        return Err(untrusted(
            path,
            format!(
                "others can write it (mode {mode:04o}), so they may have planted anything in it; remove it or chmod it 700"
            ),
        ));
    }
    Ok(())
}

fn check_own_file(fd: &OwnedFd, path: &Utf8Path) -> io::Result<()> {
    let st = rfs::fstat(fd)?;
    if FileType::from_raw_mode(st.st_mode as _) != FileType::RegularFile {
        return Err(io::Error::other(format!("{path} is not a regular file")));
    }
    let uid = st.st_uid as u32;
    if uid != my_uid() {
        return Err(io::Error::other(format!("{path} is {}", owner_words(uid))));
    }
    // NONBLOCK guarded the open against a FIFO; reads block as usual.
    rfs::fcntl_setfl(fd, rfs::fcntl_getfl(fd)? & !OFlags::NONBLOCK)?;
    Ok(())
}
