//! Builds the web dashboard (`web/`, TypeScript + Vite) into `web/dist` so that
//! `src/outputs/dashboard.rs` can embed it in the binary.
//!
//! The build runs only when `web/dist/index.html` is missing or older than a web source; it
//! runs `npm ci` first when `web/node_modules` is missing. With `DOPPEL_SKIP_WEB=1`, or when
//! npm cannot be run, the Rust build still succeeds: an empty placeholder folder is embedded
//! instead and the server answers `/` with a page saying how to build the dashboard.
//!
//! What gets embedded is a copy of `web/dist` in `OUT_DIR`, named to the `RustEmbed` derive by
//! `DOPPEL_WEB_DIST`: deleting or rebuilding `web/dist` by hand then never leaves the Rust build
//! pointing at missing files, and cargo need not watch files this script itself writes.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Inputs of the web build, relative to `web/`; a change to any of them rebuilds it.
const SOURCES: [&str; 7] = [
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let web = manifest.join("../../web");
    let web = web.canonicalize().unwrap_or(web);

    println!("cargo:rerun-if-env-changed=DOPPEL_SKIP_WEB");
    for s in SOURCES {
        println!("cargo:rerun-if-changed={}", web.join(s).display());
    }

    let embed = out.join("web-dist");
    if embed.exists() {
        fs::remove_dir_all(&embed).expect("clearing the embedded dashboard copy");
    }
    fs::create_dir_all(&embed).expect("creating the embedded dashboard folder");
    match dashboard_dist(&web) {
        Ok(dist) => copy_tree(&dist, &embed).expect("copying web/dist"),
        // The empty folder is the placeholder: the server then explains how to build it.
        Err(why) => {
            println!("cargo:warning=web dashboard not built ({why}); the server will say so at /")
        }
    }
    println!("cargo:rustc-env=DOPPEL_WEB_DIST={}", embed.display());
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The built `web/dist`, building it when needed; `Err` with the reason to use the placeholder.
fn dashboard_dist(web: &Path) -> Result<PathBuf, String> {
    if env::var("DOPPEL_SKIP_WEB").is_ok_and(|v| v == "1") {
        return Err("DOPPEL_SKIP_WEB=1".into());
    }
    let dist = web.join("dist");
    let index = dist.join("index.html");
    let built = mtime(&index);
    let newest_source = SOURCES
        .iter()
        .filter_map(|s| newest_mtime(&web.join(s)))
        .max();
    let fresh = matches!((built, newest_source), (Some(b), Some(s)) if b >= s)
        || (built.is_some() && newest_source.is_none());
    if fresh {
        return Ok(dist);
    }
    if !web.join("package.json").exists() {
        return Err(format!("no {}", web.join("package.json").display()));
    }
    if !npm_available() {
        return if built.is_some() {
            println!(
                "cargo:warning=npm not found: embedding web/dist although web sources changed since it was built"
            );
            Ok(dist)
        } else {
            Err("npm not found".into())
        };
    }
    if !web.join("node_modules").exists() {
        npm(web, &["ci", "--no-audit", "--no-fund"])?;
    }
    npm(web, &["run", "build"])?;
    if index.exists() {
        Ok(dist)
    } else {
        Err(format!("`npm run build` made no {}", index.display()))
    }
}

fn npm_available() -> bool {
    Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs npm in `web/`; a failure stops the Rust build with npm's output, since the dashboard
/// sources are broken or their packages cannot be installed.
fn npm(web: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("npm")
        .args(args)
        .current_dir(web)
        .output()
        .map_err(|e| format!("running npm {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        panic!(
            "`npm {}` in {} failed ({}); set DOPPEL_SKIP_WEB=1 to build without the dashboard\n\
             --- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            web.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of any file below a folder.
fn newest_mtime(p: &Path) -> Option<SystemTime> {
    let meta = fs::metadata(p).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    fs::read_dir(p)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}
