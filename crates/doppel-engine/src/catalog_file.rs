//! Persistence of the catalog (models and twins) as one JSON document, replaced atomically:
//! write a temporary file, fsync it, rename it over the old one, fsync the directory. A crash
//! at any point leaves either the old or the new catalog, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use doppel_model::{AssetModel, Catalog, Twin};
use serde::{Deserialize, Serialize};

use crate::EngineError;

#[derive(Serialize, Deserialize, Default)]
struct CatalogDoc {
    models: Vec<AssetModel>,
    twins: Vec<Twin>,
}

pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join("catalog.json")
}

pub(crate) fn load(dir: &Path) -> Result<Catalog, EngineError> {
    let p = path(dir);
    let bytes = match fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Catalog::new()),
        Err(source) => return Err(EngineError::Persist { path: p, source }),
    };
    let doc: CatalogDoc =
        serde_json::from_slice(&bytes).map_err(|e| EngineError::CatalogCorrupt {
            path: p.clone(),
            errors: e.to_string(),
        })?;
    Catalog::from_parts(doc.models, doc.twins).map_err(|e| EngineError::CatalogCorrupt {
        path: p,
        errors: e.to_string(),
    })
}

pub(crate) fn save(dir: &Path, catalog: &Catalog) -> Result<(), EngineError> {
    let p = path(dir);
    let doc = CatalogDoc {
        models: catalog.models().map(|m| (**m).clone()).collect(),
        twins: catalog.twins().map(|t| (**t).clone()).collect(),
    };
    let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| EngineError::Persist {
        path: p.clone(),
        source: e.into(),
    })?;
    write_atomic(&p, &bytes)
}

/// Replaces `path` with `bytes` atomically: a temporary file beside it, fsync, rename over
/// `path`, fsync of the directory. A crash leaves either the old or the new content.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Replaces `path` atomically, as [`write_atomic`], with what `fill` writes to the new file;
/// an error from `fill` leaves `path` as it was.
pub(crate) fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), EngineError> {
    let io = |source| EngineError::Persist {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = File::create(&tmp).map_err(io)?;
    fill(&mut f).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Writes `value` as JSON to `dir/name` atomically, creating `dir` first.
pub(crate) fn write_json_atomic<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
) -> Result<(), EngineError> {
    std::fs::create_dir_all(dir).map_err(|source| EngineError::Persist {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    let bytes = serde_json::to_vec(value).map_err(|e| EngineError::Persist {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    write_atomic(&path, &bytes)
}
