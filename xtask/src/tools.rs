//! Installing what a fresh machine lacks: the wasm32 target, Trunk,
//! wasm-bindgen-cli (at the Cargo.lock version), wasm-opt (npm binaryen),
//! Chromium (Debian) and the browser tests' npm packages.

use std::hash::{Hash, Hasher};
use std::path::Path;
use std::process::Command;

use crate::{Env, Result, run_cmd, step};

const TRUNK_VERSION: &str = "0.21.14";
/// Debian's binaryen 108 emits modules Chromium refuses; this one works.
const BINARYEN_VERSION: &str = "132.0.0";

pub fn ensure_wasm_target(env: &Env) -> Result {
    let installed = output(env.cmd("rustup").args(["target", "list", "--installed"]))?;
    if installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    step("install the wasm32 target", || {
        let mut cmd = env.cmd("rustup");
        cmd.args(["target", "add", "wasm32-unknown-unknown"]);
        run_cmd(cmd)
    })
}

pub fn ensure_wasm_toolchain(env: &Env) -> Result {
    ensure_wasm_target(env)?;
    let tools = env.cache.join("tools");
    if installed_version(env, "trunk").as_deref() != Some(TRUNK_VERSION) {
        step(&format!("install trunk {TRUNK_VERSION} (first run only, ~10 min)"), || {
            let mut cmd = env.cmd("cargo");
            cmd.args(["install", "--locked", "trunk", "--version", TRUNK_VERSION, "--root"]).arg(&tools);
            // Without its update check (no network but the registry) and
            // without its release profile's fat LTO in one codegen unit,
            // which makes most of the ~10 minutes; a build tool run a few
            // times per build loses nothing measurable.
            cmd.args(["--no-default-features", "--features", "rustls"])
                .env("CARGO_PROFILE_RELEASE_LTO", "off")
                .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
                .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "1");
            cmd.env_remove("CARGO_TARGET_DIR");
            run_cmd(cmd)
        })?;
    }
    let bindgen = wasm_bindgen_version(&env.root)?;
    if installed_version(env, "wasm-bindgen").as_deref() != Some(bindgen.as_str()) {
        step(&format!("install wasm-bindgen-cli {bindgen} (first run only, ~4 min)"), || {
            // Not --locked: one of its locked dependencies does not resolve
            // on this registry mirror (see shared/toolchain.md).
            let mut cmd = env.cmd("cargo");
            cmd.args(["install", "--force", "wasm-bindgen-cli", "--version", &bindgen, "--root"]).arg(&tools);
            cmd.env_remove("CARGO_TARGET_DIR");
            run_cmd(cmd)
        })?;
    }
    let npm_tools = env.cache.join("npm-tools");
    let wasm_opt = npm_tools.join("node_modules/.bin/wasm-opt");
    let wanted = format!("version_{}", BINARYEN_VERSION.split('.').next().unwrap_or_default());
    let have =
        Command::new(&wasm_opt).arg("--version").output().ok().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if !have.is_some_and(|v| v.contains(&wanted)) {
        step(&format!("install wasm-opt (npm binaryen@{BINARYEN_VERSION})"), || {
            std::fs::create_dir_all(&npm_tools).map_err(|e| e.to_string())?;
            let manifest = npm_tools.join("package.json");
            if !manifest.exists() {
                std::fs::write(&manifest, "{\"private\":true}\n").map_err(|e| e.to_string())?;
            }
            let mut cmd = env.cmd("npm");
            cmd.current_dir(&npm_tools).args([
                "install",
                "--no-audit",
                "--no-fund",
                &format!("binaryen@{BINARYEN_VERSION}"),
            ]);
            run_cmd(cmd)
        })?;
    }
    Ok(())
}

/// `X.Y.Z` of a tool in the cache, from its `--version`.
fn installed_version(env: &Env, tool: &str) -> Option<String> {
    let path = env.cache.join("tools/bin").join(tool);
    let out = Command::new(path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_owned)
}

/// The wasm-bindgen version Cargo.lock resolved: the CLI must match it.
pub fn wasm_bindgen_version(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).map_err(|e| format!("reading Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(version) = lines.next().and_then(|l| l.trim().strip_prefix("version = \""))
        {
            return Ok(version.trim_end_matches('"').to_owned());
        }
    }
    Err("wasm-bindgen is not in Cargo.lock".into())
}

