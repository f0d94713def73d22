//! Segment files: immutable files of sealed chunks with their index, written by checkpoints.
//!
//! # Format
//!
//! `chunks/NNNNNNNN.seg` (eight decimal digits, the segment id):
//!
//! ```text
//! "DPLSEG02"                                  8-byte magic ("DPLSEG01": version 1)
//! chunk*                                      chunk and rollup block bytes
//! index   = varint series_count, series*
//! series  = varint twin_len, twin, varint signal_len, signal, varint chunk_count, entry*,
//!           varint block_count, block*                   (version 1: no block_count, block*)
//! entry   = varint offset, varint len, u32 LE crc32(chunk bytes), summary (chunk.rs)
//! block   = u8 level (0 minute, 1 hour), varint buckets, varint offset, varint len,
//!           u32 LE crc32(block bytes), rollup summary (rollup.rs)
//! footer  = u64 LE index_offset, u64 LE index_len, u32 LE crc32(index),
//!           u32 LE crc32(the 20 footer bytes before it), "DPLSEGFT"       (32 bytes)
//! ```
//!
//! Version 2 adds the rollup blocks of a series (the minute and hour summaries of points
//! retention forgot, see `rollup.rs`) after its chunk entries; version 1 files, written
//! before rollups existed, are still read. A reader older than version 2 refuses the new
//! magic rather than miss the rollups.
//!
//! A chunk's (or block's) *ordinal* is its position among all entries of the index, in
//! order, a series' chunks before its blocks; the manifest names dead chunks and blocks (of
//! deleted twins, replaced by a re-sealed chunk or a grown block, or cut by retention) by
//! ordinal. A file is
//! written under `NNNNNNNN.seg.tmp`, fsynced and renamed into place, and is never changed
//! after; only the manifest makes it live. Opening reads the footer and the index only
//! (checksummed); chunk bytes are read, and their checksum verified, when a query needs them.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chunk::Summary;
use crate::codec::{put_block, put_varint, Bytes, CodecError};
use crate::rollup::{Level, Rollup, BLOCK_BUCKETS};
use crate::StoreError;

const MAGIC: &[u8; 8] = b"DPLSEG02";
const MAGIC_V1: &[u8; 8] = b"DPLSEG01";
const FOOTER_MAGIC: &[u8; 8] = b"DPLSEGFT";
const FOOTER_LEN: u64 = 32;
/// Largest chunk a segment may hold; bounds what a corrupt index can make a read allocate.
pub(crate) const MAX_CHUNK_BYTES: u64 = 64 << 20;

pub(crate) fn segment_name(id: u32) -> String {
    format!("{id:08}.seg")
}

pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A live segment file, open for reading chunks.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    pub id: u32,
    pub path: PathBuf,
    pub len: u64,
    file: File,
}

/// Where one chunk lives in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub ordinal: u32,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

/// The index entries of one series in one segment.
#[derive(Debug)]
pub(crate) struct SeriesEntries {
    pub twin: Arc<str>,
    pub signal: Arc<str>,
    pub chunks: Vec<(Location, Summary)>,
    pub rollups: Vec<BlockEntry>,
}

/// Where one rollup block lives, and what it holds.
#[derive(Debug)]
pub(crate) struct BlockEntry {
    pub level: Level,
    pub buckets: u32,
    pub loc: Location,
    pub summary: Rollup,
}

