//! The Solidity contracts: compiled by the solc-js version pinned in
//! contracts/package-lock.json; the artifacts are committed, and the test
//! command proves a rebuild is byte-identical to them.

use std::path::Path;

use crate::{Env, Result, run_cmd, step, tools};

/// `cargo xtask contracts`: rebuild contracts/artifacts from the sources.
pub fn build(env: &Env) -> Result {
    tools::ensure_npm_packages(env, "contracts")?;
    step("compile contracts (solc)", || compile(env, &env.root.join("contracts/artifacts")))
}

/// Compiles into a scratch folder and compares with what is committed.
pub fn check(env: &Env) -> Result {
    tools::ensure_npm_packages(env, "contracts")?;
    step("contract artifacts match their sources", || {
        let scratch = env.target.join("contracts-check");
        let _ = std::fs::remove_dir_all(&scratch);
        compile(env, &scratch)?;
        compare(&env.root.join("contracts/artifacts"), &scratch)
    })
}

fn compile(env: &Env, out: &Path) -> Result {
    let mut cmd = env.cmd("node");
    cmd.current_dir(env.root.join("contracts")).arg("build.mjs").arg(out);
    run_cmd(cmd)
}

fn compare(committed: &Path, rebuilt: &Path) -> Result {
    let names = |dir: &Path| -> Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    };
    let (a, b) = (names(committed)?, names(rebuilt)?);
    if a != b {
        return Err(format!("committed artifacts {a:?} differ from a rebuild {b:?}: run `cargo xtask contracts`"));
    }
    for name in a {
        let (x, y) = (std::fs::read(committed.join(&name)), std::fs::read(rebuilt.join(&name)));
        if x.map_err(|e| e.to_string())? != y.map_err(|e| e.to_string())? {
            return Err(format!("contracts/artifacts/{name} does not match its source: run `cargo xtask contracts`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_catches_a_changed_byte_and_a_missing_file() {
        let base = std::env::temp_dir().join(format!("xtask-contracts-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("C.json"), "{1}").unwrap();
        std::fs::write(b.join("C.json"), "{1}").unwrap();
        assert!(compare(&a, &b).is_ok());
        std::fs::write(b.join("C.json"), "{2}").unwrap();
        assert!(compare(&a, &b).unwrap_err().contains("does not match"));
        std::fs::write(b.join("C.json"), "{1}").unwrap();
        std::fs::write(b.join("D.json"), "{}").unwrap();
        assert!(compare(&a, &b).unwrap_err().contains("differ"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