/// A fingerprint of everything the browser app is built from.
pub fn app_inputs_stamp(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    let inputs = [
        "Cargo.lock",
        "Cargo.toml",
        ".cargo",
        "Trunk.toml",
        "index.html",
        "app",
        "api",
        "core",
        "kdf-worker",
        "viewer",
        "style",
        "public",
    ];
    // How the build is finished after Trunk (its compressed forms).
    collect_files(&root.join("xtask/src/precompress.rs"), &mut files);
    collect_files(&root.join("xtask/src/modules.rs"), &mut files);
    collect_files(&root.join("xtask/src/viewer.rs"), &mut files);
    for item in inputs {
        collect_files(&root.join(item), &mut files);
    }
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        file.strip_prefix(root).unwrap_or(&file).hash(&mut hasher);
        std::fs::read(&file).map_err(|e| format!("reading {}: {e}", file.display()))?.hash(&mut hasher);
    }
    Ok(format!("{:016x}\n", hasher.finish()))
}

fn collect_files(path: &Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_file() {
        out.push(path.to_owned());
    } else if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            collect_files(&entry.path(), out);
        }
    }
}

pub fn ensure_chromium() -> Result {
    ensure_debian_package("Chromium", "chromium", CHROMIUM)
}

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// zbarimg, the independent QR decoder the browser tests read a link's QR
/// code with (e2e/tests/links.spec.ts).
pub fn ensure_zbar() -> Result {
    ensure_debian_package("zbarimg", "zbar-tools", ZBARIMG)
}

pub const ZBARIMG: &str = "/usr/bin/zbarimg";

/// nginx, the reverse proxy the server's proxy tests start in front of it
/// (server/tests/common/services.rs), on their own port and by pid.
pub fn ensure_nginx() -> Result {
    ensure_debian_package("nginx", "nginx", "/usr/sbin/nginx")
}

/// Installs Debian's `package` unless `binary` is there. Packages that ship
/// a service (nginx) would start it on install: a policy-rc.d that says no
/// keeps them stopped, since the tests start what they need themselves.
pub fn ensure_debian_package(what: &str, package: &str, binary: &str) -> Result {
    if Path::new(binary).exists() {
        return Ok(());
    }
    step(&format!("install {what} (Debian package, first run only)"), || {
        let sudo = !is_root();
        let apt = |args: &[&str]| {
            let mut cmd = if sudo { Command::new("sudo") } else { Command::new("apt-get") };
            if sudo {
                cmd.arg("apt-get");
            }
            cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            run_cmd(cmd)
        };
        let policy = Path::new("/usr/sbin/policy-rc.d");
        let ours = is_root() && !policy.exists();
        if ours {
            std::fs::write(policy, "#!/bin/sh\n# cargo xtask: no service starts on install\nexit 101\n")
                .and_then(|()| std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755)))
                .map_err(|e| format!("writing {}: {e}", policy.display()))?;
        }
        let installed = apt(&["update"]).and_then(|()| apt(&["install", "-y", "--no-install-recommends", package]));
        if ours {
            let _ = std::fs::remove_file(policy);
        }
        installed
    })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// `npm ci` in `folder` (e2e, contracts) when its lock file changed since
/// the last install.
pub fn ensure_npm_packages(env: &Env, folder: &str) -> Result {
    let dir = env.root.join(folder);
    let lock = std::fs::read(dir.join("package-lock.json")).map_err(|e| format!("{folder}/package-lock.json: {e}"))?;
    let installed = std::fs::read(dir.join("node_modules/.package-lock.json")).unwrap_or_default();
    let stamp = dir.join("node_modules/.chartkey-lock");
    if !installed.is_empty() && std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    step(&format!("install {folder} packages (npm ci)"), || {
        let mut cmd = env.cmd("npm");
        cmd.current_dir(&dir).args(["ci", "--no-audit", "--no-fund"]);
        run_cmd(cmd)?;
        std::fs::write(&stamp, &lock).map_err(|e| e.to_string())
    })
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_locked_wasm_bindgen_version() {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap();
        let root = Path::new(&manifest_dir).parent().unwrap();
        let v = wasm_bindgen_version(root).unwrap();
        assert_eq!(v.split('.').count(), 3, "{v}");
    }

    #[test]
    fn stamp_changes_with_inputs() {
        let dir = std::env::temp_dir().join(format!("xtask-stamp-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("app")).unwrap();
        std::fs::write(dir.join("app/a.rs"), "1").unwrap();
        let a = app_inputs_stamp(&dir).unwrap();
        assert_eq!(a, app_inputs_stamp(&dir).unwrap());
        std::fs::write(dir.join("app/a.rs"), "2").unwrap();
        assert_ne!(a, app_inputs_stamp(&dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
