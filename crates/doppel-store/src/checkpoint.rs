//! Checkpoints: writing sealed chunks to a new segment file and committing it with a new
//! manifest, so that the WAL segments it covers can be deleted and a restart replays only
//! the WAL tail.
//!
//! Steps, each of which a crash may interrupt (the tests in `store.rs` stop at every one):
//!
//! 1. the writer rotates the WAL: everything applied so far is in segments `< wal_start`;
//! 2. every open buffer is sealed into chunks;
//! 3. the chunks and rollup blocks not yet in a file, plus the live ones of segment files that are more than
//!    half dead or small next to the new file (compaction, size-tiered), are written to `chunks/NNNNNNNN.seg.tmp`, fsynced, renamed to
//!    `NNNNNNNN.seg`, and the directory fsynced;
//! 4. `MANIFEST.tmp` naming the live segment files, their dead chunks and `wal_start` is
//!    written, fsynced, renamed to `MANIFEST`, and the directory fsynced: the commit point;
//! 5. in memory, the written chunks now point into the file;
//! 6. WAL segments `< wal_start` and the compacted segment files are deleted.
//!
//! Before step 4 a crash leaves the old manifest, which still names the old WAL segments,
//! and open deletes the unnamed new files. After it, open deletes the covered WAL segments
//! and unnamed segment files that step 6 did not get to. Either way every acknowledged point
//! is loaded exactly once: from a segment or from the WAL, never both, because the manifest
//! switches both at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::manifest::{self, Manifest};
use crate::segment::{self, Location, SegmentFile, SegmentWriter};
use crate::store::{sync_dir, Shared};
use crate::wal;
use crate::StoreError;

/// Where a checkpoint may be stopped by a test, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) enum Step {
    WalRotated,
    Sealed,
    SegmentHalfWritten,
    SegmentSynced,
    SegmentRenamed,
    ManifestWritten,
    ManifestInstalled,
    WalHalfDeleted,
    WalDeleted,
}

/// A live segment file and the bytes of chunks and rollup blocks it holds (live or dead).
#[derive(Debug)]
pub(crate) struct SegMeta {
    pub file: Arc<SegmentFile>,
    pub chunk_bytes: u64,
}

/// The on-disk state the index thread keeps between checkpoints.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    pub dir: PathBuf,
    pub chunks_dir: PathBuf,
    pub segments: BTreeMap<u32, SegMeta>,
    pub manifest: Manifest,
}

impl Checkpointer {
    /// Publishes segment figures to the stats.
    pub(crate) fn publish(&self, shared: &Shared) {
        let bytes = self.segments.values().map(|s| s.file.len).sum();
        shared.segment_bytes.store(bytes, Ordering::Relaxed);
        shared
            .segment_files
            .store(self.segments.len() as u64, Ordering::Relaxed);
    }