impl SegmentFile {
    /// The bytes of one chunk, checksum verified.
    pub(crate) fn read_chunk(&self, loc: &Location) -> Result<Vec<u8>, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt {
            path: self.path.clone(),
            offset: loc.offset,
            reason,
        };
        let end = loc.offset.checked_add(u64::from(loc.len));
        if end.is_none_or(|e| e > self.len) {
            return Err(corrupt(format!(
                "chunk of {} bytes runs past the file",
                loc.len
            )));
        }
        let mut buf = vec![0u8; loc.len as usize];
        read_exact_at(&self.file, &mut buf, loc.offset)
            .map_err(|e| StoreError::io(&self.path, "read chunk", e))?;
        let crc = crc32fast::hash(&buf);
        if crc != loc.crc {
            return Err(corrupt(format!(
                "chunk checksum {crc:08x} does not match {:08x}",
                loc.crc
            )));
        }
        Ok(buf)
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Opens segment `id` at `path` and reads its index.
pub(crate) fn open(
    path: &Path,
    id: u32,
) -> Result<(Arc<SegmentFile>, Vec<SeriesEntries>), StoreError> {
    let file = File::open(path).map_err(|e| StoreError::io(path, "open segment", e))?;
    let len = file
        .metadata()
        .map_err(|e| StoreError::io(path, "stat", e))?
        .len();
    let corrupt = |offset: u64, reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if len < MAGIC.len() as u64 + FOOTER_LEN {
        return Err(corrupt(0, format!("{len} bytes, too short for a segment")));
    }
    let mut magic = [0u8; 8];
    read_exact_at(&file, &mut magic, 0).map_err(|e| StoreError::io(path, "read", e))?;
    let version = match &magic {
        MAGIC => 2,
        MAGIC_V1 => 1,
        _ => return Err(corrupt(0, "not a doppel segment (bad magic)".into())),
    };
    let footer_at = len - FOOTER_LEN;
    let mut footer = [0u8; FOOTER_LEN as usize];
    read_exact_at(&file, &mut footer, footer_at).map_err(|e| StoreError::io(path, "read", e))?;
    let u64_at = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&footer[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let u32_at =
        |i: usize| u32::from_le_bytes([footer[i], footer[i + 1], footer[i + 2], footer[i + 3]]);
    if &footer[24..32] != FOOTER_MAGIC || crc32fast::hash(&footer[..20]) != u32_at(20) {
        return Err(corrupt(footer_at, "bad segment footer".into()));
    }
    let (index_at, index_len, index_crc) = (u64_at(0), u64_at(8), u32_at(16));
    if index_at < MAGIC.len() as u64 || index_at.checked_add(index_len) != Some(footer_at) {
        return Err(corrupt(
            footer_at,
            "segment footer points outside the file".into(),
        ));
    }
    let mut index = vec![0u8; index_len as usize];
    read_exact_at(&file, &mut index, index_at).map_err(|e| StoreError::io(path, "read", e))?;
    if crc32fast::hash(&index) != index_crc {
        return Err(corrupt(
            index_at,
            "segment index checksum does not match".into(),
        ));
    }
    let mut b = Bytes::new(&index);
    let series = parse_index(&mut b, index_at, version).map_err(|e| {
        corrupt(
            index_at + b.pos() as u64,
            format!("segment index: {}", e.reason()),
        )
    })?;
    let seg = Arc::new(SegmentFile {
        id,
        path: path.to_path_buf(),
        len,
        file,
    });
    Ok((seg, series))
}

fn parse_index(
    b: &mut Bytes<'_>,
    index_at: u64,
    version: u8,
) -> Result<Vec<SeriesEntries>, CodecError> {
    let next_ordinal = |ordinal: &mut u32| -> Result<u32, CodecError> {
        let o = *ordinal;
        *ordinal = o.checked_add(1).ok_or(CodecError::new("too many chunks"))?;
        Ok(o)
    };
    let location = |b: &mut Bytes<'_>, ordinal: u32| -> Result<Location, CodecError> {
        let offset = b.varint()?;
        let len = b.varint_max(MAX_CHUNK_BYTES, "chunk length too large")? as u32;
        let crc = b.u32()?;
        if offset < MAGIC.len() as u64 || offset.saturating_add(u64::from(len)) > index_at {
            return Err(CodecError::new("chunk outside the chunk area"));
        }
        Ok(Location {
            ordinal,
            offset,
            len,
            crc,
        })
    };
    // Every series and entry takes several bytes, so counts above the bytes left are corrupt
    // (and would otherwise size allocations).
    let n_series = b.varint_max(b.remaining() as u64, "series count too large")?;
    let mut out = Vec::with_capacity(n_series as usize);
    let mut ordinal = 0u32;
    for _ in 0..n_series {
        let twin = name(b)?;
        let signal = name(b)?;
        let n = b.varint_max(b.remaining() as u64, "chunk count too large")?;
        let mut chunks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let loc = location(b, next_ordinal(&mut ordinal)?)?;
            let summary = Summary::decode(b)?;
            chunks.push((loc, summary));
        }
        let mut rollups = Vec::new();
        if version >= 2 {
            let n = b.varint_max(b.remaining() as u64, "block count too large")?;
            rollups.reserve(n as usize);
            for _ in 0..n {
                let level = Level::from_u8(b.u8()?).ok_or(CodecError::new("bad rollup level"))?;
                let buckets = b.varint_max(BLOCK_BUCKETS as u64, "rollup block too large")?;
                if buckets == 0 {
                    return Err(CodecError::new("empty rollup block"));
                }
                let loc = location(b, next_ordinal(&mut ordinal)?)?;
                let summary = Rollup::decode(b)?;
                rollups.push(BlockEntry {
                    level,
                    buckets: buckets as u32,
                    loc,
                    summary,
                });
            }
        }
        out.push(SeriesEntries {
            twin: twin.into(),
            signal: signal.into(),
            chunks,
            rollups,
        });
    }
    if b.remaining() != 0 {
        return Err(CodecError::new("bytes after the last series"));
    }
    Ok(out)
}

