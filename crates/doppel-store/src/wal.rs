//! The write-ahead log's on-disk format: segment files, record framing, row encoding, and the
//! scanner that replays a segment and tells a torn tail from real corruption.
//!
//! # Format
//!
//! The WAL is a directory `wal/` of segment files named `NNNNNNNN.wal` (eight decimal digits,
//! replayed in numeric order). Each segment is
//!
//! ```text
//! "DPLWAL01"                                   8-byte magic
//! record*                                      until end of file
//!
//! record  = [u32 LE payload_len][u32 LE crc32(payload)][payload]
//! payload = 0x01 row*                          rows (one `Store::write` call)
//!         | 0x02 u16 twin_len, twin bytes      tombstone: forget the twin's history so far
//!         | 0x03 u16 twin_len, twin bytes, u8 scope (0 = every signal | 1 = one signal),
//!                [u16 signal_len, signal bytes if scope 1], i64 LE before
//!                                              cut: forget the points with ts < before
//!         | 0x04 reading*                      readings (one `Store::write_readings_with`)
//! reading = u16 twin_len, twin bytes, i64 LE ts, u16 n, (u16 signal_len, signal bytes,
//!           u8 tag, value) * n               the signals of one twin at one time
//! row     = u16 twin_len, twin bytes (UTF-8)
//!           u16 signal_len, signal bytes (UTF-8)
//!           i64 LE ts (ns since epoch)
//!           u8 tag, value:  0 = f64 LE bits | 1 = i64 LE | 2 = u8 bool (0/1)
//!                         | 3 = u32 LE len, UTF-8 bytes
//! ```
//!
//! A rows payload has no row count: rows run to the end of the payload, which the frame
//! already delimits. One `write` call is one record, so a crash keeps a call whole or drops it.
//! A readings record stores the same points as rows would, with each reading's twin and time
//! once instead of once per signal: about half the bytes for a ten-signal reading, and the
//! index thread applies it straight from these bytes (no `Row` per point, no shared name
//! reference counted per point across threads).
//!
//! Tombstones and cuts apply at their place in the log: replay forgets what the records
//! before them stored (in the WAL or in the segment files the manifest names) and keeps what
//! later records store. A segment holding a cut cannot be read by a doppel older than cuts
//! (it refuses the unknown record type as corruption rather than skipping it).
//!
//! # Torn tails versus corruption
//!
//! A frame is *bad* when its length is zero (a zero-filled tail, which a crash after file
//! extension can leave, would otherwise pass the checksum of an empty payload), larger than
//! [`MAX_RECORD_BYTES`], longer than the rest of the file, or its checksum does not match. The
//! scanner stops at the first bad frame and reports where; the caller decides whether that is
//! a torn tail (last segment) or corruption (any earlier segment). A frame whose checksum
//! matches but whose payload does not decode was written whole by something that is not this
//! format, so it is always corruption.

use std::io::{self, Read};
use std::sync::Arc;

use doppel_model::Value;

use crate::Row;

/// Every segment starts with these bytes; a file without them is not ours.
pub(crate) const MAGIC: &[u8; 8] = b"DPLWAL01";
pub(crate) const HEADER_LEN: u64 = MAGIC.len() as u64;
/// Frame header: payload length and checksum.
pub(crate) const FRAME_LEN: usize = 8;
/// Largest payload one record may have. Bounds what a corrupt length can make replay read.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;

const REC_ROWS: u8 = 1;
const REC_TOMBSTONE: u8 = 2;
const REC_CUT: u8 = 3;
const REC_READINGS: u8 = 4;

const TAG_FLOAT: u8 = 0;
const TAG_INT: u8 = 1;
const TAG_BOOL: u8 = 2;
const TAG_STRING: u8 = 3;

/// One decoded WAL record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Record {
    Rows(Vec<Row>),
    Tombstone(Arc<str>),
    /// Forget the points before `before` of one signal of `twin`, or of all its signals.
    Cut {
        twin: Arc<str>,
        signal: Option<Arc<str>>,
        before: i64,
    },
    /// A readings record's payload after its type byte, already checked to decode whole
    /// (read it with [`Readings`]).
    Readings(Vec<u8>),
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EncodeError {
    Row {
        twin: String,
        signal: String,
        reason: String,
    },
    TooLarge {
        bytes: usize,
    },
}

