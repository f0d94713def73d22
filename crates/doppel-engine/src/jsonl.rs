//! An append-only JSON-lines file, the durable form of the alarm and advice books: one record
//! version per line, appended and fsynced on every change (or once for a group of changes),
//! replayed at open (the latest version of each record wins in the book), compacted by an
//! atomic rewrite when mostly stale.

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
    /// fdatasyncs made by appends since open.
    syncs: u64,
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
        Ok((
            JsonLines {
                path,
                file,
                lines,
                syncs: 0,
            },
            bad,
        ))
    }

    /// Lines in the file.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// fdatasyncs made by appends since open.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// Appends one record durably (write, then fdatasync).
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), EngineError> {
        self.append_all([record])
    }

    /// Appends records durably, in order, with one write and one fdatasync for all of them
    /// (group commit): when this returns `Ok`, the file holds every one. Nothing is written
    /// when a record cannot be encoded. After an IO error any prefix of the lines may be in
    /// the file, the last one possibly torn (skipped at the next open).
    pub fn append_all<'a, T: Serialize + 'a>(
        &mut self,
        records: impl IntoIterator<Item = &'a T>,
    ) -> Result<(), EngineError> {
        let io = |source| EngineError::Persist {
            path: self.path.clone(),
            source,
        };
        let mut bytes = Vec::new();
        let mut n = 0;
        for r in records {
            serde_json::to_writer(&mut bytes, r).map_err(|e| io(e.into()))?;
            bytes.push(b'\n');
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        self.file.write_all(&bytes).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.syncs += 1;
        self.lines += n;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Rec {
        id: u32,
        v: String,
    }

    fn rec(id: u32, v: &str) -> Rec {
        Rec {
            id,
            v: v.to_string(),
        }
    }

    fn read_back(path: &std::path::Path) -> Vec<Rec> {
        let mut out = Vec::new();
        JsonLines::open(path.to_path_buf(), "test", |r: Rec| out.push(r)).unwrap();
        out
    }

    /// A group is in the file, in order, once `append_all` returns, after one fsync.
    #[test]
    fn append_all_writes_a_group_with_one_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let (mut f, bad) = JsonLines::open(path.clone(), "test", |_: Rec| {}).unwrap();
        assert_eq!(bad, 0);
        f.append(&rec(1, "a")).unwrap();
        assert_eq!((f.lines(), f.syncs()), (1, 1));
        let group = [rec(2, "b"), rec(1, "c"), rec(2, "d")];
        f.append_all(&group).unwrap();
        assert_eq!((f.lines(), f.syncs()), (4, 2));
        // Read through another handle: what the file holds, not what a buffer holds.
        assert_eq!(
            read_back(&path),
            vec![rec(1, "a"), rec(2, "b"), rec(1, "c"), rec(2, "d")]
        );
        // An empty group writes and syncs nothing.
        f.append_all(&[] as &[Rec]).unwrap();
        assert_eq!((f.lines(), f.syncs()), (4, 2));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 4);
    }
}
