//! Atomic, permission-aware writes of a set of files into one directory.
//!
//! Every file of a change is first written to a temporary file next to its target and
//! synced; only when all of them are on disk are they renamed into place. A failure while
//! staging removes the temporaries and leaves every existing file untouched.
//!
//! Group grants: an operator may let one other service read a secret file by giving the file
//! that service's group and mode 0640 (the compose stack does this for each key's consumer).
//! Replacing such a file keeps the grant, so a rotation never cuts its consumer off; a file
//! with any wider permission is no grant, and its replacement is owner-only. A writer that may not keep the grant (it is
//! not a member of the group) fails before anything is renamed into place.

use std::{
    fs::{self, File, OpenOptions},
    io::Write,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// File mode for private keys, tokens and anything else only the owner may read.
pub const SECRET_MODE: u32 = 0o600;
/// File mode for certificates and public keys.
pub const PUBLIC_MODE: u32 = 0o644;
/// Directory mode for a certs directory this crate creates.
pub const DIR_MODE: u32 = 0o700;
/// The one permission a group grant adds to [`SECRET_MODE`].
pub const GROUP_READ: u32 = 0o040;
/// The widest directory mode kept as found: group may list, others may only traverse (so a
/// granted file can be opened by name, and nothing can be listed or created by others).
pub const DIR_MODE_MAX: u32 = 0o751;

/// Whether a file written with `wanted` may have `actual` on disk: exactly `wanted`, or a
/// secret file with a group grant.
pub fn mode_acceptable(actual: u32, wanted: u32) -> bool {
    actual == wanted || (wanted == SECRET_MODE && actual == SECRET_MODE | GROUP_READ)
}

/// Whether a directory mode gives nobody but the owner more than traversal and group listing.
pub fn dir_mode_acceptable(mode: u32) -> bool {
    mode & !DIR_MODE_MAX == 0 && mode & 0o700 == 0o700
}

/// One file to be written.
pub struct PendingFile {
    pub name: String,
    pub contents: zeroize::Zeroizing<Vec<u8>>,
    pub mode: u32,
}

impl std::fmt::Debug for PendingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingFile")
            .field("name", &self.name)
            .field("len", &self.contents.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// Create `dir` (mode 0700) if needed; refuse a path that exists but is not a directory.
/// An existing directory keeps a mode within [`DIR_MODE_MAX`] (an operator's traversal
/// grant); anything wider is tightened to 0700.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(Error::NotADirectory(dir.to_owned())),
        Ok(m) if dir_mode_acceptable(m.permissions().mode() & 0o777) => return Ok(()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io("creating directory", dir))?;
        }
        Err(e) => return Err(io("reading", dir)(e)),
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
        .map_err(io("setting permissions on", dir))
}

/// Read a file, `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", path)(e)),
    }
}

/// How a staged file's bytes reach its temporary; a seam for the tests of a failing write.
type Writer = fn(&mut File, &[u8]) -> std::io::Result<()>;

/// Write all `files` into `dir` atomically as described in the module docs.
pub fn write_all(dir: &Path, files: &[PendingFile]) -> Result<()> {
    write_all_with(dir, files, |file, bytes| file.write_all(bytes))
}

fn write_all_with(dir: &Path, files: &[PendingFile], write: Writer) -> Result<()> {
    let staged: Vec<(PathBuf, PathBuf)> = files
        .iter()
        .map(|f| {
            let tmp = dir.join(format!(".{}.tmp-{}", f.name, uuid::Uuid::new_v4().simple()));
            (tmp, dir.join(&f.name))
        })
        .collect();
    // Stage in parallel: each temporary is fsynced, and concurrent fsyncs share journal
    // commits, which is most of the cost of a cold run.
    let results: Vec<Result<()>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .zip(&staged)
            .map(|(f, (tmp, target))| scope.spawn(move || stage(f, tmp, target, write)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Io {
                        action: "staging",
                        path: dir.to_owned(),
                        source: std::io::Error::other("writer thread panicked"),
                    })
                })
            })
            .collect()
    });
    if let Some(err) = results.into_iter().find_map(Result::err) {
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return Err(err);
    }
    for (tmp, target) in &staged {
        fs::rename(tmp, target).map_err(io("renaming into place", target))?;
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))
}

