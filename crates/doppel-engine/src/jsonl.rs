//! An append-only JSON-lines file, the durable form of the alarm and advice books: one record
//! version per line, appended and fsynced on every change, replayed at open (the latest
//! version of each record wins in the book), compacted by an atomic rewrite when mostly stale.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::EngineError;

#[derive(Debug)]
pub(crate) struct JsonLines {
    path: PathBuf,
    file: File,
    /// Lines in the file (live and stale versions).
    lines: usize,
}

impl JsonLines {
    /// Opens (or creates) `path`, handing every readable record to `each` in file order.
    /// Unreadable lines (a torn last line after a crash) are skipped with a warning naming
    /// `what`; returns how many there were, so the caller can rewrite them away.
    pub fn open<T: DeserializeOwned>(
        path: PathBuf,
        what: &str,
        mut each: impl FnMut(T),
    ) -> Result<(JsonLines, usize), EngineError> {
        let io = |source| EngineError::Persist {
            path: path.clone(),
            source,
        };
        let mut lines = 0;
        let mut bad = 0;
        match File::open(&path) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line.map_err(io)?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<T>(&line) {
                        Ok(r) => {
                            each(r);
                            lines += 1;
                        }
                        Err(e) => {
                            bad += 1;
                            tracing::warn!(file = %path.display(), error = %e, "{what} log: unreadable line skipped");
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok((JsonLines { path, file, lines }, bad))
    }

    /// Lines in the file.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Appends one record durably (write, then fdatasync).
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), EngineError> {
        let io = |source| EngineError::Persist {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| io(e.into()))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.lines += 1;
        Ok(())
    }

    /// Replaces the file with one line per record (tmp, fsync, rename, fsync dir).
    pub fn rewrite<'a, T: Serialize + 'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a T>,
    ) -> Result<(), EngineError> {
        let mut bytes = Vec::new();
        let mut n = 0;
        for r in records {
            serde_json::to_writer(&mut bytes, r).map_err(|e| EngineError::Persist {
                path: self.path.clone(),
                source: e.into(),
            })?;
            bytes.push(b'\n');
            n += 1;
        }
        crate::catalog_file::write_atomic(&self.path, &bytes)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|source| EngineError::Persist {
                path: self.path.clone(),
                source,
            })?;
        self.lines = n;
        Ok(())
    }
}
