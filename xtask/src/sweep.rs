//! Keeps the shared target directory from growing without end: every clone
//! (CI clones afresh) and every feature set builds the workspace's crates
//! and test binaries under new names, and nothing ever removes the old ones
//! (the cache reached 78 GB and filled the disk). Before building, outputs
//! nobody read or wrote for a few days are deleted; cargo rebuilds
//! whatever it still needs.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// Outputs untouched this long are deleted.
const STALE: Duration = Duration::from_secs(3 * 24 * 3600);

/// Deletes stale files in every `deps` directory and stale `incremental`
/// sessions under `target`; prints what it freed.
pub fn sweep(target: &Path) {
    // Only a directory cargo made its target directory (it writes this tag
    // there): a mistyped CARGO_TARGET_DIR never loses anything else.
    if !target.join("CACHEDIR.TAG").is_file() {
        return;
    }
    let now = SystemTime::now();
    let mut freed = 0u64;
    let mut removed = 0usize;
    let Ok(profiles) = std::fs::read_dir(target) else { return };
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    for profile in profiles.flatten() {
        let path = profile.path();
        dirs.push(path.join("deps"));
        dirs.push(path.join("incremental"));
        // Cross builds: target/<triple>/<profile>/…
        for nested in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            dirs.push(nested.path().join("deps"));
            dirs.push(nested.path().join("incremental"));
        }
    }
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if last_used(&path).is_none_or(|t| now.duration_since(t).unwrap_or_default() <= STALE) {
                continue;
            }
            let size = size_of(&path);
            let gone = if path.is_dir() {
                std::fs::remove_dir_all(&path).is_ok()
            } else {
                std::fs::remove_file(&path).is_ok()
            };
            if gone {
                freed += size;
                removed += 1;
            }
        }
    }
    if removed > 0 {
        println!("cache: removed {removed} build outputs unused for 3 days ({:.1} GB)", freed as f64 / 1e9);
    }
}

/// When `path` (or, for a directory, anything in it) was last read or
/// written, as far as the file system says.
fn last_used(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if let Ok(accessed) = meta.accessed() {
        newest = newest.max(accessed);
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if let Some(t) = last_used(&entry.path()) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).into_iter().flatten().flatten().map(|e| size_of(&e.path())).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stale_outputs_go() {
        let dir = tempfile_dir();
        let deps = dir.join("debug/deps");
        std::fs::create_dir_all(&deps).unwrap();
        std::fs::write(dir.join("CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55").unwrap();
        let (old, fresh) = (deps.join("old-1234"), deps.join("fresh-5678"));
        std::fs::write(&old, vec![0u8; 1000]).unwrap();
        std::fs::write(&fresh, b"x").unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
        let file = std::fs::File::options().write(true).open(&old).unwrap();
        file.set_times(std::fs::FileTimes::new().set_accessed(long_ago).set_modified(long_ago)).unwrap();
        drop(file);
        std::fs::rename(dir.join("CACHEDIR.TAG"), dir.join("not-a-tag")).unwrap();
        sweep(&dir);
        assert!(old.exists(), "not a cargo target directory: nothing goes");
        std::fs::rename(dir.join("not-a-tag"), dir.join("CACHEDIR.TAG")).unwrap();
        sweep(&dir);
        assert!(!old.exists(), "unused for ten days");
        assert!(fresh.exists(), "just written");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