/// A staging failure. A full file system is reported against the file that was to be
/// replaced: the temporary is gone by the time the operator reads the message, and "no space"
/// is the one cause they must act on outside Bulwark.
fn staging<'a>(
    action: &'static str,
    tmp: &'a Path,
    target: &'a Path,
) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |source| {
        if source.kind() == std::io::ErrorKind::StorageFull {
            Error::NoSpace {
                action,
                path: target.to_owned(),
                source,
            }
        } else {
            io(action, tmp)(source)
        }
    }
}

fn stage(f: &PendingFile, tmp: &Path, target: &Path, write: Writer) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(f.mode)
        .open(tmp)
        .map_err(staging("creating", tmp, target))?;
    let mut mode = f.mode;
    if f.mode == SECRET_MODE {
        if let Some(old) = fs::metadata(target)
            .ok()
            // Only a deliberate grant (group read, nothing for others) is kept; a file others
            // could read or write was a mistake, and its replacement is owner-only.
            .filter(|m| m.mode() & 0o077 == GROUP_READ)
        {
            std::os::unix::fs::fchown(&file, None, Some(old.gid())).map_err(|source| {
                Error::GroupGrant {
                    path: target.to_owned(),
                    gid: old.gid(),
                    source,
                }
            })?;
            mode |= GROUP_READ;
        }
    }
    // `mode` is filtered by the umask; set it explicitly so 0644 stays 0644.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io("setting permissions on", tmp))?;
    // A delayed-allocation file system may report a full disk only at the sync.
    write(&mut file, &f.contents).map_err(staging("writing", tmp, target))?;
    file.sync_all().map_err(staging("syncing", tmp, target))
}

/// The permission bits of `path`.
pub fn mode_of(path: &Path) -> Result<u32> {
    Ok(fs::metadata(path)
        .map_err(io("reading", path))?
        .permissions()
        .mode()
        & 0o777)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, contents: &[u8]) -> PendingFile {
        PendingFile {
            name: name.to_owned(),
            contents: zeroize::Zeroizing::new(contents.to_vec()),
            mode: PUBLIC_MODE,
        }
    }

    /// Writes half of `b.crt`'s new bytes, then fails as a full disk does; the other files
    /// are written whole.
    fn full_disk(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.starts_with(b"new b") {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        file.write_all(bytes)
    }

    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .expect("listing the test dir")
            .map(|e| {
                let e = e.expect("a directory entry");
                let bytes = fs::read(e.path()).expect("reading a test file");
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_full_disk_replaces_nothing_leaves_no_temporary_and_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(
            dir.path(),
            &[file("a.crt", b"old a"), file("b.crt", b"old b")],
        )
        .expect("first write");
        let before = listing(dir.path());

        let files = [
            file("a.crt", b"new a, staged whole"),
            file("b.crt", b"new b, cut short by the full disk"),
            file("c.crt", b"new c, a file that did not exist"),
        ];
        let err = write_all_with(dir.path(), &files, full_disk).expect_err("the disk is full");

        assert_eq!(
            listing(dir.path()),
            before,
            "a file changed or a temporary was left"
        );
        let target = dir.path().join("b.crt");
        assert!(
            matches!(&err, Error::NoSpace { action: "writing", path, .. } if *path == target),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "writing {}: the file system is full (",
                target.display()
            )),
            "{text}"
        );
        assert!(text.contains("No space left on device"), "{text}");
        assert!(text.contains("nothing was replaced"), "{text}");

        // The same change goes through once there is room.
        write_all(dir.path(), &files).expect("write with room");
        assert_eq!(
            fs::read(&target).expect("b.crt"),
            b"new b, cut short by the full disk"
        );
    }

    #[test]
    fn other_staging_failures_name_the_temporary() {
        let (tmp, target) = (Path::new("/d/.a.tmp-1"), Path::new("/d/a"));
        let err = staging("writing", tmp, target)(std::io::Error::from_raw_os_error(5)); // EIO
        assert!(
            matches!(&err, Error::Io { path, .. } if path == tmp),
            "{err:?}"
        );
    }
}