/// The file name of segment `n`.
pub(crate) fn segment_name(n: u32) -> String {
    format!("{n:08}.wal")
}

/// The number of a segment file name, `None` for anything else in the directory.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Appends one framed rows record to `out`.
/// On error `out` is left as it was.
pub(crate) fn encode_rows(rows: &[Row], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    encode_rows_inner(rows, out).inspect_err(|_| out.truncate(start))
}

fn encode_rows_inner(rows: &[Row], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = begin_frame(out, REC_ROWS);
    for row in rows {
        let bad = |reason: String| EncodeError::Row {
            twin: truncate_for_error(&row.twin),
            signal: truncate_for_error(&row.signal),
            reason,
        };
        put_name(out, &row.twin).map_err(|n| bad(format!("twin name is {n} bytes, max 65535")))?;
        put_name(out, &row.signal)
            .map_err(|n| bad(format!("signal name is {n} bytes, max 65535")))?;
        out.extend_from_slice(&row.ts.to_le_bytes());
        put_value(out, &row.value).map_err(bad)?;
        if out.len() - start > MAX_RECORD_BYTES + FRAME_LEN {
            return Err(EncodeError::TooLarge {
                bytes: out.len() - start,
            });
        }
    }
    finish_frame(out, start);
    Ok(())
}

