//! The web console (feature `web`) embeds xterm.js, an npm dependency
//! declared in `package.json` and pinned, with its integrity hash, in
//! `package-lock.json`. This script finds the packages and copies the files
//! the page loads into `$OUT_DIR/assets`:
//! 1. `$CHARDEVD_NODE_MODULES`, if set;
//! 2. `node_modules/` beside this file, if it holds the locked versions
//!    (`npm ci` put them there);
//! 3. else `npm ci --omit=dev` in `$OUT_DIR` (when npm is installed);
//! 4. else each locked tarball fetched with `curl` from its `resolved` URL,
//!    checked against its `integrity` (sha512) and unpacked with `tar`.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The locked packages the page uses, and the files taken from each.
const FILES: &[(&str, &[&str])] = &[
    ("@xterm/xterm", &["lib/xterm.mjs", "css/xterm.css", "LICENSE"]),
    ("@xterm/addon-fit", &["lib/addon-fit.mjs"]),
];

struct Locked {
    name: &'static str,
    version: String,
    resolved: String,
    integrity: String,
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=package.json");
    println!("cargo:rerun-if-changed=package-lock.json");
    println!("cargo:rerun-if-env-changed=CHARDEVD_NODE_MODULES");
    if std::env::var_os("CARGO_FEATURE_WEB").is_none() {
        return;
    }
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    let lock = std::fs::read_to_string(root.join("package-lock.json"))
        .unwrap_or_else(|e| fail(&format!("package-lock.json: {e}")));
    let locked: Vec<Locked> = FILES.iter().map(|(name, _)| locked(&lock, name)).collect();
    let modules = find_modules(&root, &out, &locked);
    let assets = out.join("assets");
    std::fs::create_dir_all(&assets).unwrap_or_else(|e| fail(&format!("{}: {e}", assets.display())));
    for (name, files) in FILES {
        for f in *files {
            let from = modules.join(name).join(f);
            let to = assets.join(format!(
                "{}-{}",
                name.rsplit('/').next().unwrap_or(name),
                f.rsplit('/').next().unwrap_or(f)
            ));
            std::fs::copy(&from, &to).unwrap_or_else(|e| fail(&format!("{}: {e}", from.display())));
        }
    }
}

/// Where the locked packages are (see the module docs).
fn find_modules(root: &Path, out: &Path, locked: &[Locked]) -> PathBuf {
    if let Some(dir) = std::env::var_os("CHARDEVD_NODE_MODULES") {
        let dir = PathBuf::from(dir);
        if has_versions(&dir, locked) {
            return dir;
        }
        fail(&format!(
            "CHARDEVD_NODE_MODULES={} does not hold the locked packages",
            dir.display()
        ));
    }
    let beside = root.join("node_modules");
    println!("cargo:rerun-if-changed=node_modules/@xterm/xterm/package.json");
    if has_versions(&beside, locked) {
        return beside;
    }
    let npm_dir = out.join("npm");
    if has_versions(&npm_dir.join("node_modules"), locked) {
        return npm_dir.join("node_modules");
    }
    std::fs::create_dir_all(&npm_dir).unwrap_or_else(|e| fail(&format!("{}: {e}", npm_dir.display())));
    for f in ["package.json", "package-lock.json", ".npmrc"] {
        let _ = std::fs::copy(root.join(f), npm_dir.join(f));
    }
    let npm = Command::new("npm")
        .args(["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"])
        .current_dir(&npm_dir)
        .status();
    if matches!(npm, Ok(s) if s.success()) && has_versions(&npm_dir.join("node_modules"), locked) {
        return npm_dir.join("node_modules");
    }
    // No npm (or it failed): the locked tarballs themselves.
    let dl = out.join("tarballs");
    for p in locked {
        let dest = dl.join("node_modules").join(p.name);
        let _ = std::fs::remove_dir_all(&dest);
        std::fs::create_dir_all(&dest).unwrap_or_else(|e| fail(&format!("{}: {e}", dest.display())));
        let tgz = dl.join(format!("{}.tgz", p.name.replace('/', "_")));
        run(
            Command::new("curl")
                .args(["-fsSL", "--retry", "3", "-o"])
                .arg(&tgz)
                .arg(&p.resolved),
            "curl",
        );
        check_integrity(&tgz, &p.integrity);
        run(
            Command::new("tar")
                .arg("-xzf")
                .arg(&tgz)
                .arg("-C")
                .arg(&dest)
                .arg("--strip-components=1"),
            "tar",
        );
    }
    let dir = dl.join("node_modules");
    if !has_versions(&dir, locked) {
        fail("the fetched tarballs are not the locked versions");
    }
    dir
}

/// `name`'s version, tarball and integrity in the lock file.
fn locked(lock: &str, name: &'static str) -> Locked {
    let key = format!("\"node_modules/{name}\": {{");
    let at = lock
        .find(&key)
        .unwrap_or_else(|| fail(&format!("{name} is not in package-lock.json")));
    let block = &lock[at + key.len()..];
    let block = &block[..block.find('}').unwrap_or(block.len())];
    let field = |f: &str| -> String {
        let k = format!("\"{f}\": \"");
        let i = block
            .find(&k)
            .unwrap_or_else(|| fail(&format!("{name} has no {f} in package-lock.json")));
        let v = &block[i + k.len()..];
        v[..v.find('"').unwrap_or(v.len())].to_owned()
    };
    Locked {
        name,
        version: field("version"),
        resolved: field("resolved"),
        integrity: field("integrity"),
    }
}

/// Whether `dir` holds every locked package at its locked version.
fn has_versions(dir: &Path, locked: &[Locked]) -> bool {
    locked.iter().all(|p| {
        std::fs::read_to_string(dir.join(p.name).join("package.json"))
            .map(|s| s.contains(&format!("\"version\": \"{}\"", p.version)))
            .unwrap_or(false)
    })
}

/// Check a tarball against the lock's `sha512-BASE64` integrity.
fn check_integrity(file: &Path, integrity: &str) {
    let want = integrity
        .strip_prefix("sha512-")
        .map(base64_to_hex)
        .unwrap_or_else(|| fail(&format!("unsupported integrity {integrity}")));
    let out = Command::new("sha512sum")
        .arg(file)
        .output()
        .unwrap_or_else(|e| fail(&format!("sha512sum: {e}")));
    let got = String::from_utf8_lossy(&out.stdout);
    if got.split_whitespace().next() != Some(want.as_str()) {
        fail(&format!(
            "{} does not match its integrity in package-lock.json",
            file.display()
        ));
    }
}

fn base64_to_hex(s: &str) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut acc, mut bits, mut hex) = (0u32, 0u32, String::new());
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| fail("bad base64 in integrity")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            hex.push_str(&format!("{:02x}", (acc >> bits) & 0xff));
        }
    }
    hex
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("{what} failed ({s})")),
        Err(e) => fail(&format!("{what}: {e}")),
    }
}

fn fail(why: &str) -> ! {
    panic!(
        "the web console embeds xterm.js, an npm dependency (package.json), and could not get it: {why}.\n\
         Install npm (Debian: apt-get install npm) or curl, or run `npm ci --omit=dev` in the source \
         directory, or set CHARDEVD_NODE_MODULES, or build without the web console (--no-default-features)"
    )
}