fn name<'a>(b: &mut Bytes<'a>) -> Result<&'a str, CodecError> {
    std::str::from_utf8(b.block()?).map_err(|_| CodecError::new("name is not UTF-8"))
}

/// The series a writer is adding chunks and blocks of.
#[derive(Debug)]
struct Pending {
    twin: Arc<str>,
    signal: Arc<str>,
    chunks: Vec<u8>,
    chunk_count: u64,
    blocks: Vec<u8>,
    block_count: u64,
}

impl Pending {
    fn new(twin: &Arc<str>, signal: &Arc<str>) -> Self {
        Pending {
            twin: twin.clone(),
            signal: signal.clone(),
            chunks: Vec::new(),
            chunk_count: 0,
            blocks: Vec::new(),
            block_count: 0,
        }
    }
}

/// Streams chunks into a new segment's temporary file.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    pub tmp: PathBuf,
    pub path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    index: Vec<u8>,
    /// Entries of the series being added, flushed into `index` when the series changes.
    current: Option<Pending>,
    series: u64,
    ordinal: u32,
}

impl SegmentWriter {
    pub(crate) fn create(dir: &Path, id: u32) -> Result<SegmentWriter, StoreError> {
        let path = dir.join(segment_name(id));
        let tmp = dir.join(format!("{}.tmp", segment_name(id)));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StoreError::io(&tmp, "create", e))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)
            .map_err(|e| StoreError::io(&tmp, "write", e))?;
        Ok(SegmentWriter {
            tmp,
            path,
            out,
            pos: MAGIC.len() as u64,
            index: Vec::new(),
            current: None,
            series: 0,
            ordinal: 0,
        })
    }

    /// Appends one chunk of (`twin`, `signal`); a series' chunks must be added together, in
    /// time order, before its blocks. Returns where it went.
    pub(crate) fn add(
        &mut self,
        twin: &Arc<str>,
        signal: &Arc<str>,
        bytes: &[u8],
        summary: &Summary,
    ) -> Result<Location, StoreError> {
        let loc = self.append(twin, signal, bytes)?;
        let p = self.pending(twin, signal);
        if p.block_count > 0 {
            // Ordinals follow the index order, chunks first: a later chunk would break it.
            return Err(StoreError::io(
                &self.tmp,
                "write",
                std::io::Error::other("chunk added after rollup blocks of its series"),
            ));
        }
        put_location(&mut p.chunks, &loc);
        summary.encode(&mut p.chunks);
        p.chunk_count += 1;
        Ok(loc)
    }

    /// Appends one rollup block of (`twin`, `signal`), after the series' chunks.
    pub(crate) fn add_block(
        &mut self,
        twin: &Arc<str>,
        signal: &Arc<str>,
        level: Level,
        buckets: u32,
        bytes: &[u8],
        summary: &Rollup,
    ) -> Result<Location, StoreError> {
        let loc = self.append(twin, signal, bytes)?;
        let p = self.pending(twin, signal);
        p.blocks.push(level as u8);
        put_varint(&mut p.blocks, u64::from(buckets));
        put_location(&mut p.blocks, &loc);
        summary.encode(&mut p.blocks);
        p.block_count += 1;
        Ok(loc)
    }

    /// Writes `bytes` to the chunk area, starting a new series entry if the series changes.
    fn append(
        &mut self,
        twin: &Arc<str>,
        signal: &Arc<str>,
        bytes: &[u8],
    ) -> Result<Location, StoreError> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|&l| u64::from(l) <= MAX_CHUNK_BYTES)
            .ok_or_else(|| {
                StoreError::io(&self.tmp, "write", std::io::Error::other("chunk too large"))
            })?;
        self.out
            .write_all(bytes)
            .map_err(|e| StoreError::io(&self.tmp, "write", e))?;
        let loc = Location {
            ordinal: self.ordinal,
            offset: self.pos,
            len,
            crc: crc32fast::hash(bytes),
        };
        self.pos += u64::from(len);
        self.ordinal += 1;
        let same = matches!(&self.current, Some(p) if &p.twin == twin && &p.signal == signal);
        if !same {
            self.flush_series();
            self.current = Some(Pending::new(twin, signal));
        }
        Ok(loc)
    }

    fn pending(&mut self, twin: &Arc<str>, signal: &Arc<str>) -> &mut Pending {
        self.current
            .get_or_insert_with(|| Pending::new(twin, signal))
    }

    fn flush_series(&mut self) {
        if let Some(p) = self.current.take() {
            put_block(&mut self.index, p.twin.as_bytes());
            put_block(&mut self.index, p.signal.as_bytes());
            put_varint(&mut self.index, p.chunk_count);
            self.index.extend_from_slice(&p.chunks);
            put_varint(&mut self.index, p.block_count);
            self.index.extend_from_slice(&p.blocks);
            self.series += 1;
        }
    }

    /// Writes index and footer and fsyncs the temporary file. Returns its length.
    pub(crate) fn finish(mut self) -> Result<u64, StoreError> {
        self.flush_series();
        let mut tail = Vec::with_capacity(self.index.len() + 48);
        put_varint(&mut tail, self.series);
        tail.extend_from_slice(&self.index);
        let index_len = tail.len() as u64;
        let index_crc = crc32fast::hash(&tail);
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&self.pos.to_le_bytes());
        footer.extend_from_slice(&index_len.to_le_bytes());
        footer.extend_from_slice(&index_crc.to_le_bytes());
        let footer_crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&footer_crc.to_le_bytes());
        footer.extend_from_slice(FOOTER_MAGIC);
        tail.extend_from_slice(&footer);
        let tmp = self.tmp.clone();
        self.out
            .write_all(&tail)
            .map_err(|e| StoreError::io(&tmp, "write", e))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| StoreError::io(&tmp, "write", e.into_error()))?;
        file.sync_all()
            .map_err(|e| StoreError::io(&tmp, "fsync", e))?;
        Ok(self.pos + tail.len() as u64)
    }
}

