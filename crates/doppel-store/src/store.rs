//! The store: opening (WAL replay and torn-tail repair), the writer thread that group-commits
//! writes, and the query methods over the in-memory index.
//!
//! Data path of one write: the caller encodes its rows into one WAL record (so a row the
//! format cannot hold is refused before it is queued) and sends it with its completion to the
//! writer thread "doppel-wal". That thread blocks for the first request, drains whatever else
//! is already queued (up to `max_batch_bytes`), appends the batch with one `write` and makes
//! it durable with one `fdatasync`; only then does it hand the batch to the index thread
//! "doppel-index", which applies it to the index (sealing full buffers into compressed
//! chunks), and call every completion of the batch, in WAL order (see [`Visibility`]: a
//! query waits until the index holds every group acknowledged before it started). Readers
//! therefore never see data that is not durable and always see what was acknowledged to
//! them, and concurrent writers share one fsync; while the index thread applies one group
//! commit, the writer thread already writes and syncs the next. The on-disk format is
//! described in `wal.rs`.
//!
//! Tombstones ([`Store::delete_twin`]) and retention cuts ([`Store::drop_before`]) take the
//! same path as rows: a WAL record, fsynced, then applied to the index in WAL order, so
//! replay repeats them at the same place among the rows.
//!
//! Checkpoints (`checkpoint.rs`): the writer thread rotates the WAL and queues the checkpoint
//! behind the group commits written before the rotation; the index thread runs it in that
//! place, while the writer thread goes on committing. They happen when the WAL has grown by
//! `checkpoint_wal_bytes` since the last one, when [`Store::checkpoint`] asks, and at close. Opening reads the manifest and the indexes of the segment files it names,
//! then replays only the WAL segments the manifest does not cover.
//!
//! One store per directory: open takes an exclusive `flock` on `LOCK` (released by the OS
//! when the process dies, so kill -9 leaves no stale lock) and the writer thread holds it
//! until it ends; a second open, in this process or another, gets [`StoreError::Locked`].
//!
//! Failure rule: a batch whose write or fsync fails is reported as failed to every writer in
//! it, is not applied to the index, and is cut off the segment again (truncate + fsync), so a
//! later successful batch cannot bring it back after a restart. If that repair fails too, the
//! store refuses every further write with the repair error: it may become useless, never
//! inconsistent.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, ThreadId};

use doppel_model::{Timestamp, ValidatedBatch};
use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard};
use std::collections::BTreeMap;

use crate::checkpoint::{self, Checkpointer, SegMeta, Step};
use crate::index::Index;
use crate::manifest;
use crate::query;
use crate::segment;
use crate::wal::{self, EncodeError, Record, ScanEnd};
use crate::{Agg, Bucket, Point, Row, SeriesStats, StoreError, StoreStats};

/// How the store writes. `StoreOptions::default()` is what a server should use.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// fdatasync every group commit before acknowledging it. Only tests and benchmarks that
    /// do not care about crashes should turn this off.
    pub fsync: bool,
    /// Upper bound on the encoded bytes one group commit gathers (a single larger write
    /// still goes through, alone).
    pub max_batch_bytes: usize,
    /// A segment that has grown past this size is closed and a new one started.
    pub segment_bytes: u64,
    /// Points a series buffers before sealing them into a compressed chunk (clamped to
    /// 1..=32768). Larger chunks compress a little better and are read whole by queries.
    pub chunk_points: usize,
    /// A checkpoint runs once this many WAL bytes were written since the last one; the WAL
    /// tail a restart replays is at most about this long.
    pub checkpoint_wal_bytes: u64,
    /// Checkpoint in [`Store::close`], so a clean restart replays nothing.
    pub checkpoint_on_close: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            fsync: true,
            max_batch_bytes: 8 << 20,
            segment_bytes: 64 << 20,
            chunk_points: 2048,
            checkpoint_wal_bytes: 64 << 20,
            checkpoint_on_close: true,
        }
    }
}

/// Called once with the outcome of a [`Store::write_with`].
type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>;

enum Op {
    Rows(Vec<Row>),
    /// A validated batch, applied from the caller's own readings (its WAL record is a
    /// readings record).
    Batch(Arc<ValidatedBatch>),
    Tombstone(Arc<str>),
    Cut {
        twin: Arc<str>,
        signal: Option<Arc<str>>,
        before: Timestamp,
    },
    Checkpoint,
}

/// One queued write: what to apply to the index, its encoded WAL record, and who to tell.
struct Request {
    op: Op,
    record: Vec<u8>,
    done: Done,
}

/// Which group commits queries see. The writer numbers each durable group, hands it to the
/// index thread and then completes its writers at once, on its own thread, while the index
/// thread applies it (so applying one group overlaps the next group's write and fsync, and
/// the writers' own work after their acknowledgement). A query first waits until the index
/// thread has applied every group numbered when it started: a write is visible to every
/// query made after its acknowledgement.
#[derive(Default)]
struct Visibility {
    /// Number of the last group whose writers were (or are being) told it is durable.
    committed: AtomicU64,
    /// Number of the last group in the index (`u64::MAX` once the index thread is gone:
    /// nothing more will be applied, queries answer from what is there).
    applied: AtomicU64,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Visibility {
    fn applied_up_to(&self, group: u64) {
        self.applied.fetch_max(group, Ordering::AcqRel);
        // Taking the lock orders this with a waiter between its check and its sleep.
        drop(self.lock.lock());
        self.changed.notify_all();
    }

    /// Returns once every group committed before the call is in the index.
    fn wait(&self) {
        self.wait_for(self.committed.load(Ordering::Acquire));
    }

    /// Returns once group `want` is in the index (or the index thread is gone).
    fn wait_for(&self, want: u64) {
        if self.applied.load(Ordering::Acquire) >= want {
            return;
        }
        let mut guard = self.lock.lock();
        while self.applied.load(Ordering::Acquire) < want {
            self.changed.wait(&mut guard);
        }
    }
}

/// Lets queries through if the index thread stops, even by a panic: they then answer from
/// what the index holds instead of waiting for groups nobody will apply.
struct OpenGate<'a>(&'a Visibility);

impl Drop for OpenGate<'_> {
    fn drop(&mut self) {
        self.0.applied_up_to(u64::MAX);
    }
}

/// State shared by the handle and the writer thread.
pub(crate) struct Shared {
    dir: PathBuf,
    pub(crate) index: RwLock<Index>,
    visible: Visibility,
    pub(crate) wal_bytes: AtomicU64,
    pub(crate) segment_bytes: AtomicU64,
    pub(crate) segment_files: AtomicU64,
    checkpoints: AtomicU64,
    /// Whether the last checkpoint failed (the next one runs even if nothing was written).
    checkpoint_failed: std::sync::atomic::AtomicBool,
    writer_thread: OnceLock<ThreadId>,
    index_thread: OnceLock<ThreadId>,
    #[cfg(test)]
    hooks: Mutex<tests::Hooks>,
    /// Set when a test hook stopped a checkpoint as a crash would: no thread does more IO.
    #[cfg(test)]
    crashed: std::sync::atomic::AtomicBool,
}

