//! The series index: per (twin, signal), sealed compressed chunks and an open buffer of
//! recent points, with the queries over both.
//!
//! Invariants of a series:
//! - `chunks` are sorted by time and their `[first_ts, last_ts]` spans never overlap, so a
//!   time range maps to a contiguous run of chunks and a summary covers exactly its span;
//! - `open` is strictly ascending; it may hold late points inside a chunk's span, and such a
//!   point overrides the chunk's point at the same timestamp (it was written later);
//! - `points` counts distinct timestamps across both.
//!
//! Sealing moves the open buffer into chunks: points past the last chunk become new chunks
//! (or grow a small last chunk), late points are merged into the chunk whose span or gap
//! they fall in, which is re-encoded; a replaced chunk that lives in a segment file is
//! recorded as dead so the next checkpoint's manifest drops it. Each series keeps a seal
//! hint, the codecs its last chunks took, so that a seal tries those instead of every
//! candidate (`codec/hint.rs`). Chunks stay in memory
//! (`ChunkData::Memory`) until a checkpoint writes them to a segment file; after that their
//! bytes are read from the file when a query needs them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use doppel_model::{Timestamp, ValidatedBatch, Value};

use crate::chunk::{self, Summary};
#[cfg(test)]
use crate::codec::EXPLORE_EVERY;
use crate::codec::{self, CodecError, SealHint};
use crate::open::OpenBuf;
use crate::query::{self, Downsampler};
use crate::rollup::{self, Level, Rollup, BLOCK_BUCKETS};
use crate::segment::{Location, SegmentFile, SeriesEntries};
use crate::{Agg, Bucket, Point, Row, StoreError};

/// Hash maps of the index. foldhash (seeded per process) instead of SipHash: the index is
/// looked up twice per stored point, and only names the catalog accepted reach it.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The value of `name` in `map`, inserted (keyed by `key()`) when absent. Looked up by
/// reference, so an existing name costs no `Arc` clone; `None` cannot happen.
fn by_name<'m, V: Default>(
    map: &'m mut Map<Arc<str>, V>,
    name: &str,
    key: impl FnOnce() -> Arc<str>,
) -> Option<&'m mut V> {
    if !map.contains_key(name) {
        map.insert(key(), V::default());
    }
    map.get_mut(name)
}

/// Series of each twin by signal name.
type Twins = Map<Arc<str>, Signals>;

/// The series of one twin, sorted by a hash of the signal name, then the name. A sorted
/// vector, not a hash map: a map's empty buckets (a third or more of them) and hasher cost
/// ~50 bytes a series in a fleet of a million series. The 32-bit hash beside each name lets
/// the binary search compare integers in the entries, not names behind their pointers (a
/// search by name alone made `last` ~20 ns slower than the map). It grows by an eighth (at
/// least one) at a time, so a twin's series take about what they need. Iteration order is
/// not the names' order: callers that publish sort.
#[derive(Default)]
struct Signals(Vec<SignalEntry>);

struct SignalEntry {
    hash: u32,
    name: Arc<str>,
    series: Series,
}

/// The hash `Signals` orders by: fixed, so that it needs no per-twin state; only names the
/// catalog accepted reach the index.
fn name_hash(name: &str) -> u32 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x646f_7070_656c).hash_one(name) as u32
}

impl Signals {
    fn find(&self, name: &str) -> Result<usize, usize> {
        let hash = name_hash(name);
        self.0
            .binary_search_by(|e| e.hash.cmp(&hash).then_with(|| (*e.name).cmp(name)))
    }

    fn get(&self, name: &str) -> Option<&Series> {
        self.find(name).ok().map(|i| &self.0[i].series)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Series> {
        self.find(name).ok().map(|i| &mut self.0[i].series)
    }

    /// The series of `name`, inserted (keyed by `key()`) when absent.
    fn entry(&mut self, name: &str, key: impl FnOnce() -> Arc<str>) -> &mut Series {
        let i = self.place(name, key);
        &mut self.0[i].series
    }

    /// The place of `name`'s series, inserted (keyed by `key()`) when absent.
    fn place(&mut self, name: &str, key: impl FnOnce() -> Arc<str>) -> usize {
        match self.find(name) {
            Ok(i) => i,
            Err(i) => {
                if self.0.len() == self.0.capacity() {
                    self.0.reserve_exact((self.0.len() / 8).max(1));
                }
                let entry = SignalEntry {
                    hash: name_hash(name),
                    name: key(),
                    series: Series::default(),
                };
                self.0.insert(i, entry);
                i
            }
        }
    }

    /// `entry` for a name the caller expects at `*hint`, and the place it was found left in
    /// `*hint`. Every twin of a model holds the same names in the same (hash) order, so the
    /// place of a reading's k-th value in the twin before is nearly always right, and one
    /// pointer or name compare replaces hashing and a binary search.
    fn entry_hinted(&mut self, name: &Arc<str>, hint: &mut usize) -> &mut Series {
        let i = match self.0.get(*hint) {
            Some(e) if Arc::ptr_eq(&e.name, name) || *e.name == **name => *hint,
            _ => self.place(name, || name.clone()),
        };
        *hint = i;
        &mut self.0[i].series
    }

    fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &Series)> {
        self.0.iter().map(|e| (&e.name, &e.series))
    }