/// Appends one framed readings record to `out`: each item is a twin, a time and that
/// reading's (signal, value) pairs. On error `out` is left as it was.
pub(crate) fn encode_readings<'a, R, V>(readings: R, out: &mut Vec<u8>) -> Result<(), EncodeError>
where
    R: IntoIterator<Item = (&'a str, i64, V)>,
    V: IntoIterator<Item = (&'a str, &'a Value)>,
{
    let start = out.len();
    encode_readings_inner(readings, out).inspect_err(|_| out.truncate(start))
}

fn encode_readings_inner<'a, R, V>(readings: R, out: &mut Vec<u8>) -> Result<(), EncodeError>
where
    R: IntoIterator<Item = (&'a str, i64, V)>,
    V: IntoIterator<Item = (&'a str, &'a Value)>,
{
    let start = begin_frame(out, REC_READINGS);
    for (twin, ts, values) in readings {
        let bad = |signal: &str, reason: String| EncodeError::Row {
            twin: truncate_for_error(twin),
            signal: truncate_for_error(signal),
            reason,
        };
        put_name(out, twin).map_err(|n| bad("", format!("twin name is {n} bytes, max 65535")))?;
        out.extend_from_slice(&ts.to_le_bytes());
        let count_at = out.len();
        out.extend_from_slice(&[0, 0]);
        let mut n = 0u16;
        for (signal, value) in values {
            n = n
                .checked_add(1)
                .ok_or_else(|| bad(signal, "more than 65535 signals in one reading".into()))?;
            put_name(out, signal)
                .map_err(|len| bad(signal, format!("signal name is {len} bytes, max 65535")))?;
            put_value(out, value).map_err(|reason| bad(signal, reason))?;
        }
        out[count_at..count_at + 2].copy_from_slice(&n.to_le_bytes());
        if out.len() - start > MAX_RECORD_BYTES + FRAME_LEN {
            return Err(EncodeError::TooLarge {
                bytes: out.len() - start,
            });
        }
    }
    finish_frame(out, start);
    Ok(())
}

fn put_value(out: &mut Vec<u8>, value: &Value) -> Result<(), String> {
    match value {
        Value::Float(f) => {
            out.push(TAG_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Int(i) => {
            out.push(TAG_INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Bool(b) => {
            out.push(TAG_BOOL);
            out.push(u8::from(*b));
        }
        Value::String(s) => {
            let len = u32::try_from(s.len())
                .map_err(|_| format!("string value is {} bytes, max 4 GiB", s.len()))?;
            out.push(TAG_STRING);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    Ok(())
}

/// Reads a readings payload (after its type byte): [`Readings::next_reading`] gives a
/// reading's twin, time and signal count, then [`Readings::next_value`] that many times.
pub(crate) struct Readings<'a> {
    c: Cursor<'a>,
}

impl<'a> Readings<'a> {
    pub(crate) fn new(payload: &'a [u8]) -> Self {
        Readings {
            c: Cursor {
                buf: payload,
                pos: 0,
            },
        }
    }

    /// The next reading's twin, time and number of values; `None` at the end.
    pub(crate) fn next_reading(&mut self) -> Result<Option<(&'a str, i64, u16)>, String> {
        if self.c.remaining() == 0 {
            return Ok(None);
        }
        let twin = self.c.name()?;
        let ts = i64::from_le_bytes(self.c.array()?);
        let n = u16::from_le_bytes(self.c.array()?);
        Ok(Some((twin, ts, n)))
    }

    pub(crate) fn next_value(&mut self) -> Result<(&'a str, Value), String> {
        let signal = self.c.name()?;
        Ok((signal, self.c.value()?))
    }

    /// Reads to the end, so a payload that does not decode is found before any of it is
    /// applied.
    fn check(payload: &[u8]) -> Result<(), String> {
        let mut r = Readings::new(payload);
        while let Some((_, _, n)) = r.next_reading()? {
            for _ in 0..n {
                r.next_value()?;
            }
        }
        Ok(())
    }
}

/// Appends one framed tombstone record to `out`.
/// On error `out` is left as it was.
pub(crate) fn encode_tombstone(twin: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = begin_frame(out, REC_TOMBSTONE);
    put_name(out, twin).map_err(|n| {
        out.truncate(start);
        EncodeError::Row {
            twin: truncate_for_error(twin),
            signal: String::new(),
            reason: format!("twin name is {n} bytes, max 65535"),
        }
    })?;
    finish_frame(out, start);
    Ok(())
}

/// Appends one framed cut record to `out`.
/// On error `out` is left as it was.
pub(crate) fn encode_cut(
    twin: &str,
    signal: Option<&str>,
    before: i64,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = begin_frame(out, REC_CUT);
    let bad = |out: &mut Vec<u8>, what: &str, n: usize| {
        out.truncate(start);
        EncodeError::Row {
            twin: truncate_for_error(twin),
            signal: truncate_for_error(signal.unwrap_or_default()),
            reason: format!("{what} name is {n} bytes, max 65535"),
        }
    };
    if let Err(n) = put_name(out, twin) {
        return Err(bad(out, "twin", n));
    }
    match signal {
        None => out.push(0),
        Some(signal) => {
            out.push(1);
            if let Err(n) = put_name(out, signal) {
                return Err(bad(out, "signal", n));
            }
        }
    }
    out.extend_from_slice(&before.to_le_bytes());
    finish_frame(out, start);
    Ok(())
}

/// Reserves the frame header and writes the record type; returns where the frame starts.
fn begin_frame(out: &mut Vec<u8>, kind: u8) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_LEN]);
    out.push(kind);
    start
}

/// Fills in length and checksum of the frame that starts at `start`. The caller has checked
/// the payload against [`MAX_RECORD_BYTES`], so the length fits in a u32.
fn finish_frame(out: &mut [u8], start: usize) {
    let payload = &out[start + FRAME_LEN..];
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Writes a u16-length-prefixed name; on overflow returns its length and writes nothing.
fn put_name(out: &mut Vec<u8>, name: &str) -> Result<(), usize> {
    let len = u16::try_from(name.len()).map_err(|_| name.len())?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(name.as_bytes());
    Ok(())
}

/// Names in error messages are cut so a hostile 60 kB name does not flood the log.
fn truncate_for_error(s: &str) -> String {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Decodes one record payload (after the frame header).
pub(crate) fn decode_payload(payload: &[u8]) -> Result<Record, String> {
    let mut r = Cursor {
        buf: payload,
        pos: 0,
    };
    match r.u8()? {
        REC_ROWS => {
            let mut rows = Vec::new();
            while r.remaining() > 0 {
                let twin: Arc<str> = r.name()?.into();
                let signal: Arc<str> = r.name()?.into();
                let ts = i64::from_le_bytes(r.array()?);
                let value = r.value()?;
                rows.push(Row {
                    twin,
                    signal,
                    ts,
                    value,
                });
            }
            Ok(Record::Rows(rows))
        }
        REC_TOMBSTONE => {
            let twin = r.name()?.into();
            if r.remaining() != 0 {
                return Err(format!("{} trailing bytes after tombstone", r.remaining()));
            }
            Ok(Record::Tombstone(twin))
        }
        REC_CUT => {
            let twin = r.name()?.into();
            let signal = match r.u8()? {
                0 => None,
                1 => Some(r.name()?.into()),
                b => return Err(format!("cut scope byte {b} at payload byte {}", r.pos - 1)),
            };
            let before = i64::from_le_bytes(r.array()?);
            if r.remaining() != 0 {
                return Err(format!("{} trailing bytes after cut", r.remaining()));
            }
            Ok(Record::Cut {
                twin,
                signal,
                before,
            })
        }
        REC_READINGS => {
            let rest = &payload[1..];
            Readings::check(rest)?;
            Ok(Record::Readings(rest.to_vec()))
        }
        t => Err(format!("unknown record type {t}")),
    }
}

/// A bounds-checked reader over a payload: every length is checked against what is left
/// before anything is sliced or allocated.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "needs {n} bytes at payload byte {}, only {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }

    fn str(&mut self, len: usize) -> Result<&'a str, String> {
        let at = self.pos;
        std::str::from_utf8(self.take(len)?)
            .map_err(|e| format!("invalid UTF-8 at payload byte {at}: {e}"))
    }

    fn name(&mut self) -> Result<&'a str, String> {
        let len = u16::from_le_bytes(self.array()?) as usize;
        self.str(len)
    }

    fn value(&mut self) -> Result<Value, String> {
        Ok(match self.u8()? {
            TAG_FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(self.array()?))),
            TAG_INT => Value::Int(i64::from_le_bytes(self.array()?)),
            TAG_BOOL => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("bool byte {b} at payload byte {}", self.pos - 1)),
            },
            TAG_STRING => {
                let len = u32::from_le_bytes(self.array()?) as usize;
                Value::String(self.str(len)?.to_string())
            }
            t => {
                return Err(format!(
                    "unknown value tag {t} at payload byte {}",
                    self.pos - 1
                ))
            }
        })
    }
}

