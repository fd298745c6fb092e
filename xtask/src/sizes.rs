//! No source file over [`MAX_LINES`] lines: a file that long holds more
//! than one idea, and the redesign split the ones that were. Test files
//! (`tests.rs`, `*_tests.rs`, and everything under a crate's `tests/`) are
//! not counted.

use std::path::{Path, PathBuf};

use crate::Result;

pub const MAX_LINES: usize = 600;

/// A page of the browser app (`app/src/ui/pages/`) is a view: its protocol
/// and crypto belong in a service module beside it (ui/records.rs,
/// ui/sharing.rs), so a page holds less.
pub const MAX_PAGE_LINES: usize = 500;

/// The crates whose `src/` is checked.
const CRATES: &[&str] = &["core", "api", "app", "kdf-worker", "viewer", "ledger", "services", "server", "xtask"];

pub fn check(root: &Path) -> Result {
    let mut files = Vec::new();
    for name in CRATES {
        sources(&root.join(name).join("src"), &mut files)?;
    }
    let over = too_long(&files)?;
    if over.is_empty() {
        println!("no source file over {MAX_LINES} lines ({} files)", files.len());
        return Ok(());
    }
    let list: Vec<String> = over
        .iter()
        .map(|(path, n)| format!("{} ({n} lines)", path.strip_prefix(root).unwrap_or(path).display()))
        .collect();
    Err(format!(
        "source files over {MAX_LINES} lines, or pages over {MAX_PAGE_LINES} (split them by what they do):\n  {}",
        list.join("\n  ")
    ))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) -> Result {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            sources(&path, out)?;
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            out.push(path);
        }
    }
    Ok(())
}

fn limit(path: &Path) -> usize {
    if path.to_string_lossy().replace('\\', "/").contains("app/src/ui/pages/") { MAX_PAGE_LINES } else { MAX_LINES }
}

/// The files of `files` longer than their limit, with their lengths.
fn too_long(files: &[PathBuf]) -> Result<Vec<(PathBuf, usize)>> {
    let mut over = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let lines = text.lines().count();
        if lines > limit(path) {
            over.push((path.clone(), lines));
        }
    }
    over.sort();
    Ok(over)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_file_is_found_and_test_files_are_not_counted() {
        let dir = std::env::temp_dir().join(format!("sizes-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        let write = |name: &str, lines: usize| std::fs::write(dir.join(name), "x\n".repeat(lines)).unwrap();
        write("short.rs", MAX_LINES);
        write("a/long.rs", MAX_LINES + 1);
        write("a/tests.rs", 5 * MAX_LINES);
        write("a/long_tests.rs", 5 * MAX_LINES);
        write("notes.md", 5 * MAX_LINES);
        let mut files = Vec::new();
        sources(&dir, &mut files).unwrap();
        files.sort();
        assert_eq!(files, vec![dir.join("a/long.rs"), dir.join("short.rs")]);
        assert_eq!(too_long(&files).unwrap(), vec![(dir.join("a/long.rs"), MAX_LINES + 1)]);
        // A page of the app has the lower limit.
        std::fs::create_dir_all(dir.join("app/src/ui/pages")).unwrap();
        write("app/src/ui/pages/page.rs", MAX_PAGE_LINES + 1);
        write("app/src/ui/other.rs", MAX_PAGE_LINES + 1);
        let files = vec![dir.join("app/src/ui/pages/page.rs"), dir.join("app/src/ui/other.rs")];
        assert_eq!(too_long(&files).unwrap(), vec![(dir.join("app/src/ui/pages/page.rs"), MAX_PAGE_LINES + 1)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