/// The durable history of all twins. Cheap to share behind an `Arc`; every method takes
/// `&self`.
pub struct Store {
    shared: Arc<Shared>,
    /// `None` once closed: submitting then fails with [`StoreError::Closed`].
    tx: RwLock<Option<Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<Result<(), StoreError>>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .field("closed", &self.tx.read().is_none())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`: reads the manifest and the indexes of
    /// the segment files it names, then replays the WAL segments it does not cover. A torn
    /// tail of the last WAL segment is cut off with a warning; damage anywhere else is
    /// [`StoreError::Corrupt`].
    pub fn open(dir: impl AsRef<Path>, opts: StoreOptions) -> Result<Store, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        let wal_dir = dir.join("wal");
        let chunks_dir = dir.join("chunks");
        for d in [&wal_dir, &chunks_dir] {
            fs::create_dir_all(d).map_err(|e| StoreError::io(d, "create directory", e))?;
        }
        let lock = lock_dir(&dir)?;

        let manifest = manifest::read(&dir)?.unwrap_or_default();
        let mut index = Index::new(opts.chunk_points);
        let mut segments = BTreeMap::new();
        for (id, dead) in &manifest.segments {
            let path = chunks_dir.join(segment::segment_name(*id));
            let (file, entries) = segment::open(&path, *id)?;
            let chunk_bytes = entries
                .iter()
                .flat_map(|e| {
                    let chunks = e.chunks.iter().map(|(loc, _)| loc);
                    chunks.chain(e.rollups.iter().map(|b| &b.loc))
                })
                .map(|loc| u64::from(loc.len))
                .sum();
            index.load_segment(&file, entries, dead);
            segments.insert(*id, SegMeta { file, chunk_bytes });
        }
        index.finish_load()?;
        checkpoint::remove_stale_segments(&chunks_dir, &segments.keys().copied().collect())?;

        let mut wal_segments = list_segments(&wal_dir)?;
        // Segments before `wal_start` are in segment files already; a checkpoint that
        // committed its manifest but stopped before deleting them left them behind.
        for (n, path) in wal_segments.iter().filter(|(n, _)| *n < manifest.wal_start) {
            tracing::info!(file = %path.display(), segment = n, "removing a checkpointed WAL segment");
            fs::remove_file(path).map_err(|e| StoreError::io(path, "remove", e))?;
        }
        wal_segments.retain(|(n, _)| *n >= manifest.wal_start);
        let mut wal_bytes = 0u64;
        let count = wal_segments.len();
        for (i, (_, path)) in wal_segments.iter().enumerate() {
            let later = count - 1 - i;
            wal_bytes += replay_segment(path, later, &mut index)?;
        }
        let unsaved = wal_bytes.saturating_sub(wal::HEADER_LEN * count as u64);
        let (seg_no, seg_path) = match wal_segments.pop() {
            Some(last) => last,
            None => {
                let n = manifest.wal_start.max(1);
                wal_bytes += wal::HEADER_LEN;
                (n, create_segment(&wal_dir, n)?)
            }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg_path)
            .map_err(|e| StoreError::io(&seg_path, "open for append", e))?;
        let seg_len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| StoreError::io(&seg_path, "seek", e))?;

        let shared = Arc::new(Shared {
            dir: dir.clone(),
            index: RwLock::new(index),
            visible: Visibility::default(),
            wal_bytes: AtomicU64::new(wal_bytes),
            segment_bytes: AtomicU64::new(0),
            segment_files: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_failed: std::sync::atomic::AtomicBool::new(false),
            writer_thread: OnceLock::new(),
            index_thread: OnceLock::new(),
            #[cfg(test)]
            hooks: Mutex::new(tests::Hooks::default()),
            #[cfg(test)]
            crashed: std::sync::atomic::AtomicBool::new(false),
        });
        let ckpt = Checkpointer {
            dir: dir.clone(),
            chunks_dir,
            segments,
            manifest,
        };
        ckpt.publish(&shared);
        let (apply_tx, apply_rx) = mpsc::channel();
        let index_shared = shared.clone();
        let index_wal_dir = wal_dir.clone();
        let index_handle = thread::Builder::new()
            .name("doppel-index".into())
            .spawn(move || apply_loop(&index_shared, apply_rx, ckpt, &index_wal_dir))
            .map_err(|e| StoreError::io(&dir, "spawn index thread for", e))?;
        let _ = shared.index_thread.set(index_handle.thread().id());
        let writer = Writer {
            applier: Some((apply_tx, index_handle)),
            shared: shared.clone(),
            opts,
            wal_dir,
            seg_no,
            seg_path,
            file,
            seg_len,
            failed: None,
            group: 0,
            buf: Vec::new(),
            backlog: std::collections::VecDeque::new(),
            backlog_bytes: 0,
            unsaved,
            crashed: false,
            _lock: lock,
        };
        let (tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("doppel-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io(&dir, "spawn writer thread for", e))?;
        let _ = shared.writer_thread.set(handle.thread().id());
        Ok(Store {
            shared,
            tx: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// Appends `rows` and returns once they are durable and visible to queries. Must not be
    /// called from a [`Store::write_with`] completion (that runs on the store's writer
    /// thread, which would then wait for itself); use `write_with` there.
    pub fn write(&self, rows: Vec<Row>) -> Result<(), StoreError> {
        self.wait(|done| self.write_with(rows, done))
    }

    /// Queues `rows` and returns at once; `done` runs on the store's writer thread once the
    /// group commit holding them is durable, with its outcome; every query made after that
    /// sees them (it waits for the index thread, which applies the group meanwhile). If the
    /// request is refused outright (store closed, a row the WAL cannot hold) `done` runs on
    /// the calling thread before this returns.
    pub fn write_with(
        &self,
        rows: Vec<Row>,
        done: Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>,
    ) {
        let mut record = Vec::new();
        if !rows.is_empty() {
            if let Err(e) = wal::encode_rows(&rows, &mut record) {
                return complete(done, Err(encode_error(e)));
            }
        }
        self.submit(Request {
            op: Op::Rows(rows),
            record,
            done,
        });
    }

    /// Appends a validated batch and returns once it is durable and visible to queries;
    /// not from a completion (see [`Store::write`]).
    pub fn write_batch(&self, batch: Arc<ValidatedBatch>) -> Result<(), StoreError> {
        self.wait(|done| self.write_batch_with(batch, done))
    }

    /// Queues a validated batch's points, like [`Store::write_with`] the same points as rows
    /// (same durability, same `done`). Its WAL record is a readings record (each reading's
    /// twin and time once), and the index thread applies the batch from the caller's
    /// readings: no `Row` per point, and no name shared across threads has its reference
    /// count touched per point. The index thread may still hold the batch when `done` runs.
    pub fn write_batch_with(
        &self,
        batch: Arc<ValidatedBatch>,
        done: Box<dyn FnOnce(Result<(), StoreError>) + Send + 'static>,
    ) {
        let mut record = Vec::new();
        let readings = batch.readings.iter().map(|r| {
            (
                &*r.twin,
                r.ts,
                r.values.iter().map(|(signal, value)| (&**signal, value)),
            )
        });
        if let Err(e) = wal::encode_readings(readings, &mut record) {
            return complete(done, Err(encode_error(e)));
        }
        self.submit(Request {
            op: Op::Batch(batch),
            record,
            done,
        });
    }

    /// Forgets all history of `twin`, durably: a tombstone goes into the WAL, so replay drops
    /// the twin's earlier points too. Points written after this call are kept.
    pub fn delete_twin(&self, twin: &str) -> Result<(), StoreError> {
        let mut record = Vec::new();
        wal::encode_tombstone(twin, &mut record).map_err(encode_error)?;
        self.wait(|done| {
            self.submit(Request {
                op: Op::Tombstone(twin.into()),
                record,
                done,
            })
        })
    }

    /// Forgets the points of `twin` with `ts < before`, of one `signal` or (with `None`) of
    /// all its signals, durably: retention. Returns once the cut is in the WAL (fsynced) and
    /// applied; points at or after `before` are kept, and so are points written after this
    /// call, whatever their time (the cut applies at its place in the log, as
    /// [`Store::delete_twin`] does). Chunks wholly before `before` die (their space is
    /// reclaimed when the next checkpoints compact their segment files); the one chunk of a
    /// series that straddles it is re-encoded without the old points at once. The numeric
    /// values forgotten are kept as minute and hour rollups, which [`Store::downsample`]
    /// answers from at steps of whole minutes; a series with a chunk that cannot be read is
    /// left whole (nothing is forgotten without its rollups).
    pub fn drop_before(
        &self,
        twin: &str,
        signal: Option<&str>,
        before: Timestamp,
    ) -> Result<(), StoreError> {
        let mut record = Vec::new();
        wal::encode_cut(twin, signal, before, &mut record).map_err(encode_error)?;
        self.wait(|done| {
            self.submit(Request {
                op: Op::Cut {
                    twin: twin.into(),
                    signal: signal.map(Arc::from),
                    before,
                },
                record,
                done,
            })
        })
    }

    /// Writes every sealed and open point to a new segment file and commits it with a new
    /// manifest, then deletes the WAL segments it covers (see `checkpoint.rs`). Runs on the
    /// index thread in its place among the group commits; returns once done. Does nothing if
    /// nothing was written since the last checkpoint and that one succeeded.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.wait(|done| {
            self.submit(Request {
                op: Op::Checkpoint,
                record: Vec::new(),
                done,
            })
        })
    }

    /// Points of one series with `from <= ts < to`, ascending by time, at most `limit`.
    pub fn range(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<Point>, StoreError> {
        query::check_range(from, to)?;
        self.index().range(twin, signal, from, to, limit)
    }

    /// Aggregates of one series per `step`-wide bucket aligned to the epoch
    /// (`start = ts.div_euclid(step) * step`), for the non-empty buckets in `[from, to)`,
    /// ascending. `Count` works on any value; the others need numbers (bools are 0/1).
    ///
    /// When `step` is a whole number of minutes, the rollups of points retention forgot are
    /// merged in (hour rollups for whole hours), each rollup bucket whose points (first to
    /// last) lie in `[from, to)` counting with its summary (one partly outside does not
    /// count: it cannot be split); `first`/`last` are its first and last point.
    pub fn downsample(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        step: i64,
        agg: Agg,
    ) -> Result<Vec<Bucket>, StoreError> {
        query::check_downsample(from, to, step)?;
        self.index().downsample(twin, signal, from, to, step, agg)
    }

    /// The times of the first and the last data of one series that [`Store::downsample`] at
    /// `step` would use: its points, and when `step` is whole minutes the rollups of points
    /// retention forgot too. What an open-ended downsample clamps its range to.
    pub fn downsample_span(
        &self,
        twin: &str,
        signal: &str,
        step: i64,
    ) -> Option<(Timestamp, Timestamp)> {
        self.index().downsample_span(twin, signal, step)
    }

    /// The latest point of one series.
    pub fn last(&self, twin: &str, signal: &str) -> Option<Point> {
        self.last_at(twin, signal, Timestamp::MAX)
    }

    /// The latest point of one series with `ts <= at`.
    pub fn last_at(&self, twin: &str, signal: &str, at: Timestamp) -> Option<Point> {
        self.index().last_at(twin, signal, at)
    }

    /// The state of a twin at time `at`: for each of its signals the latest point with
    /// `ts <= at` (signals without one are left out), sorted by signal name.
    pub fn as_of(&self, twin: &str, at: Timestamp) -> Vec<(Arc<str>, Point)> {
        self.index().as_of(twin, at)
    }

    /// The last point of every series as (twin, signal, point), sorted by twin then signal;
    /// what the engine needs to rebuild live state at startup.
    pub fn latest_all(&self) -> Vec<(Arc<str>, Arc<str>, Point)> {
        self.index().latest_all()
    }

    /// Series and point counts, chunk counts, and the bytes of WAL and segment files.
    pub fn stats(&self) -> StoreStats {
        let index = self.index();
        let (chunks, open_points, rollup_blocks, rollup_bytes) = index.chunk_counts();
        StoreStats {
            series: index.series_count(),
            points: index.point_count(),
            wal_bytes: self.shared.wal_bytes.load(Ordering::Relaxed),
            chunks,
            open_points,
            rollup_blocks,
            rollup_bytes,
            segment_files: self.shared.segment_files.load(Ordering::Relaxed),
            segment_bytes: self.shared.segment_bytes.load(Ordering::Relaxed),
            checkpoints: self.shared.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// [`StoreStats`] per series, sorted by (twin, signal).
    pub fn series_stats(&self) -> Vec<SeriesStats> {
        self.index().series_stats()
    }

    /// Commits everything already queued, fsyncs, and stops the writer thread. Later writes
    /// fail with [`StoreError::Closed`]; queries keep answering from memory. Calling it again
    /// returns `Ok`. If the store had gone into its failed state, that error is returned.
    pub fn close(&self) -> Result<(), StoreError> {
        let me = thread::current().id();
        let on_writer = self.shared.writer_thread.get() == Some(&me)
            || self.shared.index_thread.get() == Some(&me);
        // Dropping the only sender lets the writer drain the queue and then see the end.
        self.tx.write().take();
        if on_writer {
            // Called from a completion (they run on the writer thread): the writer cannot be
            // joined from here; it stops by itself once this callback returns and the queue
            // is empty.
            return Ok(());
        }
        let mut writer = self.writer.lock();
        let Some(handle) = writer.take() else {
            return Ok(());
        };
        match handle.join() {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(dir = %self.shared.dir.display(), "WAL writer thread panicked");
                Err(StoreError::Closed)
            }
        }
    }

    /// The index for a query, once it holds every write acknowledged so far.
    fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.shared.visible.wait();
        self.shared.index.read()
    }

    fn submit(&self, req: Request) {
        let tx = self.tx.read();
        let refused = match tx.as_ref() {
            Some(tx) => tx.send(req).err().map(|e| e.0),
            None => Some(req),
        };
        drop(tx);
        if let Some(req) = refused {
            complete(req.done, Err(StoreError::Closed));
        }
    }

    /// Runs `submit` with a completion that this thread then waits for.
    fn wait(&self, submit: impl FnOnce(Done)) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        submit(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        // A dropped completion means the writer thread is gone.
        rx.recv().unwrap_or(Err(StoreError::Closed))
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(dir = %self.shared.dir.display(), error = %e, "closing the store on drop failed");
        }
    }
}

fn encode_error(e: EncodeError) -> StoreError {
    match e {
        EncodeError::Row {
            twin,
            signal,
            reason,
        } => StoreError::InvalidRow {
            twin,
            signal,
            reason,
        },
        EncodeError::TooLarge { bytes } => StoreError::BatchTooLarge {
            bytes,
            limit: wal::MAX_RECORD_BYTES,
        },
    }
}

/// Calls a completion; a panicking completion is logged instead of killing the thread that
/// runs it (which would strand every later writer).
fn complete(done: Done, result: Result<(), StoreError>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(result)));
    if outcome.is_err() {
        tracing::error!("a store write completion panicked; ignored");
    }
}

/// Segment files of `wal_dir` in replay order. Leftover `*.tmp` files of an interrupted
/// segment creation are removed: they were never renamed into place, so they hold nothing.
fn list_segments(wal_dir: &Path) -> Result<Vec<(u32, PathBuf)>, StoreError> {
    let entries =
        fs::read_dir(wal_dir).map_err(|e| StoreError::io(wal_dir, "list directory", e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError::io(wal_dir, "list directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = wal::parse_segment_name(name) {
            out.push((n, entry.path()));
        } else if name.ends_with(".wal.tmp") {
            if let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove stale temporary WAL segment");
            }
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// Replays one segment into `index`; returns the bytes it holds afterwards. `later` is the
/// number of segments after this one: only the last (`later == 0`) may have a torn tail.
fn replay_segment(path: &Path, later: usize, index: &mut Index) -> Result<u64, StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| StoreError::io(path, "stat", e))?
        .len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let scan = wal::scan_segment(&mut reader, len, |rec| match rec {
        Record::Rows(rows) => index.insert_all(rows),
        Record::Readings(payload) => index.insert_readings(&payload),
        Record::Tombstone(twin) => index.delete_twin(&twin),
        Record::Cut {
            twin,
            signal,
            before,
        } => index.drop_before(&twin, signal.as_deref(), before),
    })
    .map_err(|e| StoreError::io(path, "read", e))?;
    let corrupt = |offset: u64, reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    match scan.end {
        ScanEnd::Clean => Ok(len),
        ScanEnd::BadMagic => Err(corrupt(0, "not a doppel WAL segment (bad magic)".into())),
        ScanEnd::BadPayload { offset, reason } => Err(corrupt(
            offset,
            format!("record with a valid checksum does not decode: {reason}"),
        )),
        ScanEnd::ShortHeader if later == 0 => {
            // Only a crash while the segment was being created leaves this; it holds nothing.
            tracing::warn!(file = %path.display(), offset = 0u64, bytes = len, "rewriting the incomplete header of the last WAL segment");
            let mut f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| StoreError::io(path, "open for repair", e))?;
            f.set_len(0)
                .and_then(|()| f.write_all(wal::MAGIC))
                .map_err(|e| StoreError::io(path, "rewrite header", e))?;
            f.sync_all().map_err(|e| StoreError::io(path, "fsync", e))?;
            Ok(wal::HEADER_LEN)
        }
        ScanEnd::ShortHeader => Err(corrupt(
            0,
            format!("{len} bytes, shorter than the segment header, and {later} segments follow"),
        )),
        ScanEnd::BadFrame { offset, reason } if later == 0 => {
            tracing::warn!(
                file = %path.display(),
                offset,
                discarded_bytes = len - offset,
                reason = %reason,
                "truncating the torn tail of the last WAL segment"
            );
            let f = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| StoreError::io(path, "open for truncation", e))?;
            f.set_len(offset)
                .map_err(|e| StoreError::io(path, "truncate", e))?;
            f.sync_all().map_err(|e| StoreError::io(path, "fsync", e))?;
            Ok(offset)
        }
        ScanEnd::BadFrame { offset, reason } => Err(corrupt(
            offset,
            format!("{reason}; {later} later segments follow, so this is not a torn tail"),
        )),
    }
}

/// Creates segment `n` whole or not at all: header written and synced under a temporary
/// name, renamed into place, directory synced. Replay therefore never meets a segment of
/// ours without its header.
fn create_segment(wal_dir: &Path, n: u32) -> Result<PathBuf, StoreError> {
    let path = wal_dir.join(wal::segment_name(n));
    let tmp = wal_dir.join(format!("{}.tmp", wal::segment_name(n)));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, "create", e))?;
        f.write_all(wal::MAGIC)
            .map_err(|e| StoreError::io(&tmp, "write header", e))?;
        f.sync_all().map_err(|e| StoreError::io(&tmp, "fsync", e))?;
        fs::rename(&tmp, &path).map_err(|e| StoreError::io(&path, "rename into place", e))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(wal_dir)?;
    Ok(path)
}

/// Takes the exclusive lock of the store in `dir` (file `LOCK`), without waiting.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::io(&path, "open", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(StoreError::io(&path, "lock", e)),
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, "fsync directory", e))
}

/// WAL bytes of group commits the writer may have handed the index thread and the index not
/// yet applied before the writer waits for it: bounds the memory of a writer that runs ahead
/// of the index (about 1 M points of ten-signal readings, some 45 MB of batches), with room
/// for the index thread to run a checkpoint (50-110 ms at 7 M points/s) while the writer
/// goes on.
const APPLY_BACKLOG_BYTES: u64 = 16 << 20;

/// What the writer thread hands the index thread, in WAL order.
enum Apply {
    /// A durable group commit (numbered, see [`Visibility`]): apply it to the index.
    Commit(u64, Vec<Op>),
    /// Run a checkpoint covering the WAL segments before `wal_start` (which hold exactly
    /// what was sent before this) and tell `done`, if any, how it went.
    Checkpoint { wal_start: u32, done: Option<Done> },
}

/// The index thread: applies durable group commits to the index, whatever is queued under
/// one index lock, and runs the checkpoints (`checkpoint.rs`) in their place among them, so
/// that the writer thread goes on writing and syncing group commits meanwhile.
fn apply_loop(shared: &Shared, rx: Receiver<Apply>, mut ckpt: Checkpointer, wal_dir: &Path) {
    let _gate = OpenGate(&shared.visible);
    let mut pending = Vec::new();
    let mut commits = Vec::new();
    while let Ok(first) = rx.recv() {
        pending.push(first);
        pending.extend(rx.try_iter());
        for m in pending.drain(..) {
            match m {
                Apply::Checkpoint { wal_start, done } => {
                    apply_all(shared, &mut commits);
                    let result = run_checkpoint(shared, &mut ckpt, wal_dir, wal_start);
                    match done {
                        Some(done) => complete(done, result),
                        None => {
                            if let Err(e) = result {
                                tracing::warn!(error = %e, "checkpoint failed; the WAL keeps everything and a later one retries");
                            }
                        }
                    }
                }
                m => commits.push(m),
            }
        }
        apply_all(shared, &mut commits);
    }
}

/// Steps 2 to 6 of a checkpoint (see `checkpoint.rs`) on the index thread, which has applied
/// everything in the WAL segments before `wal_start`.
fn run_checkpoint(
    shared: &Shared,
    ckpt: &mut Checkpointer,
    wal_dir: &Path,
    wal_start: u32,
) -> Result<(), StoreError> {
    #[cfg(test)]
    if shared.crashed.load(Ordering::Acquire) {
        return Err(StoreError::Closed);
    }
    #[cfg(test)]
    let delay = shared.hooks.lock().checkpoint_delay;
    #[cfg(test)]
    if let Some(delay) = delay {
        thread::sleep(delay);
    }
    let started = std::time::Instant::now();
    let mut stop = |_step: Step| -> Result<(), StoreError> {
        #[cfg(test)]
        if shared.hooks.lock().crash_at == Some(_step) {
            // Stopped as a crash would: no more IO of any kind, on any thread.
            shared.crashed.store(true, Ordering::Release);
            return Err(StoreError::Closed);
        }
        Ok(())
    };
    let result = ckpt.run(shared, wal_dir, wal_start, &mut stop);
    shared
        .checkpoint_failed
        .store(result.is_err(), Ordering::Release);
    if result.is_ok() {
        shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            millis = started.elapsed().as_millis() as u64,
            segments = ckpt.segments.len(),
            "checkpoint done"
        );
    }
    result
}

/// Applies `pending` (emptied), in order, then tells queries and barriers.
fn apply_all(shared: &Shared, pending: &mut Vec<Apply>) {
    let mut applied = None;
    if pending.iter().any(|m| matches!(m, Apply::Commit(..))) {
        #[cfg(test)]
        if let Some(delay) = shared.hooks.lock().apply_delay {
            thread::sleep(delay);
        }
        let mut index = shared.index.write();
        for m in pending.iter_mut() {
            if let Apply::Commit(group, ops) = m {
                applied = Some(*group);
                for op in ops.iter_mut() {
                    match std::mem::replace(op, Op::Checkpoint) {
                        Op::Rows(rows) => index.insert_all(rows),
                        Op::Batch(batch) => index.insert_batch(&batch),
                        Op::Tombstone(twin) => index.delete_twin(&twin),
                        Op::Cut {
                            twin,
                            signal,
                            before,
                        } => index.drop_before(&twin, signal.as_deref(), before),
                        Op::Checkpoint => {}
                    }
                }
            }
        }
    }
    if let Some(group) = applied {
        shared.visible.applied_up_to(group);
    }
    for m in pending.drain(..) {
        if let Apply::Checkpoint {
            done: Some(done), ..
        } = m
        {
            // Only here when the index thread is gone, and its checkpoint state with it.
            complete(done, Err(StoreError::Closed));
        }
    }
}

/// How long the writer thread waits for writes before it gives back its batch buffer.
const IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer thread's state: the open segment and the group-commit loop.
struct Writer {
    /// The index thread: its queue and handle (`None` once stopped).
    applier: Option<(Sender<Apply>, JoinHandle<()>)>,
    shared: Arc<Shared>,
    opts: StoreOptions,
    wal_dir: PathBuf,
    seg_no: u32,
    seg_path: PathBuf,
    file: File,
    /// Bytes of the open segment that hold committed data; the file position is here.
    seg_len: u64,
    /// Set when a failed batch could not be cut off again; every later write gets it.
    failed: Option<StoreError>,
    /// Number of the last durable group commit (see [`Visibility`]).
    group: u64,
    /// Reused buffer for one batch's bytes.
    buf: Vec<u8>,
    /// Group commits handed to the index thread and maybe not applied yet, with their WAL
    /// bytes, and the sum of those (see [`APPLY_BACKLOG_BYTES`]).
    backlog: std::collections::VecDeque<(u64, u64)>,
    backlog_bytes: u64,
    /// WAL record bytes written since the last checkpoint was started.
    unsaved: u64,
    /// Set by a test hook that stopped a checkpoint as a crash would: do no more IO.
    crashed: bool,
    /// The directory's `LOCK` file, locked while this thread may write.
    _lock: File,
}

impl Writer {
    fn run(mut self, rx: Receiver<Request>) -> Result<(), StoreError> {
        let mut carry: Option<Request> = None;
        loop {
            let first = match carry.take() {
                Some(r) => r,
                None => match rx.recv_timeout(IDLE) {
                    Ok(r) => r,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Idle: the batch buffer of a busy spell (up to `max_batch_bytes`)
                        // need not stay for the life of the process.
                        self.buf = Vec::new();
                        match rx.recv() {
                            Ok(r) => r,
                            Err(_) => break,
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break, // every sender dropped: closed, queue drained
                },
            };
            if matches!(first.op, Op::Checkpoint) {
                self.checkpoint(Some(first.done));
                continue;
            }
            let mut bytes = first.record.len();
            let mut batch = vec![first];
            while bytes < self.opts.max_batch_bytes {
                match rx.try_recv() {
                    Ok(r)
                        if matches!(r.op, Op::Checkpoint)
                            || bytes + r.record.len() > self.opts.max_batch_bytes =>
                    {
                        carry = Some(r);
                        break;
                    }
                    Ok(r) => {
                        bytes += r.record.len();
                        batch.push(r);
                    }
                    Err(_) => break,
                }
            }
            self.commit(batch);
            if self.unsaved >= self.opts.checkpoint_wal_bytes && self.failed.is_none() {
                // A failed one is retried after as many bytes again, not after every commit
                // (each try rotates the WAL and reseals).
                self.checkpoint(None);
            }
        }
        let result = self.finish();
        if let Some((tx, handle)) = self.applier.take() {
            drop(tx);
            if handle.join().is_err() {
                tracing::error!("store index thread panicked");
            }
        }
        result
    }

    /// Hands `m` to the index thread; if that thread is gone, does its work here.
    fn apply(&self, m: Apply) {
        let refused = match &self.applier {
            Some((tx, _)) => tx.send(m).err().map(|e| e.0),
            None => Some(m),
        };
        if let Some(m) = refused {
            apply_all(&self.shared, &mut vec![m]);
        }
    }

    /// Whether a test hook stopped a checkpoint as a crash would; from then on this thread
    /// does no IO either.
    fn crashed(&mut self) -> bool {
        #[cfg(test)]
        if self.shared.crashed.load(Ordering::Acquire) {
            self.crashed = true;
            self.failed = Some(StoreError::Closed);
        }
        self.crashed
    }

    /// Starts a checkpoint (see `checkpoint.rs`) if anything was written since the last one
    /// or the last one failed: rotates the WAL (step 1) and hands the rest to the index
    /// thread, in its place among the group commits, so this thread goes on committing.
    /// `done` hears how it went; without one, a failure is logged.
    fn checkpoint(&mut self, done: Option<Done>) {
        let tell = |done: Option<Done>, result: Result<(), StoreError>| match done {
            Some(done) => complete(done, result),
            None => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "checkpoint not started; the WAL keeps everything and a later one retries");
                }
            }
        };
        if self.crashed() {
            return tell(done, Err(StoreError::Closed));
        }
        if let Some(e) = &self.failed {
            return tell(done, Err(e.duplicate()));
        }
        let retry = self.shared.checkpoint_failed.load(Ordering::Acquire);
        if self.unsaved == 0 && !retry {
            return tell(done, Ok(()));
        }
        tracing::debug!(unsaved = self.unsaved, "checkpoint started");
        if let Err(e) = self.rotate() {
            return tell(done, Err(e));
        }
        self.unsaved = 0;
        let wal_start = self.seg_no;
        self.apply(Apply::Checkpoint { wal_start, done });
    }

    /// Waits while the index thread is more than [`APPLY_BACKLOG_BYTES`] behind.
    fn bound_backlog(&mut self, group: u64, bytes: u64) {
        self.backlog.push_back((group, bytes));
        self.backlog_bytes += bytes;
        let applied = self.shared.visible.applied.load(Ordering::Acquire);
        while let Some(&(g, b)) = self.backlog.front() {
            if g > applied && self.backlog_bytes <= APPLY_BACKLOG_BYTES {
                break;
            }
            self.shared.visible.wait_for(g);
            self.backlog.pop_front();
            self.backlog_bytes -= b;
        }
    }

    fn commit(&mut self, mut batch: Vec<Request>) {
        self.crashed();
        let result = match &self.failed {
            Some(e) => Err(e.duplicate()),
            None => {
                self.buf.clear();
                for r in &batch {
                    self.buf.extend_from_slice(&r.record);
                }
                if self.buf.is_empty() {
                    Ok(())
                } else {
                    self.maybe_rotate();
                    match &self.failed {
                        Some(e) => Err(e.duplicate()),
                        None => self.append(),
                    }
                }
            }
        };
        match result {
            Ok(()) => {
                self.group += 1;
                let (ops, dones): (Vec<Op>, Vec<Done>) =
                    batch.into_iter().map(|r| (r.op, r.done)).unzip();
                self.apply(Apply::Commit(self.group, ops));
                self.shared
                    .visible
                    .committed
                    .store(self.group, Ordering::Release);
                for done in dones {
                    complete(done, Ok(()));
                }
                self.bound_backlog(self.group, self.buf.len() as u64);
            }
            Err(e) => {
                // Everyone gets a copy; the last writer gets the original error.
                let last = batch.pop();
                for r in batch {
                    complete(r.done, Err(e.duplicate()));
                }
                if let Some(r) = last {
                    complete(r.done, Err(e));
                }
            }
        }
        if self.buf.capacity() > 2 * self.opts.max_batch_bytes.max(1 << 16) {
            // One oversized write must not pin its buffer for the life of the process.
            self.buf = Vec::new();
        }
    }

    /// Writes and syncs `self.buf` at the end of the open segment; on failure cuts the
    /// segment back to where it was.
    fn append(&mut self) -> Result<(), StoreError> {
        let prev = self.seg_len;
        match self.write_and_sync() {
            Ok(()) => {
                let n = self.buf.len() as u64;
                self.seg_len += n;
                self.unsaved += n;
                self.shared.wal_bytes.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "WAL group commit failed; cutting the batch off the segment");
                if let Err(repair) = self.cut_back(prev) {
                    tracing::error!(error = %repair, "cannot cut a failed batch off the WAL; refusing all further writes");
                    self.failed = Some(repair);
                }
                Err(e)
            }
        }
    }

    fn write_and_sync(&mut self) -> Result<(), StoreError> {
        #[cfg(test)]
        {
            self.shared.hooks.lock().appends += 1;
        }
        #[cfg(test)]
        if self.shared.hooks.lock().fail_write {
            // Simulate a write that got half-way before failing (ENOSPC mid-batch).
            let half = self.buf.len() / 2;
            let _ = self.file.write_all(&self.buf[..half]);
            return Err(StoreError::io(
                &self.seg_path,
                "write",
                std::io::Error::new(std::io::ErrorKind::StorageFull, "injected"),
            ));
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| StoreError::io(&self.seg_path, "write", e))?;
        if self.opts.fsync {
            self.file
                .sync_data()
                .map_err(|e| StoreError::io(&self.seg_path, "fsync", e))?;
        }
        Ok(())
    }

    /// Truncates the open segment to `len` and makes that durable, so bytes of a failed batch
    /// that did reach the disk cannot be replayed later.
    fn cut_back(&mut self, len: u64) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.shared.hooks.lock().fail_truncate {
            return Err(StoreError::io(
                &self.seg_path,
                "truncate",
                std::io::Error::other("injected"),
            ));
        }
        self.file
            .set_len(len)
            .map_err(|e| StoreError::io(&self.seg_path, "truncate", e))?;
        self.file
            .seek(SeekFrom::Start(len))
            .map_err(|e| StoreError::io(&self.seg_path, "seek", e))?;
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.seg_path, "fsync", e))
    }

    /// Starts a new segment once the open one has outgrown `segment_bytes`. A failure to do
    /// so is not a failed write: the batch goes into the current segment and rotation is
    /// tried again next time.
    fn maybe_rotate(&mut self) {
        if self.seg_len < self.opts.segment_bytes || self.seg_len <= wal::HEADER_LEN {
            return;
        }
        if let Err(e) = self.rotate() {
            tracing::warn!(error = %e, "cannot start a new WAL segment; continuing in the current one");
        }
    }

    /// Closes the open WAL segment (fsynced) and starts the next one.
    fn rotate(&mut self) -> Result<(), StoreError> {
        // Eight digits in the name; at the last number keep appending rather than break the
        // replay order.
        let Some(next) = self.seg_no.checked_add(1).filter(|&n| n <= 99_999_999) else {
            return Err(StoreError::io(
                &self.seg_path,
                "rotate",
                std::io::Error::other("no WAL segment numbers left"),
            ));
        };
        // Everything before the new segment must be durable before anything lands in it,
        // or a crash could leave a torn record in a segment that is no longer the last.
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.seg_path, "fsync", e))?;
        let created = create_segment(&self.wal_dir, next).and_then(|path| {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| StoreError::io(&path, "open for append", e))?;
            file.seek(SeekFrom::End(0))
                .map_err(|e| StoreError::io(&path, "seek", e))?;
            Ok((path, file))
        });
        match created {
            Ok((path, file)) => {
                tracing::debug!(file = %path.display(), "started WAL segment");
                self.seg_no = next;
                self.seg_path = path;
                self.file = file;
                self.seg_len = wal::HEADER_LEN;
                self.shared
                    .wal_bytes
                    .fetch_add(wal::HEADER_LEN, Ordering::Relaxed);
                Ok(())
            }
            Err(
                e @ StoreError::Io {
                    op: "fsync directory",
                    ..
                },
            ) => {
                // The new segment is in place but maybe not durably so; writing on in the
                // old one would leave it non-last after a restart. Stop instead.
                tracing::error!(error = %e, "WAL rotation left an unsynced segment; refusing all further writes");
                self.failed = Some(e.duplicate());
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// After the last request: one final fsync (even with `fsync: false`, so a clean close
    /// is always durable).
    fn finish(&mut self) -> Result<(), StoreError> {
        if self.crashed() {
            return Ok(());
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.file
            .sync_data()
            .map_err(|e| StoreError::io(&self.seg_path, "fsync", e))?;
        if self.opts.checkpoint_on_close {
            // Run by the index thread, which the caller joins next; should it fail,
            // everything is in the WAL, durably, and the next open replays it.
            self.checkpoint(None);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use doppel_model::Value;

    /// Test hooks of the writer thread: faults it injects while set, and what it counts.
    #[derive(Debug, Default)]
    pub(crate) struct Hooks {
        /// Stops the next checkpoint at this step as a crash would.
        pub crash_at: Option<Step>,
        pub fail_write: bool,
        pub fail_truncate: bool,
        /// Group commits that wrote (each is one write call and, with fsync on, one fsync).
        pub appends: u64,
        /// The index thread waits this long before it applies group commits.
        pub apply_delay: Option<std::time::Duration>,
        /// The index thread waits this long before it runs a checkpoint.
        pub checkpoint_delay: Option<std::time::Duration>,
    }

    fn row(twin: &str, signal: &str, ts: i64, v: i64) -> Row {
        Row {
            twin: twin.into(),
            signal: signal.into(),
            ts,
            value: Value::Int(v),
        }
    }

    fn opts() -> StoreOptions {
        StoreOptions {
            fsync: false,
            ..StoreOptions::default()
        }
    }

    #[test]
    fn store_is_send_sync_debug() {
        fn check<T: Send + Sync + std::fmt::Debug>() {}
        check::<Store>();
    }

    #[test]
    fn failed_write_is_not_resurrected_by_a_later_success() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        store.write(vec![row("t", "s", 1, 1)]).unwrap();
        let before = store.stats().wal_bytes;

        store.shared.hooks.lock().fail_write = true;
        let err = store.write(vec![row("t", "s", 2, 2)]).unwrap_err();
        assert!(matches!(err, StoreError::Io { op: "write", .. }), "{err}");
        assert_eq!(
            store.last("t", "s").unwrap().ts,
            1,
            "failed batch not applied"
        );
        assert_eq!(store.stats().wal_bytes, before);
        store.shared.hooks.lock().fail_write = false;

        store.write(vec![row("t", "s", 3, 3)]).unwrap();
        store.close().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        let ts: Vec<i64> = store
            .range("t", "s", 0, 10, 10)
            .unwrap()
            .iter()
            .map(|p| p.ts)
            .collect();
        assert_eq!(ts, vec![1, 3]);
    }

    #[test]
    fn failed_repair_refuses_further_writes_but_keeps_acked_data() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        store.write(vec![row("t", "s", 1, 1)]).unwrap();
        {
            let mut f = store.shared.hooks.lock();
            f.fail_write = true;
            f.fail_truncate = true;
        }
        assert!(store.write(vec![row("t", "s", 2, 2)]).is_err());
        {
            let mut h = store.shared.hooks.lock();
            h.fail_write = false;
            h.fail_truncate = false;
        }
        let err = store.write(vec![row("t", "s", 3, 3)]).unwrap_err();
        assert!(
            matches!(err, StoreError::Io { op: "truncate", .. }),
            "{err}"
        );
        assert!(store.close().is_err(), "close reports the failed state");
        drop(store);
        // The half-written batch is a torn tail; the acked row survives.
        let store = Store::open(dir.path(), opts()).unwrap();
        let ts: Vec<i64> = store
            .range("t", "s", 0, 10, 10)
            .unwrap()
            .iter()
            .map(|p| p.ts)
            .collect();
        assert_eq!(ts, vec![1]);
    }

    #[test]
    fn queued_writers_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let (tx, rx) = mpsc::channel();
        // Holding the test hooks stalls the writer thread inside its first commit (it counts
        // the commit there), so everything submitted meanwhile is queued when it comes back
        // for more. (The index lock no longer would: the index thread applies commits.)
        let hooks = store.shared.hooks.lock();
        for i in 0..20 {
            let tx = tx.clone();
            store.write_with(
                vec![row("t", "s", i, i)],
                Box::new(move |r| tx.send(r.is_ok()).unwrap()),
            );
            if i == 0 {
                thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        drop(hooks);
        let oks: Vec<bool> = (0..20).map(|_| rx.recv().unwrap()).collect();
        assert!(oks.iter().all(|&ok| ok));
        let appends = store.shared.hooks.lock().appends;
        assert!(
            (1..=2).contains(&appends),
            "{appends} commits for 20 queued writes"
        );
        assert_eq!(store.stats().points, 20);
    }

    #[test]
    fn writes_after_close_are_refused_and_close_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        store.write(vec![row("t", "s", 1, 1)]).unwrap();
        store.close().unwrap();
        store.close().unwrap();
        assert!(matches!(
            store.write(vec![row("t", "s", 2, 2)]),
            Err(StoreError::Closed)
        ));
        assert!(matches!(store.delete_twin("t"), Err(StoreError::Closed)));
        assert!(matches!(
            store.drop_before("t", None, 5),
            Err(StoreError::Closed)
        ));
        assert_eq!(store.last("t", "s").unwrap().ts, 1, "queries still answer");
    }

    #[test]
    fn write_with_completes_on_the_writer_thread_and_queries_then_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), opts()).unwrap());
        let (tx, rx) = mpsc::channel();
        let s2 = store.clone();
        store.write_with(
            vec![row("t", "s", 7, 1)],
            Box::new(move |r| {
                let name = thread::current().name().map(str::to_string);
                let visible = s2.last("t", "s").map(|p| p.ts);
                tx.send((r.is_ok(), name, visible)).unwrap();
            }),
        );
        let (ok, name, visible) = rx.recv().unwrap();
        assert!(ok);
        assert_eq!(name.as_deref(), Some("doppel-wal"));
        assert_eq!(visible, Some(7));
    }

    /// The acknowledgement comes before the index holds the write, and a query made after
    /// it waits for the index.
    #[test]
    fn a_query_after_the_acknowledgement_waits_for_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        store.shared.hooks.lock().apply_delay = Some(std::time::Duration::from_secs(1));
        let (tx, rx) = mpsc::channel();
        store.write_with(
            vec![row("t", "s", 5, 1)],
            Box::new(move |r| tx.send(r.is_ok()).unwrap()),
        );
        assert!(rx.recv().unwrap());
        let seen = &store.shared.visible;
        assert!(
            seen.applied.load(Ordering::Acquire) < seen.committed.load(Ordering::Acquire),
            "acknowledged only after the index applied it"
        );
        assert_eq!(store.last("t", "s").map(|p| p.ts), Some(5));
        assert_eq!(store.range("t", "s", 0, 10, 10).unwrap().len(), 1);
    }

    /// A checkpoint runs on the index thread: writes made while it runs are acknowledged
    /// before it ends, and it covers what was written before it, not after.
    #[test]
    fn writes_go_on_while_a_checkpoint_runs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), opts()).unwrap());
        store.write(vec![row("t", "s", 1, 1)]).unwrap();
        store.shared.hooks.lock().checkpoint_delay = Some(std::time::Duration::from_secs(2));
        let (tx, rx) = mpsc::channel();
        let s2 = store.clone();
        let ckpt = thread::spawn(move || {
            let r = s2.checkpoint();
            tx.send(()).unwrap();
            r
        });
        // The checkpoint is queued once the writer rotated the WAL (bounded wait).
        let wal_files = || fs::read_dir(dir.path().join("wal")).unwrap().count();
        for _ in 0..200 {
            if wal_files() > 1 {
                break;
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(wal_files() > 1, "the WAL did not rotate");
        for ts in 2..10 {
            store.write(vec![row("t", "s", ts, ts)]).unwrap();
        }
        assert!(
            rx.try_recv().is_err(),
            "the writes waited for the checkpoint to end"
        );
        ckpt.join().unwrap().unwrap();
        store.shared.hooks.lock().checkpoint_delay = None;
        assert_eq!(store.shared.checkpoints.load(Ordering::Relaxed), 1);
        assert_eq!(store.range("t", "s", 0, 100, 100).unwrap().len(), 9);
        drop(store);
        let store = Store::open(dir.path(), opts()).unwrap();
        assert_eq!(store.range("t", "s", 0, 100, 100).unwrap().len(), 9);
    }

    #[test]
    fn a_panicking_completion_does_not_kill_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        store.write_with(vec![row("t", "s", 1, 1)], Box::new(|_| panic!("boom")));
        store.write(vec![row("t", "s", 2, 2)]).unwrap();
        assert_eq!(store.last("t", "s").unwrap().ts, 2);
    }

    #[test]
    fn dropping_the_last_handle_inside_a_completion_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), opts()).unwrap());
        let (tx, rx) = mpsc::channel();
        let s2 = store.clone();
        store.write_with(
            vec![row("t", "s", 1, 1)],
            Box::new(move |_| {
                drop(s2);
                tx.send(()).unwrap();
            }),
        );
        drop(store);
        rx.recv().unwrap();
    }

    #[test]
    fn unencodable_rows_are_refused_before_queueing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        let long = "x".repeat(70_000);
        let err = store
            .write(vec![row("t", "s", 1, 1), row("t", &long, 1, 1)])
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidRow { .. }), "{err}");
        assert!(
            store.last("t", "s").is_none(),
            "nothing of the batch applied"
        );
        assert!(store.delete_twin(&long).is_err());
        assert!(matches!(
            store.drop_before("t", Some(&long), 0),
            Err(StoreError::InvalidRow { .. })
        ));
        assert!(store.write(vec![]).is_ok());
    }

    #[test]
    fn segments_rotate_and_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let o = StoreOptions {
            fsync: false,
            segment_bytes: 100,
            checkpoint_on_close: false,
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), o.clone()).unwrap();
        for i in 0..50 {
            store.write(vec![row("t", "s", i, i)]).unwrap();
        }
        store.delete_twin("t").unwrap();
        store.write(vec![row("t", "s", 100, 0)]).unwrap();
        let wal_bytes = store.stats().wal_bytes;
        store.close().unwrap();
        let files = fs::read_dir(dir.path().join("wal")).unwrap().count();
        assert!(files > 5, "only {files} segments");
        let on_disk: u64 = fs::read_dir(dir.path().join("wal"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, wal_bytes);
        let store = Store::open(dir.path(), o).unwrap();
        assert_eq!(store.stats().wal_bytes, wal_bytes);
        assert_eq!(store.stats().points, 1);
        assert_eq!(store.last("t", "s").unwrap().ts, 100);
    }

    /// Options for the checkpoint tests: tiny chunks, checkpoints only when asked or at close.
    fn ckpt_opts() -> StoreOptions {
        StoreOptions {
            fsync: false,
            chunk_points: 4,
            checkpoint_wal_bytes: u64::MAX,
            ..StoreOptions::default()
        }
    }

    type Model = std::collections::BTreeMap<(String, String), std::collections::BTreeMap<i64, i64>>;

    fn apply(store: &Store, model: &mut Model, rows: &[(&str, &str, i64, i64)]) {
        store
            .write(rows.iter().map(|&(t, s, ts, v)| row(t, s, ts, v)).collect())
            .unwrap();
        for &(t, s, ts, v) in rows {
            model
                .entry((t.to_string(), s.to_string()))
                .or_default()
                .insert(ts, v);
        }
    }

    fn delete(store: &Store, model: &mut Model, twin: &str) {
        store.delete_twin(twin).unwrap();
        model.retain(|(t, _), _| t != twin);
    }

    fn cut(store: &Store, model: &mut Model, twin: &str, signal: Option<&str>, before: i64) {
        store.drop_before(twin, signal, before).unwrap();
        for ((t, s), points) in model.iter_mut() {
            if t == twin && signal.is_none_or(|want| want == s) {
                points.retain(|&ts, _| ts >= before);
            }
        }
        model.retain(|_, points| !points.is_empty());
    }

    fn assert_matches(store: &Store, model: &Model, when: &str) {
        let mut points = 0;
        for twin in ["a", "b"] {
            for signal in ["x", "y", "z"] {
                let want: Vec<(i64, i64)> = model
                    .get(&(twin.to_string(), signal.to_string()))
                    .map(|m| m.iter().map(|(&t, &v)| (t, v)).collect())
                    .unwrap_or_default();
                points += want.len() as u64;
                let got: Vec<(i64, i64)> = store
                    .range(twin, signal, i64::MIN, i64::MAX, usize::MAX)
                    .unwrap()
                    .into_iter()
                    .map(|p| match p.value {
                        Value::Int(v) => (p.ts, v),
                        v => panic!("{v:?}"),
                    })
                    .collect();
                assert_eq!(got, want, "{twin}/{signal} {when}");
                assert_eq!(
                    store.last(twin, signal).map(|p| p.ts),
                    want.last().map(|w| w.0),
                    "{twin}/{signal} last {when}"
                );
            }
        }
        assert_eq!(store.stats().points, points, "{when}");
    }

    /// A history with sealed chunks in a segment file, then changes that the next checkpoint
    /// must carry: late points (merged into file chunks, whose old versions die), overwrites,
    /// a deleted twin (its chunks die: more than half the first segment, so it is compacted),
    /// the twin written again, new points, and retention cuts (whole file chunks die, a
    /// straddling one is re-encoded, open points go; a late point older than a cut but
    /// written after it stays).
    fn history(store: &Store, model: &mut Model, first_checkpoint: bool) {
        for ts in 0..20 {
            apply(store, model, &[("a", "x", ts * 10, ts)]);
            apply(
                store,
                model,
                &[
                    ("b", "x", ts * 10, -ts),
                    ("b", "y", ts * 10, 2 * ts),
                    ("b", "z", ts, 7),
                ],
            );
        }
        if first_checkpoint {
            store.checkpoint().unwrap();
            assert_eq!(store.stats().segment_files, 1);
            assert_eq!(
                store.stats().wal_bytes,
                wal::HEADER_LEN,
                "covered WAL deleted"
            );
        }
        apply(
            store,
            model,
            &[
                ("a", "x", 15, 1500),
                ("a", "x", 30, 3000),
                ("a", "x", -5, 5),
            ],
        );
        delete(store, model, "b");
        apply(
            store,
            model,
            &[("b", "y", 3, 33), ("a", "x", 500, 50), ("a", "y", 1, 1)],
        );
        cut(store, model, "a", Some("x"), 65);
        cut(store, model, "a", None, 0);
        apply(store, model, &[("a", "x", 20, 2000)]);
    }

    const STEPS: [Step; 9] = [
        Step::WalRotated,
        Step::Sealed,
        Step::SegmentHalfWritten,
        Step::SegmentSynced,
        Step::SegmentRenamed,
        Step::ManifestWritten,
        Step::ManifestInstalled,
        Step::WalHalfDeleted,
        Step::WalDeleted,
    ];

    #[test]
    fn checkpoint_then_reopen_replays_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), ckpt_opts()).unwrap();
        let mut model = Model::new();
        history(&store, &mut model, true);
        store.checkpoint().unwrap();
        let stats = store.stats();
        assert_eq!(stats.open_points, 0);
        assert_eq!(
            stats.segment_files, 1,
            "the first segment was compacted away"
        );
        assert_eq!(stats.wal_bytes, wal::HEADER_LEN);
        assert_matches(&store, &model, "after checkpoint");
        store.close().unwrap();
        drop(store);
        let store = Store::open(dir.path(), ckpt_opts()).unwrap();
        assert_eq!(store.stats().wal_bytes, wal::HEADER_LEN);
        assert_matches(&store, &model, "after reopen");
        let files: Vec<String> = fs::read_dir(dir.path().join("chunks"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
    }

    #[test]
    fn automatic_checkpoints_bound_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let o = StoreOptions {
            checkpoint_wal_bytes: 4096,
            segment_bytes: 1024,
            ..ckpt_opts()
        };
        let store = Store::open(dir.path(), o.clone()).unwrap();
        let mut model = Model::new();
        for ts in 0..2000 {
            apply(&store, &mut model, &[("a", "x", ts, ts % 17)]);
        }
        let stats = store.stats();
        assert!(stats.checkpoints >= 10, "{stats:?}");
        assert!(stats.wal_bytes < 4096 + 1024, "{stats:?}");
        // Size-tiered merging keeps the number of files logarithmic in the checkpoints.
        let files = fs::read_dir(dir.path().join("chunks")).unwrap().count() as u64;
        assert_eq!(files, stats.segment_files);
        assert!(
            (1..=1 + stats.checkpoints.ilog2() as u64 + 1).contains(&files),
            "{stats:?}"
        );
        drop(store);
        let store = Store::open(dir.path(), o).unwrap();
        assert_matches(&store, &model, "after reopen");
    }

    #[test]
    fn a_crash_at_any_checkpoint_step_keeps_every_acked_point_once() {
        for first_checkpoint in [false, true] {
            for step in STEPS {
                let when = format!("crash at {step:?}, first checkpoint {first_checkpoint}");
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), ckpt_opts()).unwrap();
                let mut model = Model::new();
                history(&store, &mut model, first_checkpoint);
                store.shared.hooks.lock().crash_at = Some(step);
                assert!(
                    matches!(store.checkpoint(), Err(StoreError::Closed)),
                    "{when}: the step was not reached"
                );
                assert!(store.write(vec![row("a", "x", 1, 1)]).is_err(), "{when}");
                drop(store);

                let store = Store::open(dir.path(), ckpt_opts()).unwrap();
                assert_matches(&store, &model, &when);
                // The recovered store checkpoints, compacts and reopens like any other.
                apply(&store, &mut model, &[("a", "z", 9, 9), ("b", "y", 3, 34)]);
                store.checkpoint().unwrap();
                assert_eq!(store.stats().wal_bytes, wal::HEADER_LEN, "{when}");
                delete(&store, &mut model, "a");
                store.close().unwrap();
                drop(store);
                let store = Store::open(dir.path(), ckpt_opts()).unwrap();
                assert_matches(&store, &model, &format!("{when}, after recovery"));
                let leftovers: Vec<String> = fs::read_dir(dir.path())
                    .unwrap()
                    .chain(fs::read_dir(dir.path().join("chunks")).unwrap())
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".tmp"))
                    .collect();
                assert!(leftovers.is_empty(), "{when}: {leftovers:?}");
            }
        }
    }

    const SEC: i64 = 1_000_000_000;
    const MIN: i64 = 60 * SEC;
    const HOUR: i64 = 60 * MIN;

    /// The numeric points cuts forgot, per series (what the rollups must add up to).
    type Rolled = std::collections::BTreeMap<(String, String), Vec<(i64, i64)>>;

    fn cut_rolling(
        store: &Store,
        model: &mut Model,
        rolled: &mut Rolled,
        twin: &str,
        signal: Option<&str>,
        before: i64,
    ) {
        for ((t, s), points) in model.iter() {
            if t == twin && signal.is_none_or(|want| want == s) {
                rolled
                    .entry((t.clone(), s.clone()))
                    .or_default()
                    .extend(points.range(..before).map(|(&ts, &v)| (ts, v)));
            }
        }
        cut(store, model, twin, signal, before);
    }

    /// Count, sum, min, max and mean per minute and per hour over two days, from the live
    /// points and the forgotten ones, against `downsample`.
    fn assert_rollups(store: &Store, model: &Model, rolled: &Rolled, when: &str) {
        for twin in ["a", "b"] {
            for signal in ["x", "y", "z"] {
                let key = (twin.to_string(), signal.to_string());
                let mut all: Vec<(i64, i64)> = rolled.get(&key).cloned().unwrap_or_default();
                if let Some(m) = model.get(&key) {
                    all.extend(m.iter().map(|(&t, &v)| (t, v)));
                }
                for step in [MIN, 5 * MIN, HOUR, 24 * HOUR] {
                    let mut want: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
                    for &(ts, v) in &all {
                        want.entry(ts.div_euclid(step) * step).or_default().push(v);
                    }
                    for agg in [Agg::Count, Agg::Sum, Agg::Min, Agg::Max, Agg::Mean] {
                        let got: Vec<(i64, u64, f64)> = store
                            .downsample(twin, signal, -24 * HOUR, 24 * HOUR, step, agg)
                            .unwrap()
                            .into_iter()
                            .map(|b| (b.start, b.count, b.value))
                            .collect();
                        let want: Vec<(i64, u64, f64)> = want
                            .iter()
                            .map(|(&start, vs)| {
                                let n = vs.len() as f64;
                                let sum = vs.iter().sum::<i64>() as f64;
                                let value = match agg {
                                    Agg::Count => n,
                                    Agg::Sum => sum,
                                    Agg::Min => *vs.iter().min().unwrap() as f64,
                                    Agg::Max => *vs.iter().max().unwrap() as f64,
                                    _ => sum / n,
                                };
                                (start, vs.len() as u64, value)
                            })
                            .collect();
                        assert_eq!(
                            got.len(),
                            want.len(),
                            "{twin}/{signal} {agg:?} {step} {when}"
                        );
                        for (g, w) in got.iter().zip(&want) {
                            assert_eq!((g.0, g.1), (w.0, w.1), "{twin}/{signal} {agg:?} {when}");
                            assert!(
                                (g.2 - w.2).abs() <= 1e-9 * w.2.abs().max(1.0),
                                "{twin}/{signal} {agg:?} {step} {when}: {g:?} vs {w:?}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// Hours of history, some of it checkpointed, then: a late point and an overwrite
    /// replacing chunks before any cut; a cut in the middle of a minute; points still in the
    /// open buffer (only in the WAL) cut with the whole twin; a late point older than a cut
    /// written after it, and a second cut over it; a chunk replaced after its neighbours
    /// were cut; a twin cut and then deleted (its rollups go too) and written again.
    fn rollup_history(
        store: &Store,
        model: &mut Model,
        rolled: &mut Rolled,
        first_checkpoint: bool,
    ) {
        for i in 0..1543 {
            apply(store, model, &[("a", "x", i * 7 * SEC, i % 13)]);
        }
        for i in 0..200 {
            apply(
                store,
                model,
                &[("b", "x", i * 61 * SEC, i), ("a", "y", i * 20 * SEC, -i)],
            );
        }
        if first_checkpoint {
            store.checkpoint().unwrap();
        }
        apply(
            store,
            model,
            &[
                ("a", "x", 3 * SEC + SEC / 2, 100),
                ("a", "x", 14 * SEC, 200),
            ],
        );
        cut_rolling(store, model, rolled, "a", Some("x"), HOUR + 30 * SEC);
        apply(
            store,
            model,
            &[
                ("a", "z", 10 * SEC, 1),
                ("a", "z", 70 * SEC, 2),
                ("a", "z", 2 * HOUR, 3),
            ],
        );
        assert!(store.stats().open_points > 0);
        cut_rolling(store, model, rolled, "a", None, 2 * HOUR);
        apply(
            store,
            model,
            &[("a", "x", 100 * SEC, 7), ("a", "x", 2 * HOUR + 7 * SEC, 77)],
        );
        cut_rolling(store, model, rolled, "a", Some("x"), HOUR);
        cut_rolling(store, model, rolled, "b", None, 2 * HOUR);
        delete(store, model, "b");
        rolled.retain(|(t, _), _| t != "b");
        apply(store, model, &[("b", "y", 5 * SEC, 5)]);
        cut_rolling(store, model, rolled, "b", None, 6 * SEC);
    }

    #[test]
    fn rollups_survive_reopen_and_a_crash_at_any_checkpoint_step() {
        for first_checkpoint in [false, true] {
            for step in STEPS.map(Some).into_iter().chain([None]) {
                let when = format!("crash at {step:?}, first checkpoint {first_checkpoint}");
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(dir.path(), ckpt_opts()).unwrap();
                let (mut model, mut rolled) = (Model::new(), Rolled::new());
                rollup_history(&store, &mut model, &mut rolled, first_checkpoint);
                assert_rollups(&store, &model, &rolled, &format!("{when}, before"));
                assert!(store.stats().rollup_blocks > 0);
                match step {
                    Some(step) => {
                        store.shared.hooks.lock().crash_at = Some(step);
                        assert!(
                            matches!(store.checkpoint(), Err(StoreError::Closed)),
                            "{when}"
                        );
                    }
                    None => store.close().unwrap(),
                }
                drop(store);

                let store = Store::open(dir.path(), ckpt_opts()).unwrap();
                assert_matches(&store, &model, &when);
                assert_rollups(&store, &model, &rolled, &when);
                // More cuts after recovery grow the blocks read back from the file.
                cut_rolling(
                    &store,
                    &mut model,
                    &mut rolled,
                    "a",
                    Some("x"),
                    2 * HOUR + 30 * MIN,
                );
                store.checkpoint().unwrap();
                assert_rollups(&store, &model, &rolled, &format!("{when}, recovered"));
                store.close().unwrap();
                drop(store);
                let store = Store::open(dir.path(), ckpt_opts()).unwrap();
                assert_matches(&store, &model, &format!("{when}, reopened"));
                assert_rollups(&store, &model, &rolled, &format!("{when}, reopened"));
                delete(&store, &mut model, "a");
                rolled.retain(|(t, _), _| t != "a");
                store.checkpoint().unwrap();
                assert_rollups(&store, &model, &rolled, &format!("{when}, a deleted"));
                let stats = store.stats();
                // What is left is b's minute and hour block of its one point cut after it came
                // back: the rollups of the deleted twin went with it.
                assert_eq!(stats.rollup_blocks, 2, "{when}: {stats:?}");
            }
        }
    }

    #[test]
    fn damaged_segment_files_are_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), ckpt_opts()).unwrap();
        let mut model = Model::new();
        history(&store, &mut model, true);
        store.close().unwrap();
        drop(store);
        let seg = fs::read_dir(dir.path().join("chunks"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let good = fs::read(&seg).unwrap();

        // A flipped byte in the first chunk: open is lazy, the query that reads it fails.
        let mut bad = good.clone();
        bad[10] ^= 0x01;
        fs::write(&seg, &bad).unwrap();
        let store = Store::open(dir.path(), ckpt_opts()).unwrap();
        let errors = ["a", "b"]
            .iter()
            .flat_map(|t| ["x", "y", "z"].map(|s| store.range(t, s, i64::MIN, i64::MAX, 100)))
            .filter_map(Result::err)
            .collect::<Vec<_>>();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            matches!(&errors[0], StoreError::Corrupt { path, offset: 8, .. } if path == &seg),
            "{}",
            errors[0]
        );
        drop(store);

        // A damaged footer refuses the open, naming the file.
        let mut bad = good.clone();
        let at = bad.len() - 3;
        bad[at] ^= 0x01;
        fs::write(&seg, &bad).unwrap();
        match Store::open(dir.path(), ckpt_opts()) {
            Err(StoreError::Corrupt { path, .. }) => assert_eq!(path, seg),
            other => panic!("{other:?}"),
        }
        // So does a missing one.
        fs::remove_file(&seg).unwrap();
        assert!(matches!(
            Store::open(dir.path(), ckpt_opts()),
            Err(StoreError::Io {
                op: "open segment",
                ..
            })
        ));
    }
}