/// Renames a finished temporary segment into place (the directory is synced by the caller).
pub(crate) fn install(tmp: &Path, path: &Path) -> Result<(), StoreError> {
    fs::rename(tmp, path).map_err(|e| StoreError::io(path, "rename into place", e))
}

/// A chunk's or block's place in the file as the index stores it: offset, length, CRC.
fn put_location(out: &mut Vec<u8>, loc: &Location) {
    put_varint(out, loc.offset);
    put_varint(out, u64::from(loc.len));
    out.extend_from_slice(&loc.crc.to_le_bytes());
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::chunk;
    use crate::Point;
    use doppel_model::Value;
    use proptest::prelude::*;

    fn points(n: i64, base: i64) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                ts: base + i,
                value: Value::Float(i as f64 * 0.5),
            })
            .collect()
    }

    fn write_sample(dir: &Path) -> (PathBuf, Vec<(String, String, Vec<Point>)>) {
        let mut w = SegmentWriter::create(dir, 7).unwrap();
        let data = vec![
            ("a".to_string(), "x".to_string(), points(10, 0)),
            ("a".to_string(), "x".to_string(), points(5, 100)),
            ("b".to_string(), "ÿ".to_string(), points(3, -50)),
        ];
        for (t, s, p) in &data {
            let (bytes, summary) = chunk::encode(p).unwrap();
            w.add(
                &Arc::from(t.as_str()),
                &Arc::from(s.as_str()),
                &bytes,
                &summary,
            )
            .unwrap();
        }
        let (tmp, path) = (w.tmp.clone(), w.path.clone());
        let len = w.finish().unwrap();
        assert_eq!(fs::metadata(&tmp).unwrap().len(), len);
        install(&tmp, &path).unwrap();
        (path, data)
    }

    #[test]
    fn write_then_open_reads_every_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let (path, data) = write_sample(dir.path());
        let (seg, series) = open(&path, 7).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].chunks.len(), 2);
        let all: Vec<_> = series.iter().flat_map(|s| s.chunks.iter()).collect();
        for (i, ((loc, summary), (_, _, pts))) in all.iter().zip(&data).enumerate() {
            assert_eq!(loc.ordinal, i as u32);
            assert_eq!(summary.count as usize, pts.len());
            let bytes = seg.read_chunk(loc).unwrap();
            assert_eq!(&chunk::decode(&bytes).unwrap(), pts);
        }
        assert_eq!(parse_segment_name(&segment_name(7)), Some(7));
    }

    #[test]
    fn damage_is_reported_with_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_sample(dir.path());
        let good = fs::read(&path).unwrap();
        // A flipped byte in a chunk passes open (lazy) but fails the read.
        let mut bad = good.clone();
        bad[9] ^= 1;
        fs::write(&path, &bad).unwrap();
        let (seg, series) = open(&path, 7).unwrap();
        let err = seg.read_chunk(&series[0].chunks[0].0).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { offset: 8, .. }),
            "{err}"
        );
        // Any flipped byte in index or footer fails the open.
        let index_at = series[0]
            .chunks
            .iter()
            .chain(&series[1].chunks)
            .map(|(l, _)| l.offset + u64::from(l.len))
            .max()
            .unwrap();
        for at in index_at as usize..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            assert!(
                matches!(open(&path, 7), Err(StoreError::Corrupt { .. })),
                "flip at {at}"
            );
        }
        fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(open(&path, 7).is_err());
    }

    #[test]
    fn blocks_follow_their_series_chunks_in_ordinal_order() {
        use crate::rollup::{self, Builder};
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 3).unwrap();
        let (a, x): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("x"));
        let (b, y): (Arc<str>, Arc<str>) = (Arc::from("b"), Arc::from("y"));
        let mut minutes = Builder::default();
        for p in points(200, 0).iter().map(|p| Point {
            ts: p.ts * 1_000_000_000,
            value: p.value.clone(),
        }) {
            minutes.push(&p);
        }
        let minutes = minutes.finish();
        let block = rollup::encode_block(&minutes);
        let total = rollup::total(&minutes).unwrap();
        let (c1, s1) = chunk::encode(&points(10, 1000)).unwrap();
        w.add(&a, &x, &c1, &s1).unwrap();
        w.add_block(&a, &x, Level::Minute, minutes.len() as u32, &block, &total)
            .unwrap();
        assert!(
            w.add(&a, &x, &c1, &s1).is_err(),
            "a chunk after its series' blocks would break the ordinals"
        );
        // A series of rollups only.
        w.add_block(
            &b,
            &y,
            Level::Hour,
            1,
            &rollup::encode_block(&[total]),
            &total,
        )
        .unwrap();
        let (tmp, path) = (w.tmp.clone(), w.path.clone());
        w.finish().unwrap();
        install(&tmp, &path).unwrap();
        let (seg, series) = open(&path, 3).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].chunks[0].0.ordinal, 0);
        assert_eq!(series[0].rollups[0].loc.ordinal, 1);
        assert_eq!(series[1].chunks.len(), 0);
        assert_eq!(series[1].rollups[0].loc.ordinal, 2);
        assert_eq!(series[1].rollups[0].level, Level::Hour);
        let e = &series[0].rollups[0];
        assert_eq!((e.buckets as usize, e.summary), (minutes.len(), total));
        let bytes = seg.read_chunk(&e.loc).unwrap();
        assert_eq!(
            rollup::decode_block(&bytes, Level::Minute).unwrap(),
            minutes
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.seg");
            let mut file = MAGIC.to_vec();
            file.extend_from_slice(&bytes);
            fs::write(&path, &file).unwrap();
            let _ = open(&path, 1);
            // And with a valid footer around arbitrary index bytes, in both versions.
            for magic in [MAGIC, MAGIC_V1] {
            let mut file = magic.to_vec();
            let index_at = file.len() as u64;
            file.extend_from_slice(&bytes);
            let mut footer = Vec::new();
            footer.extend_from_slice(&index_at.to_le_bytes());
            footer.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            footer.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
            let fcrc = crc32fast::hash(&footer);
            footer.extend_from_slice(&fcrc.to_le_bytes());
            footer.extend_from_slice(FOOTER_MAGIC);
            file.extend_from_slice(&footer);
            fs::write(&path, &file).unwrap();
            let _ = open(&path, 1);
            }
        }
    }
}