    /// Steps 2 to 6 (see the module docs), on the index thread; the writer has done step 1. `stop` is the test
    /// hook: an error from it ends the checkpoint where a crash would, without cleanup.
    pub(crate) fn run(
        &mut self,
        shared: &Shared,
        wal_dir: &Path,
        wal_start: u32,
        stop: &mut dyn FnMut(Step) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        stop(Step::WalRotated)?;
        let left = shared.index.write().seal_all();
        if left > 0 {
            return Err(StoreError::Corrupt {
                path: self.chunks_dir.clone(),
                offset: 0,
                reason: format!(
                    "{left} points could not be merged into an unreadable chunk; the WAL keeps them"
                ),
            });
        }
        stop(Step::Sealed)?;

        let (rewrite, to_write) = {
            let index = shared.index.read();
            let dead = |id: &u32| index.dead().get(id).map_or(0, |d| d.bytes);
            // Compact segment files that are more than half dead: their live chunks move into
            // the new file, so dead space stays below half of what is on disk.
            let mut rewrite: BTreeSet<u32> = self
                .segments
                .iter()
                .filter(|(id, m)| dead(id) * 2 > m.chunk_bytes)
                .map(|(id, _)| *id)
                .collect();
            // Merge by size tiers, newest first: a segment joins the new file while its live
            // bytes are at most twice what the new file already holds. Sizes then roughly
            // double going back in time, so a store keeps O(log n) files (and open file
            // handles) and each chunk is copied O(log n) times, as raw bytes.
            let mut acc = index.memory_bytes()
                + rewrite
                    .iter()
                    .filter_map(|id| self.segments.get(id))
                    .map(|m| m.chunk_bytes - dead(&m.file.id).min(m.chunk_bytes))
                    .sum::<u64>();
            for (id, m) in self.segments.iter().rev() {
                if rewrite.contains(id) {
                    continue;
                }
                let live = m.chunk_bytes - dead(id).min(m.chunk_bytes);
                if acc == 0 || live > 2 * acc {
                    break;
                }
                rewrite.insert(*id);
                acc += live;
            }
            let to_write = index.chunks_to_write(&rewrite);
            (rewrite, to_write)
        };

        let mut next_segment = self.manifest.next_segment.max(1);
        let mut written = None;
        if !to_write.is_empty() {
            let id = next_segment;
            next_segment += 1;
            let mut w = SegmentWriter::create(&self.chunks_dir, id)?;
            let (tmp, path) = (w.tmp.clone(), w.path.clone());
            let result = (|| {
                let total: usize = to_write
                    .iter()
                    .map(|s| s.chunks.len() + s.blocks.len())
                    .sum();
                let mut moved = HashMap::with_capacity(total);
                let mut chunk_bytes = 0u64;
                let mut note = |id: u64, loc: Location| -> Result<(), StoreError> {
                    chunk_bytes += u64::from(loc.len);
                    moved.insert(id, loc);
                    if moved.len() == total.div_ceil(2) {
                        stop(Step::SegmentHalfWritten)?;
                    }
                    Ok(())
                };
                for s in &to_write {
                    for c in &s.chunks {
                        let bytes = c.bytes()?;
                        note(c.id, w.add(&s.twin, &s.signal, &bytes, &c.summary)?)?;
                    }
                    for b in &s.blocks {
                        let bytes = b.data.bytes()?;
                        let loc = w.add_block(
                            &s.twin, &s.signal, b.level, b.buckets, &bytes, &b.summary,
                        )?;
                        note(b.id, loc)?;
                    }
                }
                w.finish()?;
                stop(Step::SegmentSynced)?;
                segment::install(&tmp, &path)?;
                stop(Step::SegmentRenamed)?;
                sync_dir(&self.chunks_dir)?;
                // Reading back what we wrote checks it before anything depends on it.
                let (seg, _) = segment::open(&path, id)?;
                Ok((seg, chunk_bytes, moved))
            })();
            match result {
                Ok(w) => written = Some(w),
                Err(e) => {
                    // `Closed` is how the test hook stops a checkpoint like a crash would: then
                    // the files stay, for open to deal with.
                    if !matches!(e, StoreError::Closed) {
                        // Never named by a manifest: nothing refers to these files.
                        let _ = fs::remove_file(&tmp);
                        let _ = fs::remove_file(&path);
                    }
                    return Err(e);
                }
            }
        }

        let m = {
            let index = shared.index.read();
            let mut segments: Vec<(u32, Vec<u32>)> = self
                .segments
                .keys()
                .filter(|id| !rewrite.contains(id))
                .map(|id| {
                    let dead = index
                        .dead()
                        .get(id)
                        .map(|d| d.ordinals.iter().copied().collect())
                        .unwrap_or_default();
                    (*id, dead)
                })
                .collect();
            if let Some((seg, _, _)) = &written {
                segments.push((seg.id, Vec::new()));
            }
            Manifest {
                generation: self.manifest.generation + 1,
                wal_start,
                next_segment,
                segments,
            }
        };
        let tmp = manifest::write_tmp(&self.dir, &m)?;
        stop(Step::ManifestWritten)?;
        // If the rename happened but the directory fsync failed, the new manifest may or may
        // not survive a crash: deleting nothing keeps both outcomes whole, and the next
        // checkpoint writes a manifest that is consistent either way.
        manifest::install(&self.dir, &tmp)?;
        stop(Step::ManifestInstalled)?;

        if let Some((seg, chunk_bytes, moved)) = written {
            shared.index.write().relocate(&seg, &moved, &rewrite);
            self.segments.insert(
                seg.id,
                SegMeta {
                    file: seg,
                    chunk_bytes,
                },
            );
        } else if !rewrite.is_empty() {
            shared.index.write().relocate_none(&rewrite);
        }
        let dropped: Vec<SegMeta> = rewrite
            .iter()
            .filter_map(|id| self.segments.remove(id))
            .collect();
        self.manifest = m;
        self.publish(shared);

        delete_wal_before(shared, wal_dir, wal_start, stop)?;
        stop(Step::WalDeleted)?;
        for s in dropped {
            if let Err(e) = fs::remove_file(&s.file.path) {
                tracing::warn!(file = %s.file.path.display(), error = %e, "cannot remove a compacted segment file; the next open removes it");
            }
        }
        Ok(())
    }
}

/// Deletes WAL segments numbered below `wal_start`, which the manifest says are covered.
pub(crate) fn delete_wal_before(
    shared: &Shared,
    wal_dir: &Path,
    wal_start: u32,
    stop: &mut dyn FnMut(Step) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let entries =
        fs::read_dir(wal_dir).map_err(|e| StoreError::io(wal_dir, "list directory", e))?;
    let mut covered: Vec<(u32, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let n = wal::parse_segment_name(e.file_name().to_str()?)?;
            (n < wal_start).then(|| (n, e.path()))
        })
        .collect();
    covered.sort();
    let half = covered.len().div_ceil(2);
    for (i, (_, path)) in covered.iter().enumerate() {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(path) {
            Ok(()) => {
                shared.wal_bytes.fetch_sub(len, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot remove a checkpointed WAL segment; the next open removes it");
            }
        }
        if i + 1 == half {
            stop(Step::WalHalfDeleted)?;
        }
    }
    Ok(())
}

/// Removes files of `chunks_dir` that no manifest names: temporary files of an interrupted
/// checkpoint and segments it wrote before failing to commit, or compacted ones it did not
/// get to delete.
pub(crate) fn remove_stale_segments(
    chunks_dir: &Path,
    live: &BTreeSet<u32>,
) -> Result<(), StoreError> {
    let entries =
        fs::read_dir(chunks_dir).map_err(|e| StoreError::io(chunks_dir, "list directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(chunks_dir, "list directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stale = match segment::parse_segment_name(name) {
            Some(id) => !live.contains(&id),
            None => name.ends_with(".seg.tmp"),
        };
        if stale {
            tracing::info!(file = %entry.path().display(), "removing a segment file no manifest names");
            fs::remove_file(entry.path()).map_err(|e| StoreError::io(entry.path(), "remove", e))?;
        }
    }
    Ok(())
}
