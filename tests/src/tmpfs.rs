//! A small `tmpfs` mounted for one test, so that "disk full" is a real `ENOSPC` from the
//! kernel rather than a simulated one.
//!
//! Mounting needs root (or `CAP_SYS_ADMIN`). Without it the test fails with a message saying
//! so: a disk-full test that silently passes would prove nothing. The mount is removed when
//! the [`Tmpfs`] is dropped (lazily if something still holds a file open there).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A mounted `tmpfs` of a fixed size.
#[derive(Debug)]
pub struct Tmpfs {
    /// Keeps the mount point's parent alive; removed after the unmount.
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a `tmpfs` of `bytes` bytes on a new temporary directory.
    ///
    /// # Panics
    /// If the mount fails (not root, no `mount`, or a container without `CAP_SYS_ADMIN`).
    pub fn mount(bytes: u64) -> Self {
        let parent = tempfile::tempdir().expect("temporary directory");
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path).expect("create the mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("tmpfs")
            .arg(&path)
            .output();
        match output {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "the disk-full tests need a small filesystem to fill: `mount -t tmpfs` on {} \
                 failed ({}): {}. Run them as root (or with CAP_SYS_ADMIN); they fail rather \
                 than pass without testing anything.",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(err) => panic!(
                "the disk-full tests need `mount` (util-linux) to mount a tmpfs, and root: {err}"
            ),
        }
        Self {
            _parent: parent,
            path,
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the filesystem with a ballast file until the kernel says `ENOSPC`; returns the
    /// file's path (delete it to give the space back) and its size.
    ///
    /// # Panics
    /// On any error other than a full disk.
    pub fn fill(&self, name: &str) -> (PathBuf, u64) {
        let path = self.path.join(name);
        let mut file = File::create(&path).expect("create the ballast file");
        let mut written = 0u64;
        for chunk in [64 << 10, 4 << 10, 512, 1] {
            let buf = vec![0xA5u8; chunk];
            loop {
                match file.write(&buf) {
                    Ok(0) => break,
                    Ok(n) => written += n as u64,
                    Err(err) if is_full(&err) => break,
                    Err(err) => panic!("writing the ballast file: {err}"),
                }
            }
        }
        (path, written)
    }
}

fn is_full(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::StorageFull
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still has a file open there (a failing test's broker): detach it, so
            // the mount goes once the last file is closed.
            let lazy = Command::new("umount").arg("-l").arg(&self.path).status();
            if !lazy.is_ok_and(|s| s.success()) {
                eprintln!("could not unmount the tmpfs at {}", self.path.display());
            }
        }
    }
}