/// How a segment scan ended.
#[derive(Debug, PartialEq)]
pub(crate) enum ScanEnd {
    /// Every byte belonged to a whole, valid record.
    Clean,
    /// The file is shorter than its header (a crash while creating it).
    ShortHeader,
    /// The first `HEADER_LEN` bytes are not [`MAGIC`].
    BadMagic,
    /// A bad frame starts at `offset`; everything from there on was not replayed.
    BadFrame { offset: u64, reason: String },
    /// A frame with a valid checksum at `offset` did not decode: never a torn write.
    BadPayload { offset: u64, reason: String },
}

/// The outcome of scanning one segment.
#[derive(Debug, PartialEq)]
pub(crate) struct Scan {
    /// Bytes from the start of the file up to the end of the last good record.
    pub valid_len: u64,
    pub end: ScanEnd,
}

/// Reads a segment of `file_len` bytes from `r`, handing every good record to `on_record` in
/// order, and stops at the first bad frame. IO errors are returned as such; content never
/// causes a panic or an allocation larger than the bytes actually left in the file.
pub(crate) fn scan_segment(
    r: &mut impl Read,
    file_len: u64,
    mut on_record: impl FnMut(Record),
) -> io::Result<Scan> {
    let mut header = [0u8; HEADER_LEN as usize];
    if file_len < HEADER_LEN {
        return Ok(Scan {
            valid_len: 0,
            end: ScanEnd::ShortHeader,
        });
    }
    r.read_exact(&mut header)?;
    if &header != MAGIC {
        return Ok(Scan {
            valid_len: 0,
            end: ScanEnd::BadMagic,
        });
    }
    let mut pos = HEADER_LEN;
    let mut payload = Vec::new();
    loop {
        let left = file_len - pos;
        if left == 0 {
            return Ok(Scan {
                valid_len: pos,
                end: ScanEnd::Clean,
            });
        }
        let bad = |reason: String| {
            Ok(Scan {
                valid_len: pos,
                end: ScanEnd::BadFrame {
                    offset: pos,
                    reason,
                },
            })
        };
        if left < FRAME_LEN as u64 {
            return bad(format!("{left} bytes left, shorter than a record header"));
        }
        let mut frame = [0u8; FRAME_LEN];
        r.read_exact(&mut frame)?;
        let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len == 0 {
            return bad("zero-length record".into());
        }
        if len > MAX_RECORD_BYTES {
            return bad(format!(
                "record length {len} exceeds the {MAX_RECORD_BYTES}-byte limit"
            ));
        }
        if len as u64 > left - FRAME_LEN as u64 {
            return bad(format!(
                "record length {len} but only {} bytes left",
                left - FRAME_LEN as u64
            ));
        }
        payload.clear();
        payload.resize(len, 0);
        r.read_exact(&mut payload)?;
        let actual = crc32fast::hash(&payload);
        if actual != crc {
            return bad(format!("checksum {actual:08x} does not match {crc:08x}"));
        }
        match decode_payload(&payload) {
            Ok(rec) => on_record(rec),
            Err(reason) => {
                return Ok(Scan {
                    valid_len: pos,
                    end: ScanEnd::BadPayload {
                        offset: pos,
                        reason,
                    },
                })
            }
        }
        pos += (FRAME_LEN + len) as u64;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(twin: &str, signal: &str, ts: i64, value: Value) -> Row {
        Row {
            twin: twin.into(),
            signal: signal.into(),
            ts,
            value,
        }
    }

    fn segment(records: &[Record]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            match r {
                Record::Rows(rows) => encode_rows(rows, &mut out).unwrap(),
                Record::Tombstone(t) => encode_tombstone(t, &mut out).unwrap(),
                Record::Cut {
                    twin,
                    signal,
                    before,
                } => encode_cut(twin, signal.as_deref(), *before, &mut out).unwrap(),
                Record::Readings(payload) => {
                    let start = begin_frame(&mut out, REC_READINGS);
                    out.extend_from_slice(payload);
                    finish_frame(&mut out, start);
                }
            }
        }
        out
    }

    /// The points of a readings payload as rows.
    fn readings_rows(payload: &[u8]) -> Vec<Row> {
        let mut r = Readings::new(payload);
        let mut rows = Vec::new();
        while let Some((twin, ts, n)) = r.next_reading().unwrap() {
            for _ in 0..n {
                let (signal, value) = r.next_value().unwrap();
                rows.push(row(twin, signal, ts, value));
            }
        }
        rows
    }

    #[test]
    fn readings_round_trip_and_refuse_what_does_not_decode() {
        let values = [
            ("temp", Value::Float(-71.25)),
            ("rpm", Value::Int(i64::MIN)),
            ("on", Value::Bool(true)),
            ("state", Value::String("öffen ✓".into())),
        ];
        let readings = [
            ("pump-1", 5i64, &values[..]),
            ("välve", i64::MAX, &values[3..]),
            ("", 0, &[][..]),
        ];
        let mut out = MAGIC.to_vec();
        encode_readings(
            readings
                .iter()
                .map(|(t, ts, vs)| (*t, *ts, vs.iter().map(|(s, v)| (*s, v)))),
            &mut out,
        )
        .unwrap();
        let (got, scan) = scan_all(&out);
        assert_eq!(scan.end, ScanEnd::Clean);
        let [Record::Readings(payload)] = &got[..] else {
            panic!("one readings record expected, got {got:?}");
        };
        let mut want: Vec<Row> = values
            .iter()
            .map(|(s, v)| row("pump-1", s, 5, v.clone()))
            .collect();
        want.push(row("välve", "state", i64::MAX, values[3].1.clone()));
        assert_eq!(readings_rows(payload), want);
        // A payload cut short (re-framed with a valid checksum) is corruption, not a tail.
        for cut in 1..payload.len() {
            let bytes = segment(&[Record::Readings(payload[..cut].to_vec())]);
            let (got, scan) = scan_all(&bytes);
            // A cut between two readings leaves a whole record (the last reading, with an
            // empty twin and no values, is 12 bytes); anything else must not decode.
            assert!(
                matches!(scan.end, ScanEnd::BadPayload { .. } | ScanEnd::Clean),
                "cut {cut}: {:?}",
                scan.end
            );
            if scan.end == ScanEnd::Clean {
                assert_eq!(got.len(), 1);
            } else {
                assert!(got.is_empty());
            }
        }
        // A name too long for its u16 length refuses the record and leaves `out` as it was.
        let long = "x".repeat(70_000);
        let v = Value::Int(1);
        let mut out = b"keep".to_vec();
        let err = encode_readings([("t", 1, [(long.as_str(), &v)])], &mut out).unwrap_err();
        assert!(matches!(err, EncodeError::Row { .. }));
        assert_eq!(out, b"keep");
    }

    fn scan_all(bytes: &[u8]) -> (Vec<Record>, Scan) {
        let mut got = Vec::new();
        let scan = scan_segment(&mut io::Cursor::new(bytes), bytes.len() as u64, |r| {
            got.push(r)
        })
        .unwrap();
        (got, scan)
    }

    fn sample() -> Vec<Record> {
        vec![
            Record::Rows(vec![
                row("pump-1", "temp", 5, Value::Float(-71.25)),
                row("pump-1", "rpm", -3, Value::Int(i64::MIN)),
                row("pump-1", "on", 7, Value::Bool(true)),
                row("välve", "state", i64::MAX, Value::String("öffen ✓".into())),
                row("", "", 0, Value::String(String::new())),
            ]),
            Record::Tombstone("pump-1".into()),
            Record::Rows(vec![row("pump-1", "temp", 9, Value::Float(f64::NAN))]),
            Record::Cut {
                twin: "pump-1".into(),
                signal: Some("temp".into()),
                before: -7,
            },
            Record::Cut {
                twin: "välve".into(),
                signal: None,
                before: i64::MIN,
            },
        ]
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_name(42), "00000042.wal");
        assert_eq!(parse_segment_name("00000042.wal"), Some(42));
        assert_eq!(parse_segment_name("0000042.wal"), None);
        assert_eq!(parse_segment_name("00000042.wal.tmp"), None);
        assert_eq!(parse_segment_name("+0000042.wal"), None);
    }

    #[test]
    fn encode_then_scan_is_identity() {
        let records = sample();
        let bytes = segment(&records);
        let (got, scan) = scan_all(&bytes);
        assert_eq!(scan.end, ScanEnd::Clean);
        assert_eq!(scan.valid_len, bytes.len() as u64);
        assert_eq!(got.len(), records.len());
        // NaN != NaN, so compare the last record by bits.
        assert_eq!(got[..2], records[..2]);
        assert_eq!(got[3..], records[3..]);
        match &got[2] {
            Record::Rows(rows) => match rows[0].value {
                Value::Float(f) => assert!(f.is_nan()),
                ref v => panic!("{v:?}"),
            },
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn every_truncation_keeps_exactly_the_whole_records() {
        let records = sample();
        let bytes = segment(&records);
        let ends: Vec<usize> = (0..=records.len())
            .map(|n| segment(&records[..n]).len())
            .collect();
        for cut in 0..=bytes.len() {
            let (got, scan) = scan_all(&bytes[..cut]);
            if cut < HEADER_LEN as usize {
                assert_eq!(scan.end, ScanEnd::ShortHeader);
                continue;
            }
            let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
            assert_eq!(got.len(), whole, "cut {cut}");
            assert_eq!(scan.valid_len, ends[whole] as u64, "cut {cut}");
            if ends.contains(&cut) {
                assert_eq!(scan.end, ScanEnd::Clean, "cut {cut}");
            } else {
                assert!(
                    matches!(scan.end, ScanEnd::BadFrame { .. }),
                    "cut {cut}: {scan:?}"
                );
            }
        }
    }

    #[test]
    fn flipped_byte_is_a_bad_frame_at_its_record() {
        let records = sample();
        let bytes = segment(&records);
        let first_end = segment(&records[..1]).len();
        let mut bad = bytes.clone();
        bad[first_end + FRAME_LEN + 2] ^= 0x40; // inside the tombstone's payload
        let (got, scan) = scan_all(&bad);
        assert_eq!(got.len(), 1);
        assert_eq!(scan.valid_len, first_end as u64);
        assert!(matches!(scan.end, ScanEnd::BadFrame { offset, .. } if offset == first_end as u64));
    }

    #[test]
    fn zero_filled_tail_is_a_bad_frame() {
        let mut bytes = segment(&sample());
        let len = bytes.len();
        bytes.extend_from_slice(&[0u8; 64]);
        let (got, scan) = scan_all(&bytes);
        assert_eq!(got.len(), sample().len());
        assert_eq!(scan.valid_len, len as u64);
        assert!(matches!(scan.end, ScanEnd::BadFrame { .. }));
    }

    #[test]
    fn checksummed_garbage_is_a_bad_payload() {
        let mut bytes = MAGIC.to_vec();
        let payload = [9u8, 1, 2, 3];
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let (_, scan) = scan_all(&bytes);
        assert!(matches!(scan.end, ScanEnd::BadPayload { offset: 8, .. }));
    }

    #[test]
    fn huge_length_is_refused_without_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0u8; 4]);
        let (_, scan) = scan_all(&bytes);
        assert!(matches!(scan.end, ScanEnd::BadFrame { offset: 8, .. }));
        // A string length far beyond the payload is caught by the cursor, not by allocation.
        let mut payload = vec![REC_ROWS, 1, 0, b'a', 1, 0, b'b'];
        payload.extend_from_slice(&0i64.to_le_bytes());
        payload.push(TAG_STRING);
        payload.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_payload(&payload).is_err());
    }

    #[test]
    fn overlong_names_are_refused() {
        let long: String = "x".repeat(70_000);
        let mut out = Vec::new();
        let err = encode_rows(&[row(&long, "s", 0, Value::Int(1))], &mut out).unwrap_err();
        assert!(matches!(err, EncodeError::Row { ref reason, .. } if reason.contains("twin name")));
        assert!(out.is_empty(), "a refused record leaves nothing behind");
        assert!(encode_tombstone(&long, &mut out).is_err());
        assert!(out.is_empty());
        assert!(encode_cut(&long, None, 0, &mut out).is_err());
        assert!(encode_cut("t", Some(&long), 0, &mut out).is_err());
        assert!(out.is_empty());
        // A cut whose scope byte is neither 0 nor 1 does not decode.
        let mut bad = vec![REC_CUT, 1, 0, b't', 2];
        bad.extend_from_slice(&0i64.to_le_bytes());
        assert!(decode_payload(&bad).is_err());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<f64>().prop_map(Value::Float),
            any::<i64>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            "\\PC{0,20}".prop_map(Value::String),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_payload(&bytes);
            let _ = scan_all(&bytes);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let (_, scan) = scan_all(&with_magic);
            prop_assert!(scan.valid_len <= with_magic.len() as u64);
        }

        #[test]
        fn rows_round_trip(rows in proptest::collection::vec(
            ("[a-z]{0,8}", "\\PC{0,8}", any::<i64>(), arb_value()), 0..20)
        ) {
            let rows: Vec<Row> = rows.into_iter().map(|(t, s, ts, v)| row(&t, &s, ts, v)).collect();
            let mut out = Vec::new();
            encode_rows(&rows, &mut out).unwrap();
            let rec = decode_payload(&out[FRAME_LEN..]).unwrap();
            let Record::Rows(back) = rec else { panic!("not rows") };
            prop_assert_eq!(back.len(), rows.len());
            for (a, b) in back.iter().zip(&rows) {
                prop_assert_eq!(&a.twin, &b.twin);
                prop_assert_eq!(&a.signal, &b.signal);
                prop_assert_eq!(a.ts, b.ts);
                match (&a.value, &b.value) {
                    (Value::Float(x), Value::Float(y)) => prop_assert_eq!(x.to_bits(), y.to_bits()),
                    (x, y) => prop_assert_eq!(x, y),
                }
            }
        }

        #[test]
        fn single_bit_flips_never_decode_silently(flip in 0usize..4096) {
            let records = sample();
            let bytes = segment(&records);
            let bit = flip % ((bytes.len() - HEADER_LEN as usize) * 8);
            let mut bad = bytes.clone();
            bad[HEADER_LEN as usize + bit / 8] ^= 1 << (bit % 8);
            let (got, scan) = scan_all(&bad);
            // CRC32 catches every single-bit error, so the damaged record and all after it
            // are cut off and nothing different from what was written comes back.
            prop_assert!(got.len() < records.len());
            prop_assert!(scan.end != ScanEnd::Clean);
        }
    }
}