    fn values(&self) -> impl Iterator<Item = &Series> {
        self.0.iter().map(|e| &e.series)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (&Arc<str>, &mut Series)> {
        self.0.iter_mut().map(|e| (&e.name, &mut e.series))
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Series> {
        self.0.iter_mut().map(|e| &mut e.series)
    }

    /// Keeps the series `keep` accepts, and gives the room of the others back.
    fn retain(&mut self, mut keep: impl FnMut(&Series) -> bool) {
        let before = self.0.len();
        self.0.retain(|e| keep(&e.series));
        if self.0.len() < before {
            self.0.shrink_to_fit();
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Names shared by many series (a model's signal names across its twins), one `Arc` each,
/// for the series a segment index or a replayed record creates (ingest hands the index
/// the catalog's shared names already). Holds every distinct signal name seen that way.
type Names = std::collections::HashSet<Arc<str>, foldhash::fast::RandomState>;

fn intern(names: &mut Names, name: &str) -> Arc<str> {
    if let Some(n) = names.get(name) {
        return n.clone();
    }
    let n: Arc<str> = Arc::from(name);
    names.insert(n.clone());
    n
}

/// What a checkpoint writes of one series: its chunks in time order, then its rollup blocks.
pub(crate) struct SeriesChunks {
    pub twin: Arc<str>,
    pub signal: Arc<str>,
    pub chunks: Vec<Arc<Chunk>>,
    pub blocks: Vec<Arc<Block>>,
}

/// All series, grouped by twin so deleting a twin or answering `as_of` touches only its own.
pub(crate) struct Index {
    twins: Twins,
    names: Names,
    points: u64,
    chunk_points: usize,
    next_chunk_id: u64,
    /// Chunks of live segment files that hold no live data any more, by segment id.
    dead: BTreeMap<u32, Dead>,
    /// The newest seal hint of any series, by signal name (see [`FleetHints`]).
    fleet: FleetHints,
}

/// The seal hint a series of each signal name last left, lent to a series that has none yet
/// (a new series, or every series after a restart: hints live in memory only). The twins of
/// a model carry the same sensors under the same names, so the codecs one twin's
/// `temperature` settled on nearly always suit the next twin's, and its first seal follows
/// them instead of trying every candidate: one exploring seal per name and store instead of
/// per series. A borrowed hint is judged like the series' own: a followed column clearly
/// larger a point than the lender's last chunk, or one its codec cannot hold, explores.
#[derive(Default)]
struct FleetHints(HashMap<Arc<str>, SealHint>);

impl FleetHints {
    /// What a series named `name` should seal with: its own hint, or a borrowed one.
    fn lend(&self, name: &str, own: SealHint) -> SealHint {
        if own != SealHint::default() {
            return own;
        }
        self.0.get(name).copied().unwrap_or(own)
    }

    /// Remembers `hint` as the newest of `name`.
    fn keep(&mut self, name: &str, hint: SealHint) {
        if hint == SealHint::default() {
            return;
        }
        match self.0.get_mut(name) {
            Some(h) => *h = hint,
            None => {
                self.0.insert(Arc::from(name), hint);
            }
        }
    }
}

/// Dead chunks of one segment file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Dead {
    pub ordinals: BTreeSet<u32>,
    pub bytes: u64,
}

#[derive(Default)]
struct Series {
    /// Exactly as long as needed: a boxed slice is a pointer narrower than a `Vec`, and the
    /// list changes only when the series seals, is cut or loads.
    chunks: Box<[Arc<Chunk>]>,
    open: OpenBuf,
    points: u64,
    rollups: Rollups,
    /// Which codecs the series' last chunks took: the next seal tries those alone.
    hint: SealHint,
}

/// Rollup blocks of the points retention forgot, per level (`Level::index`), sorted by their
/// first time; blocks may overlap where a bucket was rolled up in parts. Boxed and absent
/// until the first cut: most series never have any, and a fleet has millions of series.
#[derive(Default)]
struct Rollups(Option<Box<[Vec<Arc<Block>>; 2]>>);

impl Rollups {
    fn level(&self, level: Level) -> &[Arc<Block>] {
        self.0.as_ref().map_or(&[], |l| &l[level.index()])
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Block>> {
        self.0.iter().flat_map(|l| l.iter().flatten())
    }

    fn all_mut(&mut self) -> impl Iterator<Item = &mut Arc<Block>> {
        self.0.iter_mut().flat_map(|l| l.iter_mut().flatten())
    }

    fn lists_mut(&mut self) -> &mut [Vec<Arc<Block>>; 2] {
        self.0.get_or_insert_with(Default::default)
    }

    fn is_empty(&self) -> bool {
        self.all().next().is_none()
    }
}

/// A block of rollups of one level (see `rollup.rs`): its merged summary, and its bytes in
/// memory or in a segment file.
#[derive(Debug)]
pub(crate) struct Block {
    /// Unique within the process, shared with chunk ids.
    pub id: u64,
    pub level: Level,
    /// Buckets in the block.
    pub buckets: u32,
    pub summary: Rollup,
    pub data: ChunkData,
}

impl Block {
    fn rollups(&self) -> Result<Vec<Rollup>, StoreError> {
        let corrupt = |e: CodecError| {
            self.data
                .corrupt(format!("rollup block does not decode: {e}"))
        };
        let rs = rollup::decode_block(&self.data.bytes()?, self.level).map_err(corrupt)?;
        if rs.len() != self.buckets as usize
            || rs.first().map(|r| r.first_ts) != Some(self.summary.first_ts)
        {
            return Err(self
                .data
                .corrupt("rollup block disagrees with its summary".into()));
        }
        Ok(rs)
    }
}

/// A sealed chunk: its summary, and its bytes in memory or in a segment file.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// Unique within the process: lets a checkpoint find the chunks it wrote.
    pub id: u64,
    pub summary: Summary,
    pub data: ChunkData,
}

#[derive(Debug)]
pub(crate) enum ChunkData {
    Memory(Box<[u8]>),
    File {
        seg: Arc<SegmentFile>,
        loc: Location,
    },
}

impl ChunkData {
    /// Compressed bytes, wherever they are.
    pub(crate) fn stored_len(&self) -> u64 {
        match self {
            ChunkData::Memory(b) => b.len() as u64,
            ChunkData::File { loc, .. } => u64::from(loc.len),
        }
    }

    /// The encoded bytes (read and checksum-verified if they are in a file).
    pub(crate) fn bytes(&self) -> Result<Cow<'_, [u8]>, StoreError> {
        match self {
            ChunkData::Memory(b) => Ok(Cow::Borrowed(b)),
            ChunkData::File { seg, loc } => seg.read_chunk(loc).map(Cow::Owned),
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        let (path, offset) = match self {
            ChunkData::Memory(_) => (PathBuf::from("<unsaved chunk>"), 0),
            ChunkData::File { seg, loc } => (seg.path.clone(), loc.offset),
        };
        StoreError::Corrupt {
            path,
            offset,
            reason,
        }
    }

    fn segment(&self) -> Option<(u32, Location)> {
        match self {
            ChunkData::Memory(_) => None,
            ChunkData::File { seg, loc } => Some((seg.id, *loc)),
        }
    }

    fn is_memory(&self) -> bool {
        matches!(self, ChunkData::Memory(_))
    }
}

impl Chunk {
    /// Compressed bytes of this chunk, wherever it is.
    pub(crate) fn stored_len(&self) -> u64 {
        self.data.stored_len()
    }

    /// The chunk's encoded bytes (read and checksum-verified if they are in a file).
    pub(crate) fn bytes(&self) -> Result<Cow<'_, [u8]>, StoreError> {
        self.data.bytes()
    }

    fn corrupt(&self, e: CodecError) -> StoreError {
        self.data.corrupt(format!("chunk does not decode: {e}"))
    }

    fn points(&self) -> Result<Vec<Point>, StoreError> {
        let points = chunk::decode(&self.bytes()?).map_err(|e| self.corrupt(e))?;
        if points.len() != self.summary.count as usize
            || points.first().map(|p| p.ts) != Some(self.summary.first_ts())
            || points.last().map(|p| p.ts) != Some(self.summary.last_ts())
        {
            return Err(self.corrupt(CodecError::new("chunk disagrees with its summary")));
        }
        Ok(points)
    }

    fn timestamps(&self) -> Result<Vec<i64>, StoreError> {
        chunk::decode_ts(&self.bytes()?).map_err(|e| self.corrupt(e))
    }
}

/// What a visit hands out: a point, or a whole chunk by its summary.
enum Item<'a> {
    Point(&'a Point),
    Chunk(&'a Summary),
}

impl Series {
    fn has_rollups(&self) -> bool {
        !self.rollups.is_empty()
    }

    fn has_points(&self) -> bool {
        !self.chunks.is_empty() || !self.open.is_empty()
    }

    /// Folds the rollups of `level` whose points lie in `[from, to)` into `d` (a block from its
    /// summary when it lies in one bucket of `d`'s step).
    fn downsample_rollups(
        &self,
        level: Level,
        from: Timestamp,
        to: Timestamp,
        step: i64,
        d: &mut Downsampler,
    ) -> Result<(), StoreError> {
        let mut items: Vec<Rollup> = Vec::new();
        for b in self.rollups.level(level) {
            let s = &b.summary;
            if s.last_ts < from || s.first_ts >= to {
                continue;
            }
            if s.first_ts >= from
                && s.last_ts < to
                && query::bucket_start(s.first_ts, step) == query::bucket_start(s.last_ts, step)
            {
                items.push(*s);
                continue;
            }
            items.extend(
                b.rollups()?
                    .into_iter()
                    .filter(|r| r.first_ts >= from && r.last_ts < to),
            );
        }
        // Blocks overlap where a bucket was rolled up in parts; buckets go in time order.
        items.sort_by_key(|r| query::bucket_start(r.first_ts, step));
        for r in &items {
            d.push_rollup(r);
        }
        Ok(())
    }

    /// The open points with `from <= ts < to`, in time order; decodes the buffer only when
    /// the range reaches into it.
    fn open_range(&self, from: Timestamp, to: Timestamp) -> Vec<Point> {
        match self.open.last() {
            Some(last) if last.ts >= from => {
                let mut points = self.open.points();
                let lo = points.partition_point(|p| p.ts < from);
                let hi = points.partition_point(|p| p.ts < to);
                points.truncate(hi);
                points.drain(..lo.min(hi));
                points
            }
            _ => Vec::new(),
        }
    }

    /// Stores one point (replacing one at the same time) and seals a full buffer; returns
    /// 1 if the series gained a timestamp, else 0.
    fn upsert(
        &mut self,
        ctx: &mut SealCtx<'_>,
        name: &str,
        chunk_points: usize,
        ts: Timestamp,
        value: Value,
    ) -> u64 {
        let grew = self.open.upsert(ts, value) && !self.sealed_contains(ts);
        if grew {
            self.points += 1;
        }
        if self.open.len() >= chunk_points {
            ctx.seal(name, self);
        }
        u64::from(grew)
    }

    /// Whether a sealed chunk holds a point at `ts`.
    fn sealed_contains(&self, ts: Timestamp) -> bool {
        // In-order data lands after the newest chunk: one look, not a search through chunks
        // behind pointers.
        if self.chunks.last().is_none_or(|c| c.summary.last_ts() < ts) {
            return false;
        }
        let i = self.chunks.partition_point(|c| c.summary.last_ts() < ts);
        let Some(c) = self.chunks.get(i).filter(|c| c.summary.first_ts() <= ts) else {
            return false;
        };
        match c.timestamps() {
            Ok(t) => t.binary_search(&ts).is_ok(),
            Err(e) => {
                // The point count may be off by one; the data itself is unaffected.
                tracing::error!(error = %e, "cannot read a chunk to check a late point");
                false
            }
        }
    }

    /// Forgets the points with `ts < before`: open points, chunks wholly before it (retired,
    /// so a checkpoint's manifest drops them from their segment file) and the part of the one
    /// chunk that straddles it (re-encoded without them). Their numeric values are rolled up
    /// first (minute and hour rollups kept in the series). Returns the distinct timestamps
    /// forgotten; a chunk that cannot be read keeps the whole cut from happening (nothing
    /// is forgotten that was not rolled up; the next cut tries again).
    fn drop_before(&mut self, ctx: &mut SealCtx<'_>, before: Timestamp) -> u64 {
        let mut minutes = rollup::Builder::default();
        let visited = self.visit(i64::MIN, before, &mut |_| false, &mut |item| {
            if let Item::Point(p) = item {
                minutes.push(p);
            }
            ControlFlow::<()>::Continue(())
        });
        let n = self
            .chunks
            .partition_point(|c| c.summary.last_ts() < before);
        let straddling = self
            .chunks
            .get(n)
            .filter(|c| c.summary.first_ts() < before)
            .map(|c| c.points().map(|points| (c.clone(), points)))
            .transpose();
        let straddling = match visited.and(straddling) {
            Ok(s) => s,
            Err(e) => {
                // Its old points stay, as unreadable as the rest of it (every query over
                // them fails, and so does the next checkpoint, which reports the damage).
                tracing::error!(error = %e, "cannot read a chunk to roll up and cut its old points; they are kept");
                return 0;
            }
        };
        ctx.add_rollups(&mut self.rollups, minutes.finish());

        let mut gone = 0;
        if self.open.first().is_some_and(|p| p.ts < before) {
            let mut open = self.open.take();
            let k = open.partition_point(|p| p.ts < before);
            // An open point overriding a sealed one is counted once, with the chunk.
            gone = open[..k]
                .iter()
                .filter(|p| !self.sealed_contains(p.ts))
                .count() as u64;
            open.drain(..k);
            self.open.set(open);
        }
        if n > 0 || straddling.is_some() {
            let mut chunks = std::mem::take(&mut self.chunks).into_vec();
            for c in chunks.drain(..n) {
                gone += u64::from(c.summary.count);
                ctx.retire(&c);
            }
            if let Some((c, points)) = straddling {
                let k = points.partition_point(|p| p.ts < before);
                gone += k as u64;
                ctx.retire(&c);
                let mut kept = Vec::new();
                ctx.encode(&points[k..], &mut kept, &mut self.hint);
                chunks.splice(0..1, kept);
            }
            self.chunks = chunks.into_boxed_slice();
        }
        self.points -= gone.min(self.points);
        gone
    }

    /// Calls `f` on every point with `from <= ts < to` in time order, newest write winning,
    /// or on a chunk's summary instead of its points when the chunk lies wholly inside the
    /// range, no open point overrides any of it, and `summarize` accepts it.
    fn visit<B>(
        &self,
        from: Timestamp,
        to: Timestamp,
        summarize: &mut impl FnMut(&Summary) -> bool,
        f: &mut impl FnMut(Item<'_>) -> ControlFlow<B>,
    ) -> Result<ControlFlow<B>, StoreError> {
        let open = self.open_range(from, to);
        let mut oi = 0;
        let lo = self.chunks.partition_point(|c| c.summary.last_ts() < from);
        for c in &self.chunks[lo..] {
            let s = &c.summary;
            if s.first_ts() >= to {
                break;
            }
            while let Some(p) = open.get(oi).filter(|p| p.ts < s.first_ts()) {
                if let ControlFlow::Break(b) = f(Item::Point(p)) {
                    return Ok(ControlFlow::Break(b));
                }
                oi += 1;
            }
            let k = open[oi..].partition_point(|p| p.ts <= s.last_ts());
            let inside = &open[oi..oi + k];
            oi += k;
            if inside.is_empty() && s.first_ts() >= from && s.last_ts() < to && summarize(s) {
                if let ControlFlow::Break(b) = f(Item::Chunk(s)) {
                    return Ok(ControlFlow::Break(b));
                }
                continue;
            }
            let points = c.points()?;
            let points = chunk::slice_range(&points, from, to);
            if let ControlFlow::Break(b) =
                chunk::merge_visit(points, inside, &mut |p| f(Item::Point(p)))
            {
                return Ok(ControlFlow::Break(b));
            }
        }
        for p in &open[oi..] {
            if let ControlFlow::Break(b) = f(Item::Point(p)) {
                return Ok(ControlFlow::Break(b));
            }
        }
        Ok(ControlFlow::Continue(()))
    }

    /// The latest point: the newer of the open buffer's last and the last chunk's summary,
    /// so no search and no read.
    fn last(&self) -> Option<Point> {
        let sealed = self.chunks.last().map(|c| &c.summary);
        match (self.open.last(), sealed) {
            (Some(o), Some(s)) if s.last_ts() > o.ts => Some(s.last()),
            (Some(o), _) => Some(o.clone()),
            (None, s) => s.map(Summary::last),
        }
    }

    /// The latest point with `ts <= at`.
    fn last_at(&self, at: Timestamp) -> Option<Point> {
        if at == Timestamp::MAX {
            return self.last();
        }
        let open = match self.open.last() {
            Some(last) if last.ts <= at => Some(Cow::Borrowed(last)),
            Some(_) => self
                .open_range(Timestamp::MIN, at.saturating_add(1))
                .pop()
                .map(Cow::Owned),
            None => None,
        };
        let i = self.chunks.partition_point(|c| c.summary.first_ts() <= at);
        let sealed = match i.checked_sub(1).and_then(|i| self.chunks.get(i)) {
            None => None,
            Some(c) if c.summary.last_ts() <= at => Some(Cow::<Point>::Owned(c.summary.last())),
            Some(c) => match c.points() {
                Ok(points) => {
                    let n = points.partition_point(|p| p.ts <= at);
                    n.checked_sub(1)
                        .and_then(|i| points.get(i))
                        .cloned()
                        .map(Cow::Owned)
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a chunk for a point-in-time query");
                    None
                }
            },
        };
        match (open, sealed) {
            (Some(o), Some(s)) if s.ts > o.ts => Some(s.into_owned()),
            (Some(o), _) => Some(o.into_owned()),
            (None, s) => s.map(Cow::into_owned),
        }
    }
}

/// What sealing needs besides the series: shared by all series of the index.
struct SealCtx<'a> {
    chunk_points: usize,
    next_chunk_id: &'a mut u64,
    dead: &'a mut BTreeMap<u32, Dead>,
    fleet: &'a mut FleetHints,
}

impl SealCtx<'_> {
    /// Encodes ascending `points` as chunks of at most about `2 * chunk_points` points. A
    /// chunk of half the seal size or more follows and updates the series' `hint`; a smaller
    /// one (a buffer sealed early by a checkpoint) follows the hint without exploring and
    /// leaves it alone: its bytes a point, with pco's per-column overhead spread over few
    /// points, say little about the next full chunk, and trying every codec for each of a
    /// fleet's series made that most of a checkpoint's time. Without a hint it explores.
    fn encode(&mut self, points: &[Point], out: &mut Vec<Arc<Chunk>>, hint: &mut SealHint) {
        if points.is_empty() {
            return;
        }
        let pieces = if points.len() <= 2 * self.chunk_points {
            1
        } else {
            points.len().div_ceil(self.chunk_points)
        };
        let size = points.len().div_ceil(pieces);
        for part in points.chunks(size) {
            let encoded = if part.len() * 2 >= self.chunk_points {
                chunk::encode_hinted(part, hint)
            } else {
                chunk::encode_followed(part, hint)
            };
            if let Some((bytes, summary)) = encoded {
                *self.next_chunk_id += 1;
                out.push(Arc::new(Chunk {
                    id: *self.next_chunk_id,
                    summary,
                    data: ChunkData::Memory(bytes.into_boxed_slice()),
                }));
            }
        }
    }

    fn retire(&mut self, c: &Chunk) {
        self.retire_data(&c.data);
    }

    fn retire_data(&mut self, data: &ChunkData) {
        if let Some((seg, loc)) = data.segment() {
            let d = self.dead.entry(seg).or_default();
            if d.ordinals.insert(loc.ordinal) {
                d.bytes += u64::from(loc.len);
            }
        }
    }

    /// Adds the minute rollups of a cut (ascending) and the hour rollups made from them to
    /// `blocks`. Like the last chunk of a series, the last block of a level takes them in
    /// (decoded, merged, re-encoded, the old block retired) while it holds fewer than half
    /// of [`BLOCK_BUCKETS`] and they do not start before it; otherwise they form new blocks.
    fn add_rollups(&mut self, rollups: &mut Rollups, minutes: Vec<Rollup>) {
        if minutes.is_empty() {
            return;
        }
        let blocks = rollups.lists_mut();
        for level in Level::ALL {
            let mut new = match level {
                Level::Minute => minutes.clone(),
                Level::Hour => rollup::coarsen(&minutes, level),
            };
            let list = &mut blocks[level.index()];
            let w = level.width();
            let grow = list.last().filter(|b| {
                (b.buckets as usize) < BLOCK_BUCKETS / 2
                    && new.first().is_some_and(|r| {
                        query::bucket_start(r.first_ts, w)
                            >= query::bucket_start(b.summary.first_ts, w)
                    })
            });
            if let Some(b) = grow.cloned() {
                match b.rollups() {
                    Ok(old) => {
                        new = rollup::merge_runs(&old, &new, level);
                        self.retire_data(&b.data);
                        list.pop();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read a rollup block to grow it; starting a new one");
                    }
                }
            }
            let pieces = new.len().div_ceil(BLOCK_BUCKETS).max(1);
            let size = new.len().div_ceil(pieces).max(1);
            for part in new.chunks(size) {
                let Some(summary) = rollup::total(part) else {
                    continue;
                };
                *self.next_chunk_id += 1;
                list.push(Arc::new(Block {
                    id: *self.next_chunk_id,
                    level,
                    buckets: part.len() as u32,
                    summary,
                    data: ChunkData::Memory(rollup::encode_block(part).into_boxed_slice()),
                }));
            }
            list.sort_by_key(|b| b.summary.first_ts);
        }
    }

    /// Moves the open buffer of `s`, the series named `name`, into chunks (see the module
    /// docs).
    fn seal(&mut self, name: &str, s: &mut Series) {
        if s.open.is_empty() {
            return;
        }
        s.hint = self.fleet.lend(name, s.hint);
        let open = s.open.take();
        let old = std::mem::take(&mut s.chunks);
        let n = old.len();
        let mut out = Vec::with_capacity(n + 1);
        let mut rest: &[Point] = &open;
        let mut unplaced: Vec<Point> = Vec::new();
        let mut next_firsts = old.iter().skip(1).map(|c| c.summary.first_ts());
        for (i, c) in old.iter().enumerate() {
            // A chunk takes the open points of its span and of the gap after it (the first
            // chunk also those before it); the last takes those after it only while small.
            let k = match next_firsts.next() {
                Some(next) => rest.partition_point(|p| p.ts < next),
                None if (c.summary.count as usize) < self.chunk_points / 2 => rest.len(),
                None => rest.partition_point(|p| p.ts <= c.summary.last_ts()),
            };
            debug_assert!(i + 1 < n || k <= rest.len());
            let (mine, later) = rest.split_at(k);
            rest = later;
            if mine.is_empty() {
                out.push(c.clone());
                continue;
            }
            match c.points() {
                Ok(points) => {
                    self.retire(c);
                    self.encode(&chunk::merge(&points, mine), &mut out, &mut s.hint);
                }
                Err(e) => {
                    // Keep the chunk as it is and the points open: nothing is lost, and the
                    // next checkpoint, which needs an empty buffer, reports the damage.
                    tracing::error!(error = %e, "cannot read a chunk to merge late points into");
                    out.push(c.clone());
                    unplaced.extend_from_slice(mine);
                }
            }
        }
        self.encode(rest, &mut out, &mut s.hint);
        self.fleet.keep(name, s.hint);
        s.chunks = out.into_boxed_slice();
        s.open.set(unplaced);
    }
}

impl Index {
    /// `chunk_points` is the open-buffer size at which a series seals a chunk.
    pub(crate) fn new(chunk_points: usize) -> Self {
        Index {
            twins: Map::default(),
            names: Names::default(),
            points: 0,
            chunk_points: chunk_points.clamp(1, codec::MAX_POINTS / 2),
            next_chunk_id: 0,
            dead: BTreeMap::new(),
            fleet: FleetHints::default(),
        }
    }

    fn ctx(&mut self) -> (SealCtx<'_>, &mut Twins, &mut Names) {
        (
            SealCtx {
                chunk_points: self.chunk_points,
                next_chunk_id: &mut self.next_chunk_id,
                dead: &mut self.dead,
                fleet: &mut self.fleet,
            },
            &mut self.twins,
            &mut self.names,
        )
    }

    /// Stores `row`; a point at the same (twin, signal, ts) is replaced, not duplicated.
    #[cfg(test)]
    pub(crate) fn insert(&mut self, row: Row) {
        self.insert_all(vec![row]);
    }

    /// Stores `rows` in order, as [`Index::insert`] one by one would. Consecutive rows of one
    /// twin (a reading's signals) share one lookup of the twin; names are looked up by
    /// reference, so an existing series costs no `Arc` traffic.
    pub(crate) fn insert_all(&mut self, rows: Vec<Row>) {
        let chunk_points = self.chunk_points;
        let (mut ctx, twins, _) = self.ctx();
        let mut added = 0;
        let mut rows = rows.into_iter().peekable();
        while let Some(row) = rows.next() {
            let twin = row.twin;
            // The first key stays: replayed rows share one `Arc` per name.
            let Some(signals) = by_name(twins, &twin, || twin.clone()) else {
                continue;
            };
            let mut next = Some((row.signal, row.ts, row.value));
            while let Some((signal, ts, value)) = next.take() {
                let series = signals.entry(&signal, || signal.clone());
                added += series.upsert(&mut ctx, &signal, chunk_points, ts, value);
                next = rows
                    .next_if(|r| Arc::ptr_eq(&r.twin, &twin) || *r.twin == *twin)
                    .map(|r| (r.signal, r.ts, r.value));
            }
        }
        self.points += added;
    }

    /// Stores the points of a readings record's payload (see `wal.rs`), as
    /// [`Index::insert_all`] would the same points as rows. Names are looked up by
    /// reference; only a new twin or series makes an `Arc`. The payload was encoded by this
    /// store or checked at replay; should it still not decode, the points before the fault
    /// are kept and the rest is logged as lost (never a panic).
    pub(crate) fn insert_readings(&mut self, payload: &[u8]) {
        let chunk_points = self.chunk_points;
        let (mut ctx, twins, names) = self.ctx();
        let mut added = 0;
        let mut r = crate::wal::Readings::new(payload);
        let result = (|| -> Result<(), String> {
            while let Some((twin, ts, n)) = r.next_reading()? {
                let Some(signals) = by_name(twins, twin, || Arc::from(twin)) else {
                    continue;
                };
                for _ in 0..n {
                    let (signal, value) = r.next_value()?;
                    let series = signals.entry(signal, || intern(names, signal));
                    added += series.upsert(&mut ctx, signal, chunk_points, ts, value);
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::error!(error = %e, "a readings record did not decode; its remaining points were not applied");
        }
        self.points += added;
    }

    /// Stores a validated batch's points, as [`Index::insert_all`] would the same points as
    /// rows; names are looked up by reference (only a new twin or series clones an `Arc`).
    pub(crate) fn insert_batch(&mut self, batch: &ValidatedBatch) {
        let chunk_points = self.chunk_points;
        let (mut ctx, twins, _) = self.ctx();
        let mut added = 0;
        // Where the k-th value of the reading before was found (see `entry_hinted`).
        let mut hints = [0usize; 16];
        for r in &batch.readings {
            let Some(signals) = by_name(twins, &r.twin, || r.twin.clone()) else {
                continue;
            };
            for (k, (signal, value)) in r.values.iter().enumerate() {
                let mut spare = 0;
                let hint = hints.get_mut(k).unwrap_or(&mut spare);
                let series = signals.entry_hinted(signal, hint);
                added += series.upsert(&mut ctx, signal, chunk_points, r.ts, value.clone());
            }
        }
        self.points += added;
    }

    /// Forgets everything stored for `twin` so far.
    pub(crate) fn delete_twin(&mut self, twin: &str) {
        let (mut ctx, twins, _) = self.ctx();
        let Some(signals) = twins.remove(twin) else {
            return;
        };
        let mut n = 0;
        for s in signals.values() {
            n += s.points;
            for c in &s.chunks {
                ctx.retire(c);
            }
            for b in s.rollups.all() {
                ctx.retire_data(&b.data);
            }
        }
        self.points -= n;
    }

    /// Forgets the points before `before` of `signal` of `twin`, or of all its signals (see
    /// `Store::drop_before`); series left empty are removed.
    pub(crate) fn drop_before(&mut self, twin: &str, signal: Option<&str>, before: Timestamp) {
        let (mut ctx, twins, _) = self.ctx();
        let Some(signals) = twins.get_mut(twin) else {
            return;
        };
        let gone = match signal {
            Some(signal) => signals
                .get_mut(signal)
                .map_or(0, |s| s.drop_before(&mut ctx, before)),
            None => signals
                .values_mut()
                .map(|s| s.drop_before(&mut ctx, before))
                .sum(),
        };
        signals.retain(|s| !s.chunks.is_empty() || !s.open.is_empty() || s.has_rollups());
        if signals.is_empty() {
            twins.remove(twin);
        }
        self.points -= gone.min(self.points);
    }

    /// Seals every open buffer (a checkpoint covers only sealed chunks). Returns the points
    /// that stayed open because a chunk they belong to could not be read.
    pub(crate) fn seal_all(&mut self) -> usize {
        let (mut ctx, twins, _) = self.ctx();
        let mut left = 0;
        for signals in twins.values_mut() {
            for (name, s) in signals.iter_mut() {
                ctx.seal(name, s);
                left += s.open.len();
            }
        }
        left
    }

    /// Adds the live chunks of a segment file read at open; `dead` are its dead ordinals
    /// from the manifest. Call [`Index::finish_load`] after the last segment.
    pub(crate) fn load_segment(
        &mut self,
        seg: &Arc<SegmentFile>,
        entries: Vec<SeriesEntries>,
        dead: &[u32],
    ) {
        let dead_set: BTreeSet<u32> = dead.iter().copied().collect();
        let mut dead_bytes = 0;
        for e in entries {
            let names = &mut self.names;
            let series = self
                .twins
                .entry(e.twin)
                .or_default()
                .entry(&e.signal, || intern(names, &e.signal));
            let mut chunks = std::mem::take(&mut series.chunks).into_vec();
            chunks.reserve_exact(e.chunks.len());
            for (loc, summary) in e.chunks {
                if dead_set.contains(&loc.ordinal) {
                    dead_bytes += u64::from(loc.len);
                    continue;
                }
                self.next_chunk_id += 1;
                series.points += u64::from(summary.count);
                self.points += u64::from(summary.count);
                chunks.push(Arc::new(Chunk {
                    id: self.next_chunk_id,
                    summary,
                    data: ChunkData::File {
                        seg: seg.clone(),
                        loc,
                    },
                }));
            }
            series.chunks = chunks.into_boxed_slice();
            for r in e.rollups {
                if dead_set.contains(&r.loc.ordinal) {
                    dead_bytes += u64::from(r.loc.len);
                    continue;
                }
                self.next_chunk_id += 1;
                series.rollups.lists_mut()[r.level.index()].push(Arc::new(Block {
                    id: self.next_chunk_id,
                    level: r.level,
                    buckets: r.buckets,
                    summary: r.summary,
                    data: ChunkData::File {
                        seg: seg.clone(),
                        loc: r.loc,
                    },
                }));
            }
        }
        if !dead_set.is_empty() {
            self.dead.insert(
                seg.id,
                Dead {
                    ordinals: dead_set,
                    bytes: dead_bytes,
                },
            );
        }
    }

    /// Orders every series' chunks by time after loading and checks that no two overlap,
    /// which checkpoints never produce; drops series left without chunks.
    pub(crate) fn finish_load(&mut self) -> Result<(), StoreError> {
        for signals in self.twins.values_mut() {
            for s in signals.values_mut() {
                s.chunks.sort_by_key(|c| c.summary.first_ts());
                if let Some(lists) = &mut s.rollups.0 {
                    for list in lists.iter_mut() {
                        list.sort_by_key(|b| b.summary.first_ts);
                    }
                }
                for w in s.chunks.windows(2) {
                    if w[0].summary.last_ts() >= w[1].summary.first_ts() {
                        let (path, offset) = match &w[1].data {
                            ChunkData::File { seg, loc } => (seg.path.clone(), loc.offset),
                            ChunkData::Memory(_) => (PathBuf::new(), 0),
                        };
                        return Err(StoreError::Corrupt {
                            path,
                            offset,
                            reason: "chunk overlaps another live chunk of its series".into(),
                        });
                    }
                }
            }
            signals.retain(|s| !s.chunks.is_empty() || s.has_rollups());
        }
        self.twins.retain(|_, s| !s.is_empty());
        Ok(())
    }

    /// The chunks and rollup blocks a checkpoint must write: every one still in memory and
    /// every live one of the segments in `rewrite`, grouped by series, each series' chunks
    /// in time order.
    pub(crate) fn chunks_to_write(&self, rewrite: &BTreeSet<u32>) -> Vec<SeriesChunks> {
        let wanted = |data: &ChunkData| match data.segment() {
            None => true,
            Some((seg, _)) => rewrite.contains(&seg),
        };
        let mut out = Vec::new();
        for (twin, signals) in &self.twins {
            for (signal, s) in signals.iter() {
                let chunks: Vec<Arc<Chunk>> = s
                    .chunks
                    .iter()
                    .filter(|c| wanted(&c.data))
                    .cloned()
                    .collect();
                let blocks: Vec<Arc<Block>> = s
                    .rollups
                    .all()
                    .filter(|b| wanted(&b.data))
                    .cloned()
                    .collect();
                if !chunks.is_empty() || !blocks.is_empty() {
                    out.push(SeriesChunks {
                        twin: twin.clone(),
                        signal: signal.clone(),
                        chunks,
                        blocks,
                    });
                }
            }
        }
        out.sort_by(|a, b| (&a.twin, &a.signal).cmp(&(&b.twin, &b.signal)));
        out
    }

    /// Points chunks and blocks written by a checkpoint (by id) at their new place, and
    /// forgets the dead chunks of the segments it dropped.
    pub(crate) fn relocate(
        &mut self,
        seg: &Arc<SegmentFile>,
        moved: &HashMap<u64, Location>,
        dropped: &BTreeSet<u32>,
    ) {
        let file = |loc: &Location| ChunkData::File {
            seg: seg.clone(),
            loc: *loc,
        };
        for signals in self.twins.values_mut() {
            for s in signals.values_mut() {
                for c in &mut s.chunks {
                    if let Some(loc) = moved.get(&c.id) {
                        *c = Arc::new(Chunk {
                            id: c.id,
                            summary: c.summary.clone(),
                            data: file(loc),
                        });
                    }
                }
                for b in s.rollups.all_mut() {
                    if let Some(loc) = moved.get(&b.id) {
                        *b = Arc::new(Block {
                            id: b.id,
                            level: b.level,
                            buckets: b.buckets,
                            summary: b.summary,
                            data: file(loc),
                        });
                    }
                }
            }
        }
        self.dead.retain(|id, _| !dropped.contains(id));
    }

    /// Bytes of the chunks not yet in a segment file.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.twins
            .values()
            .flat_map(Signals::values)
            .flat_map(|s| {
                let chunks = s.chunks.iter().map(|c| &c.data);
                chunks.chain(s.rollups.all().map(|b| &b.data))
            })
            .filter(|d| d.is_memory())
            .map(ChunkData::stored_len)
            .sum()
    }

    /// Forgets the dead chunks of segments a checkpoint dropped without writing a new one
    /// (all their chunks were dead).
    pub(crate) fn relocate_none(&mut self, dropped: &BTreeSet<u32>) {
        self.dead.retain(|id, _| !dropped.contains(id));
    }

    pub(crate) fn dead(&self) -> &BTreeMap<u32, Dead> {
        &self.dead
    }

    fn series(&self, twin: &str, signal: &str) -> Option<&Series> {
        self.twins.get(twin)?.get(signal)
    }

    /// Up to `limit` points with `from <= ts < to`, ascending.
    pub(crate) fn range(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
    ) -> Result<Vec<Point>, StoreError> {
        let mut out = Vec::new();
        let Some(s) = self.series(twin, signal) else {
            return Ok(out);
        };
        if limit == 0 {
            return Ok(out);
        }
        // Breaking at the limit is the only way out; the flow itself says nothing more.
        let _ = s.visit(from, to, &mut |_| false, &mut |item| {
            if let Item::Point(p) = item {
                out.push(p.clone());
            }
            if out.len() >= limit {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(out)
    }

    /// Bucketed aggregates (see `Store::downsample`); a chunk lying in one bucket is folded
    /// from its summary without being read.
    pub(crate) fn downsample(
        &self,
        twin: &str,
        signal: &str,
        from: Timestamp,
        to: Timestamp,
        step: i64,
        agg: Agg,
    ) -> Result<Vec<Bucket>, StoreError> {
        let Some(s) = self.series(twin, signal) else {
            return Ok(Vec::new());
        };
        let level = Level::for_step(step).filter(|&l| !s.rollups.level(l).is_empty());
        let mut d = match level {
            Some(_) => Downsampler::new_mergeable(step, agg),
            None => Downsampler::new(step, agg),
        };
        let flow = s.visit(
            from,
            to,
            &mut |sum| {
                query::bucket_start(sum.first_ts(), step)
                    == query::bucket_start(sum.last_ts(), step)
                    && query::can_summarize(agg, sum)
            },
            &mut |item| {
                let r = match item {
                    Item::Point(p) => d.push(p),
                    Item::Chunk(sum) => d.push_summary(sum),
                };
                match r {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(query::NotNumeric) => ControlFlow::Break(()),
                }
            },
        )?;
        if flow.is_break() {
            return Err(StoreError::NotNumeric {
                twin: twin.to_string(),
                signal: signal.to_string(),
            });
        }
        match level {
            Some(level) => {
                let mut rolled = Downsampler::new_mergeable(step, agg);
                s.downsample_rollups(level, from, to, step, &mut rolled)?;
                Ok(d.finish_with(rolled))
            }
            None => Ok(d.finish()),
        }
    }

    /// The times of the first and last point, or rollup a downsample at `step` would use
    /// (see `Store::downsample_span`).
    pub(crate) fn downsample_span(
        &self,
        twin: &str,
        signal: &str,
        step: i64,
    ) -> Option<(Timestamp, Timestamp)> {
        let s = self.series(twin, signal)?;
        let first_raw = match (s.chunks.first(), s.open.first()) {
            (Some(c), Some(p)) => Some(c.summary.first_ts().min(p.ts)),
            (Some(c), None) => Some(c.summary.first_ts()),
            (None, p) => p.map(|p| p.ts),
        };
        let raw = first_raw.zip(s.last().map(|p| p.ts));
        let rolled = Level::for_step(step).and_then(|l| {
            let blocks = s.rollups.level(l);
            let first = blocks.iter().map(|b| b.summary.first_ts).min()?;
            let last = blocks.iter().map(|b| b.summary.last_ts).max()?;
            Some((first, last))
        });
        match (raw, rolled) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        }
    }

    /// The latest point with `ts <= at`.
    pub(crate) fn last_at(&self, twin: &str, signal: &str, at: Timestamp) -> Option<Point> {
        self.series(twin, signal)?.last_at(at)
    }

    /// For each signal of `twin`, its latest point with `ts <= at`, sorted by signal name.
    pub(crate) fn as_of(&self, twin: &str, at: Timestamp) -> Vec<(Arc<str>, Point)> {
        let Some(signals) = self.twins.get(twin) else {
            return Vec::new();
        };
        let mut out: Vec<(Arc<str>, Point)> = signals
            .iter()
            .filter_map(|(name, s)| Some((name.clone(), s.last_at(at)?)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The last point of every series, sorted by (twin, signal).
    pub(crate) fn latest_all(&self) -> Vec<(Arc<str>, Arc<str>, Point)> {
        let mut out: Vec<(Arc<str>, Arc<str>, Point)> = self
            .twins
            .iter()
            .flat_map(|(twin, signals)| {
                signals
                    .iter()
                    .filter_map(move |(signal, s)| Some((twin.clone(), signal.clone(), s.last()?)))
            })
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }

    /// Series holding points (not only rollups).
    pub(crate) fn series_count(&self) -> usize {
        self.twins
            .values()
            .flat_map(Signals::values)
            .filter(|s| s.has_points())
            .count()
    }

    pub(crate) fn point_count(&self) -> u64 {
        self.points
    }

    /// Figures of every series, sorted by (twin, signal).
    pub(crate) fn series_stats(&self) -> Vec<crate::SeriesStats> {
        let mut out: Vec<crate::SeriesStats> = self
            .twins
            .iter()
            .flat_map(|(twin, signals)| {
                signals.iter().map(move |(signal, s)| crate::SeriesStats {
                    twin: twin.clone(),
                    signal: signal.clone(),
                    points: s.points,
                    chunks: s.chunks.len() as u64,
                    chunk_bytes: s.chunks.iter().map(|c| c.stored_len()).sum(),
                    open_points: s.open.len() as u64,
                    rollup_blocks: s.rollups.all().count() as u64,
                    rollup_bytes: s.rollups.all().map(|b| b.data.stored_len()).sum(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.twin, &a.signal).cmp(&(&b.twin, &b.signal)));
        out
    }

    /// (sealed chunks, points still in open buffers, rollup blocks, their bytes).
    pub(crate) fn chunk_counts(&self) -> (u64, u64, u64, u64) {
        let mut chunks = 0;
        let mut open = 0;
        let mut blocks = 0;
        let mut bytes = 0;
        for s in self.twins.values().flat_map(Signals::values) {
            chunks += s.chunks.len() as u64;
            open += s.open.len() as u64;
            for b in s.rollups.all() {
                blocks += 1;
                bytes += b.data.stored_len();
            }
        }
        (chunks, open, blocks, bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn row(twin: &str, signal: &str, ts: i64, v: i64) -> Row {
        Row {
            twin: twin.into(),
            signal: signal.into(),
            ts,
            value: Value::Int(v),
        }
    }

    fn all(ix: &Index) -> Vec<(i64, Value)> {
        ix.range("t", "s", i64::MIN, i64::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|p| (p.ts, p.value))
            .collect()
    }

    fn hint_of(ix: &Index, twin: &str, signal: &str) -> SealHint {
        ix.twins
            .get(twin)
            .and_then(|s| s.iter().find(|(n, _)| &***n == signal))
            .map(|(_, s)| s.hint)
            .unwrap_or_default()
    }

    /// A series' first seal follows the hint another series of the same name left, instead
    /// of exploring; a name with no lender explores; a borrowed hint for another kind of
    /// value does not get in the way: every point reads back.
    #[test]
    fn a_new_series_borrows_the_seal_hint_of_its_name() {
        let mut ix = Index::new(64);
        let decimal = |i: i64| Value::Float(20.0 + (i % 37) as f64 * 0.1);
        let put = |ix: &mut Index, twin: &str, signal: &str, v: &dyn Fn(i64) -> Value| {
            for i in 0..64 {
                ix.insert(Row {
                    twin: twin.into(),
                    signal: signal.into(),
                    ts: 1_000 + i,
                    value: v(i),
                });
            }
        };
        put(&mut ix, "a", "temp", &decimal);
        let lender = hint_of(&ix, "a", "temp");
        assert_eq!(
            lender.seals_left(),
            EXPLORE_EVERY - 1,
            "the first series explores"
        );
        put(&mut ix, "b", "temp", &decimal);
        assert_eq!(
            hint_of(&ix, "b", "temp").seals_left(),
            EXPLORE_EVERY - 2,
            "the second follows the first one's hint"
        );
        put(&mut ix, "c", "flow", &decimal);
        assert_eq!(hint_of(&ix, "c", "flow").seals_left(), EXPLORE_EVERY - 1);
        // Integers and strings under a name whose hint is for decimal floats.
        let count = |i: i64| Value::Int(i * 7 % 5);
        put(&mut ix, "d", "temp", &count);
        let text = |i: i64| Value::String(format!("state {}", i % 3));
        put(&mut ix, "e", "temp", &text);
        for (twin, v) in [
            ("a", &decimal as &dyn Fn(i64) -> Value),
            ("b", &decimal),
            ("d", &count),
            ("e", &text),
        ] {
            let got: Vec<Value> = ix
                .range(twin, "temp", i64::MIN, i64::MAX, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|p| p.value)
                .collect();
            assert_eq!(got, (0..64).map(v).collect::<Vec<_>>(), "twin {twin}");
        }
    }

    #[test]
    fn out_of_order_and_duplicates_land_sorted_once() {
        for chunk_points in [1, 2, 3, 100] {
            let mut ix = Index::new(chunk_points);
            for (ts, v) in [(5, 1), (1, 2), (9, 3), (5, 4), (3, 5), (9, 6)] {
                ix.insert(row("t", "s", ts, v));
            }
            assert_eq!(
                all(&ix),
                vec![
                    (1, Value::Int(2)),
                    (3, Value::Int(5)),
                    (5, Value::Int(4)),
                    (9, Value::Int(6))
                ],
                "chunk_points {chunk_points}"
            );
            assert_eq!(ix.point_count(), 4);
            assert_eq!(ix.last_at("t", "s", 4).unwrap().ts, 3);
            assert_eq!(ix.last_at("t", "s", 0), None);
            assert_eq!(ix.range("t", "s", 3, 9, 10).unwrap().len(), 2);
            assert_eq!(ix.range("t", "s", 3, 9, 1).unwrap().len(), 1);
        }
    }

    #[test]
    fn delete_twin_keeps_counts_right() {
        let mut ix = Index::new(2);
        ix.insert(row("a", "x", 1, 1));
        ix.insert(row("a", "y", 1, 1));
        ix.insert(row("b", "x", 1, 1));
        ix.delete_twin("a");
        ix.delete_twin("nope");
        assert_eq!(ix.series_count(), 1);
        assert_eq!(ix.point_count(), 1);
        assert!(ix.as_of("a", i64::MAX).is_empty());
        ix.insert(row("a", "x", 0, 7));
        assert_eq!(ix.latest_all().len(), 2);
    }

    #[test]
    fn drop_before_retires_old_chunks_and_reencodes_the_straddling_one() {
        let mut ix = Index::new(4);
        for ts in 0..20 {
            ix.insert(row("t", "s", ts, ts));
            ix.insert(row("t", "u", ts, ts));
        }
        // Chunks [0..4) [4..8) ... [16..20); a late point at 9 waits in the open buffer.
        ix.insert(row("t", "s", 9, 90));
        ix.drop_before("t", Some("s"), 10);
        let got: Vec<(i64, Value)> = all(&ix);
        let want: Vec<(i64, Value)> = (10..20).map(|t| (t, Value::Int(t))).collect();
        assert_eq!(got, want);
        assert_eq!(ix.point_count(), 10 + 20, "u is untouched");
        assert_eq!(ix.series_stats()[0].points, 10);
        // Everything of the twin, then nothing is left of it.
        ix.drop_before("t", None, i64::MAX);
        assert_eq!(ix.series_count(), 0);
        assert_eq!(ix.point_count(), 0);
        ix.drop_before("nope", None, 5);
        ix.insert(row("t", "s", 1, 1));
        assert_eq!(all(&ix), vec![(1, Value::Int(1))], "later writes are kept");
    }

    #[test]
    fn whole_chunks_are_summarized_in_downsample() {
        let mut ix = Index::new(10);
        for ts in 0..100 {
            ix.insert(row("t", "s", ts, ts));
        }
        assert_eq!(ix.chunk_counts(), (10, 0, 0, 0));
        let b = ix.downsample("t", "s", 0, 100, 20, Agg::Sum).unwrap();
        let sums: Vec<f64> = b.iter().map(|b| b.value).collect();
        let want: Vec<f64> = (0..5)
            .map(|k| (20 * k..20 * k + 20).sum::<i64>() as f64)
            .collect();
        assert_eq!(sums, want);
    }

    #[test]
    fn rollup_blocks_split_grow_and_answer_per_minute_and_hour() {
        const MIN: i64 = 60_000_000_000;
        const HOUR_STEP: i64 = 60 * MIN;
        let mut ix = Index::new(100);
        // One point every 30 s for three days.
        let n = 3 * 24 * 120;
        for i in 0..n {
            ix.insert(row("t", "s", i * MIN / 2, i % 11));
        }
        let blocks = |ix: &Index| ix.series_stats()[0].rollup_blocks;
        // Two days at once: 2,880 minutes make two minute blocks, 48 hours one hour block.
        ix.drop_before("t", Some("s"), 2 * 24 * 60 * MIN);
        assert_eq!(blocks(&ix), 3);
        // Then an hour at a time: a new minute block starts (the last one is full), and
        // grows; the hour block grows.
        for h in 1..=5 {
            ix.drop_before("t", Some("s"), (2 * 24 + h) * 60 * MIN);
        }
        assert_eq!(blocks(&ix), 4);
        for (step, per) in [(MIN, 2u64), (60 * MIN, 120), (24 * 60 * MIN, 2880)] {
            let got = ix
                .downsample("t", "s", 0, n * MIN / 2, step, Agg::Count)
                .unwrap();
            assert_eq!(got.len() as i64, n * MIN / 2 / step, "step {step}");
            assert!(got.iter().all(|b| b.count == per), "step {step}");
            let sums = ix
                .downsample("t", "s", 0, n * MIN / 2, step, Agg::Sum)
                .unwrap();
            for b in sums {
                let first = b.start / (MIN / 2);
                let want: i64 = (first..first + per as i64).map(|i| i % 11).sum();
                assert_eq!(b.value, want as f64, "step {step} bucket {}", b.start);
            }
        }
        let last = ix.downsample("t", "s", 0, MIN, MIN, Agg::Last).unwrap();
        assert_eq!(last[0].value, 1.0, "the point at 30 s");
        // A step that is not whole minutes answers from the raw points only.
        let odd = ix
            .downsample("t", "s", 0, n * MIN / 2, MIN + 1, Agg::Count)
            .unwrap();
        assert_eq!(
            odd.iter().map(|b| b.count).sum::<u64>(),
            (n - (2 * 24 + 5) * 120) as u64
        );
        assert_eq!(ix.range("t", "s", 0, 60 * MIN, 10).unwrap(), vec![]);
        // Open-ended queries clamp to the data they would use.
        let last = (n - 1) * MIN / 2;
        assert_eq!(ix.downsample_span("t", "s", MIN), Some((0, last)));
        let raw_from = (2 * 24 + 5) * 60 * MIN;
        assert_eq!(
            ix.downsample_span("t", "s", MIN + 1),
            Some((raw_from, last))
        );
        ix.drop_before("t", None, i64::MAX);
        assert_eq!(ix.downsample_span("t", "s", MIN + 1), None);
        assert_eq!(ix.downsample_span("t", "s", HOUR_STEP), Some((0, last)));
        assert_eq!(ix.series_count(), 0, "only rollups left");
        assert_eq!(ix.latest_all(), vec![]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A hinted lookup finds (or makes) the same series as a plain one, whatever the hint.
        #[test]
        fn hinted_lookup_finds_the_named_series(
            ops in proptest::collection::vec((0usize..12, 0usize..20), 1..80),
        ) {
            let names: Vec<Arc<str>> = (0..12).map(|i| Arc::from(format!("s{i}"))).collect();
            let mut signals = Signals(Vec::new());
            let mut want: BTreeMap<String, u64> = BTreeMap::new();
            for (n, (which, hint)) in ops.into_iter().enumerate() {
                *want.entry(names[which].to_string()).or_default() += 1;
                // A fresh Arc half the time: the pointer compare must not be the only way in.
                let name = if n % 2 == 0 { names[which].clone() } else { Arc::from(&*names[which]) };
                let mut h = hint;
                signals.entry_hinted(&name, &mut h).points += 1;
                prop_assert_eq!(&*signals.0[h].name, &*name);
                prop_assert!(signals.0.windows(2).all(|w| (w[0].hash, &*w[0].name) < (w[1].hash, &*w[1].name)));
            }
            let got: BTreeMap<String, u64> =
                signals.iter().map(|(k, s)| (k.to_string(), s.points)).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn agrees_with_a_btreemap(
            chunk_points in 1usize..6,
            ops in proptest::collection::vec((-20i64..20, any::<i64>(), 0u8..12), 0..80),
            from in -25i64..25, len in 0i64..50, at in -25i64..25, step in 1i64..9,
        ) {
            let mut ix = Index::new(chunk_points);
            let mut model = BTreeMap::new();
            for (ts, v, action) in ops {
                if action == 0 {
                    ix.seal_all();
                }
                if action >= 10 {
                    // A cut of this signal or of the whole twin, at the op's timestamp.
                    let signal = (action == 10).then_some("s");
                    ix.drop_before("t", signal, ts);
                    model.retain(|&t, _| t >= ts);
                    continue;
                }
                ix.insert(row("t", "s", ts, v));
                model.insert(ts, v);
            }
            prop_assert_eq!(ix.series_count(), usize::from(!model.is_empty()));
            let to = from + len;
            let want: Vec<(i64, i64)> = model.range(from..to).map(|(&t, &v)| (t, v)).collect();
            let got: Vec<(i64, i64)> = ix
                .range("t", "s", from, to, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|p| match p.value { Value::Int(v) => (p.ts, v), _ => unreachable!() })
                .collect();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(ix.point_count(), model.len() as u64);
            let want_last = model.range(..=at).next_back().map(|(&t, &v)| (t, v));
            let got_last = ix.last_at("t", "s", at).map(|p| match p.value { Value::Int(v) => (p.ts, v), _ => unreachable!() });
            prop_assert_eq!(got_last, want_last);
            let mut want_counts: BTreeMap<i64, u64> = BTreeMap::new();
            for (&t, _) in model.range(from..to) {
                *want_counts.entry(t.div_euclid(step) * step).or_default() += 1;
            }
            let got_counts: Vec<(i64, u64)> = ix.downsample("t", "s", from, to, step, Agg::Count).unwrap()
                .into_iter().map(|b| (b.start, b.count)).collect();
            prop_assert_eq!(got_counts, want_counts.into_iter().collect::<Vec<_>>());
        }
    }
}
/// A fleet holds these per series and per chunk by the million (ARCHITECTURE.md, "Memory
/// of a series"); a field that makes one larger should be a choice, not an accident.
#[cfg(all(test, target_pointer_width = "64"))]
mod sizes {
    use std::mem::size_of;

    #[test]
    fn per_series_and_per_chunk_structures_stay_small() {
        assert_eq!(size_of::<super::Series>(), 48);
        assert_eq!(size_of::<super::SignalEntry>(), 72);
        assert_eq!(size_of::<crate::chunk::Summary>(), 80);
        assert_eq!(size_of::<super::Chunk>(), 120);
    }
}
