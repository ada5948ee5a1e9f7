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

/// Write all `files` into `dir` atomically as described in the module docs.
pub fn write_all(dir: &Path, files: &[PendingFile]) -> Result<()> {
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
            .map(|(f, (tmp, target))| scope.spawn(move || stage(f, tmp, target)))
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

fn stage(f: &PendingFile, tmp: &Path, target: &Path) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(f.mode)
        .open(tmp)
        .map_err(io("creating", tmp))?;
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
    file.write_all(&f.contents).map_err(io("writing", tmp))?;
    file.sync_all().map_err(io("syncing", tmp))
}

/// The permission bits of `path`.
pub fn mode_of(path: &Path) -> Result<u32> {
    Ok(fs::metadata(path)
        .map_err(io("reading", path))?
        .permissions()
        .mode()
        & 0o777)
}
