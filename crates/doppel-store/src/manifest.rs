//! The manifest: which segment files are live, which of their chunks are dead, and where
//! WAL replay starts. Replacing it is the commit point of a checkpoint.
//!
//! # Format
//!
//! `MANIFEST`, replaced atomically (written as `MANIFEST.tmp`, fsynced, renamed, directory
//! fsynced):
//!
//! ```text
//! "DPLMAN01"
//! u32 LE payload_len, u32 LE crc32(payload), payload
//! payload  = varint generation, varint wal_start, varint next_segment,
//!            varint segment_count, segment*
//! segment  = varint id, varint dead_count, varint ordinal delta*     (ascending ordinals)
//! ```
//!
//! `wal_start` is the first WAL segment that the live segment files do not cover: open
//! replays from there and deletes older WAL segments. A store without a manifest has no
//! segment files and replays its whole WAL.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::codec::{put_varint, Bytes, CodecError};
use crate::StoreError;

const MAGIC: &[u8; 8] = b"DPLMAN01";
pub(crate) const NAME: &str = "MANIFEST";
const TMP_NAME: &str = "MANIFEST.tmp";
/// Bounds what a corrupt length can make open read.
const MAX_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub generation: u64,
    pub wal_start: u32,
    pub next_segment: u32,
    /// Live segment ids with their dead chunk ordinals, ascending.
    pub segments: Vec<(u32, Vec<u32>)>,
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut p = Vec::new();
        put_varint(&mut p, self.generation);
        put_varint(&mut p, u64::from(self.wal_start));
        put_varint(&mut p, u64::from(self.next_segment));
        put_varint(&mut p, self.segments.len() as u64);
        for (id, dead) in &self.segments {
            put_varint(&mut p, u64::from(*id));
            put_varint(&mut p, dead.len() as u64);
            let mut prev = 0u32;
            for &o in dead {
                put_varint(&mut p, u64::from(o - prev));
                prev = o;
            }
        }
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&p).to_le_bytes());
        out.extend_from_slice(&p);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Manifest, (u64, String)> {
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err((0, "not a doppel manifest (bad magic)".into()));
        }
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        let crc = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        let payload = &bytes[16..];
        if payload.len() != len || crc32fast::hash(payload) != crc {
            return Err((8, "manifest length or checksum does not match".into()));
        }
        let mut b = Bytes::new(payload);
        let parse = |b: &mut Bytes<'_>| -> Result<Manifest, CodecError> {
            let u32v = |b: &mut Bytes<'_>| -> Result<u32, CodecError> {
                Ok(b.varint_max(u64::from(u32::MAX), "number out of range")? as u32)
            };
            let generation = b.varint()?;
            let wal_start = u32v(b)?;
            let next_segment = u32v(b)?;
            let n = b.varint_max(b.remaining() as u64, "segment count too large")?;
            let mut segments = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let id = u32v(b)?;
                let k = b.varint_max(b.remaining() as u64, "dead count too large")?;
                let mut dead = Vec::with_capacity(k as usize);
                let mut prev = 0u32;
                for i in 0..k {
                    let d = u32v(b)?;
                    if i > 0 && d == 0 {
                        return Err(CodecError::new("dead ordinals not ascending"));
                    }
                    prev = prev
                        .checked_add(d)
                        .ok_or(CodecError::new("dead ordinal out of range"))?;
                    dead.push(prev);
                }
                segments.push((id, dead));
            }
            if b.remaining() != 0 {
                return Err(CodecError::new("bytes after the last segment"));
            }
            Ok(Manifest {
                generation,
                wal_start,
                next_segment,
                segments,
            })
        };
        parse(&mut b).map_err(|e| (16 + b.pos() as u64, e.reason().to_string()))
    }
}

/// Reads `dir/MANIFEST` (`None` if there is none), removing a leftover `MANIFEST.tmp` of an
/// interrupted checkpoint: it was never renamed into place, so it never counted.
pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, StoreError> {
    let tmp = dir.join(TMP_NAME);
    if tmp.exists() {
        fs::remove_file(&tmp).map_err(|e| StoreError::io(&tmp, "remove", e))?;
    }
    let path = dir.join(NAME);
    let len = match fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(&path, "stat", e)),
    };
    if len > MAX_BYTES {
        return Err(StoreError::Corrupt {
            path,
            offset: 0,
            reason: format!("{len} bytes, larger than a manifest can be"),
        });
    }
    let bytes = fs::read(&path).map_err(|e| StoreError::io(&path, "read", e))?;
    Manifest::decode(&bytes)
        .map(Some)
        .map_err(|(offset, reason)| StoreError::Corrupt {
            path,
            offset,
            reason,
        })
}

/// Writes `MANIFEST.tmp` and fsyncs it; [`install`] then makes it the manifest.
pub(crate) fn write_tmp(dir: &Path, m: &Manifest) -> Result<PathBuf, StoreError> {
    let tmp = dir.join(TMP_NAME);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| StoreError::io(&tmp, "create", e))?;
    f.write_all(&m.encode())
        .map_err(|e| StoreError::io(&tmp, "write", e))?;
    f.sync_all().map_err(|e| StoreError::io(&tmp, "fsync", e))?;
    Ok(tmp)
}

/// Renames the temporary manifest over the live one and fsyncs the directory: the commit
/// point of a checkpoint.
pub(crate) fn install(dir: &Path, tmp: &Path) -> Result<(), StoreError> {
    let path = dir.join(NAME);
    fs::rename(tmp, &path).map_err(|e| StoreError::io(&path, "rename into place", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, "fsync directory", e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn write_install_read() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let m = Manifest {
            generation: 3,
            wal_start: 17,
            next_segment: 5,
            segments: vec![(1, vec![0, 4, 9]), (4, vec![])],
        };
        let tmp = write_tmp(dir.path(), &m).unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            None,
            "a tmp manifest never counts"
        );
        assert!(!tmp.exists(), "and is removed");
        let tmp = write_tmp(dir.path(), &m).unwrap();
        install(dir.path(), &tmp).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(m.clone()));
        let mut bytes = fs::read(dir.path().join(NAME)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(dir.path().join(NAME), &bytes).unwrap();
        assert!(matches!(read(dir.path()), Err(StoreError::Corrupt { .. })));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Manifest::decode(&bytes);
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            framed.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            framed.extend_from_slice(&bytes);
            let _ = Manifest::decode(&framed);
        }

        #[test]
        fn round_trip(g in any::<u64>(), w in any::<u32>(), n in any::<u32>(),
                      segs in proptest::collection::btree_map(any::<u32>(), proptest::collection::btree_set(any::<u32>(), 0..10), 0..5)) {
            let m = Manifest {
                generation: g, wal_start: w, next_segment: n,
                segments: segs.into_iter().map(|(id, d)| (id, d.into_iter().collect())).collect(),
            };
            prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        }
    }
}
