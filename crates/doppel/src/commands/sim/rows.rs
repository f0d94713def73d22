//! The text hot path of `doppel sim dataset`: rows are composed byte by byte straight into a
//! file's output buffer, numbers as fixed-point decimals written back to front, so a value
//! costs a few stores and no allocation, copy or call into a general formatter. Profiling
//! showed text formatting, not the physics, dominating dataset generation before this.

use std::io::{self, Write};

use doppel_model::{format_ts, Timestamp};

const NS_PER_S: i64 = 1_000_000_000;
const NS_PER_DAY: i64 = 86_400 * NS_PER_S;
/// Buffered bytes after which a row end writes the buffer out.
const FLUSH_AT: usize = 1 << 20;
/// Most bytes one number can take: sign, 16 integer digits, point, 6 decimals; or the
/// scientific form of an out-of-range float.
pub(super) const NUMBER_MAX: usize = 32;

/// Where a [`RowWriter`]'s bytes go: straight to a writer, or through a zstd encoder whose
/// frame is completed by [`RowWriter::finish`] (so an error while finishing is reported, not
/// lost in a drop).
pub(super) enum Sink {
    Plain(Box<dyn Write>),
    Zstd(zstd::stream::write::Encoder<'static, Box<dyn Write>>),
}

impl Sink {
    /// A zstd-compressing sink at `level` (negative levels are the fast modes).
    pub fn zstd(inner: Box<dyn Write>, level: i32) -> io::Result<Sink> {
        Ok(Sink::Zstd(zstd::stream::write::Encoder::new(inner, level)?))
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Zstd(w) => w.write_all(bytes),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Zstd(w) => w.finish()?.flush(),
        }
    }
}

/// A file's output buffer. Rows must not exceed the `row_max` given at creation; a row end
/// writes the buffer to the sink once it holds a megabyte.
pub(super) struct RowWriter {
    buf: Vec<u8>,
    len: usize,
    sink: Sink,
    /// Bytes handed to the sink (before any compression).
    written: u64,
}

impl std::fmt::Debug for RowWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowWriter")
            .field("buffered", &self.len)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl RowWriter {
    pub fn new(sink: Sink, row_max: usize) -> RowWriter {
        RowWriter {
            buf: vec![0; FLUSH_AT + row_max],
            len: 0,
            sink,
            written: 0,
        }
    }

    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[inline]
    pub fn slice(&mut self, s: &[u8]) {
        self.buf[self.len..self.len + s.len()].copy_from_slice(s);
        self.len += s.len();
    }

    /// Where the current row stands, to undo it with [`RowWriter::truncate`].
    pub fn mark(&self) -> usize {
        self.len
    }

    pub fn truncate(&mut self, mark: usize) {
        self.len = mark.min(self.len);
    }

    /// `n` in decimal.
    pub fn uint(&mut self, n: u64) {
        let end = self.len + digits(n);
        self.digits_back(n, end);
        self.len = end;
    }

    /// Writes `n`'s digits so that the last one lands just before `end`, two at a time
    /// (half the serial divisions of a digit-by-digit loop). The caller sized the room.
    #[inline]
    fn digits_back(&mut self, mut n: u64, end: usize) {
        let mut i = end;
        while n >= 100 {
            let r = (n % 100) as usize * 2;
            n /= 100;
            i -= 2;
            self.buf[i] = PAIRS[r];
            self.buf[i + 1] = PAIRS[r + 1];
        }
        if n >= 10 {
            let r = n as usize * 2;
            self.buf[i - 2] = PAIRS[r];
            self.buf[i - 1] = PAIRS[r + 1];
        } else {
            self.buf[i - 1] = b'0' + n as u8;
        }
    }

    pub fn int(&mut self, n: i64) {
        if n < 0 {
            self.byte(b'-');
        }
        self.uint(n.unsigned_abs());
    }

    /// `v` rounded (half away from zero) to `decimals` places, `scale` being 10^decimals,
    /// without trailing zeros: `45.1`, `2950`, `-0.02`, `0`. Non-finite values write nothing;
    /// values too large for exact fixed point take the scientific form.
    pub fn fixed(&mut self, v: f64, decimals: u32, scale: f64) {
        let x = v * scale;
        if !x.is_finite() || x.abs() >= 9.0e15 {
            if v.is_finite() {
                self.slice(format!("{v:e}").as_bytes());
            }
            return;
        }
        let q = (if x >= 0.0 { x + 0.5 } else { x - 0.5 }) as i64;
        if q == 0 {
            self.byte(b'0');
            return;
        }
        if q < 0 {
            self.byte(b'-');
        }
        let mut n = q.unsigned_abs();
        let d = decimals as usize;
        // Integer digits: at least one (0.05 has a 0 before the point).
        let whole = digits(n).saturating_sub(d).max(1);
        let end = self.len + whole + usize::from(d > 0) + d;
        // The fraction digit by digit (two to four of them, typically), then the point, then
        // the integer part.
        let mut i = end;
        for _ in 0..d {
            i -= 1;
            self.buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        if d > 0 {
            i -= 1;
            self.buf[i] = b'.';
        }
        self.digits_back(n, i);
        self.len = end;
        if d > 0 {
            // The point stops the trim: it is not a '0'.
            while self.buf[self.len - 1] == b'0' {
                self.len -= 1;
            }
            if self.buf[self.len - 1] == b'.' {
                self.len -= 1;
            }
        }
    }

    /// Ends a row: writes the buffer out once it is full enough.
    pub fn end_row(&mut self) -> io::Result<()> {
        if self.len >= FLUSH_AT {
            self.drain()?;
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        self.sink.write_all(&self.buf[..self.len])?;
        self.written += self.len as u64;
        self.len = 0;
        Ok(())
    }

    /// Writes out what is left and flushes; returns the bytes written in all.
    pub fn finish(mut self) -> io::Result<u64> {
        self.drain()?;
        self.sink.finish()?;
        Ok(self.written)
    }
}

/// Decimal digits of `n` (`ilog10` needs no chain of divisions).
fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// "00" to "99", for writing two digits per division.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// RFC 3339 UTC timestamps, formatting the date only when the day changes.
#[derive(Debug, Default)]
pub(super) struct Clock {
    day: Option<i64>,
    /// `YYYY-MM-DDT` of `day`.
    date: String,
}

impl Clock {
    pub fn write(&mut self, t: Timestamp, out: &mut RowWriter) {
        let day = t.div_euclid(NS_PER_DAY);
        if self.day != Some(day) {
            let s = format_ts(day * NS_PER_DAY);
            self.date = s
                .split_inclusive('T')
                .next()
                .unwrap_or_default()
                .to_string();
            self.day = Some(day);
        }
        out.slice(self.date.as_bytes());
        let in_day = t - day * NS_PER_DAY;
        let secs = in_day / NS_PER_S;
        for (i, part) in [secs / 3_600, secs / 60 % 60, secs % 60]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.byte(b':');
            }
            out.byte(b'0' + (part / 10) as u8);
            out.byte(b'0' + (part % 10) as u8);
        }
        let ns = in_day % NS_PER_S;
        if ns != 0 {
            // Milli-, micro- or nanoseconds, as `format_ts` writes them: .250, .000001.
            out.byte(b'.');
            let at = out.mark();
            out.uint(1_000_000_000 + ns as u64);
            out.buf.copy_within(at + 1..at + 10, at);
            out.len -= 1;
            while out.len > at + 3 && out.buf[out.len - 3..out.len] == *b"000" {
                out.len -= 3;
            }
        }
        out.byte(b'Z');
    }
}

/// The bytes a writer collected, for tests.
#[cfg(test)]
pub(super) fn collect(f: impl FnOnce(&mut RowWriter)) -> String {
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let shared = Shared::default();
    let mut w = RowWriter::new(Sink::Plain(Box::new(shared.clone())), 4_096);
    f(&mut w);
    w.finish().unwrap();
    let bytes = shared.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(v: f64, decimals: u32) -> String {
        collect(|w| w.fixed(v, decimals, 10f64.powi(decimals as i32)))
    }

    #[test]
    fn fixed_point_rounds_and_trims() {
        assert_eq!(fixed(45.1049, 2), "45.1");
        assert_eq!(fixed(2950.04, 1), "2950");
        assert_eq!(fixed(-0.0249, 2), "-0.02");
        assert_eq!(fixed(-0.0001, 2), "0");
        assert_eq!(fixed(0.00012, 4), "0.0001");
        assert_eq!(fixed(1.70005, 4), "1.7001");
        assert_eq!(fixed(0.05, 2), "0.05");
        assert_eq!(fixed(-7.5, 0), "-8");
        assert_eq!(fixed(123.0, 0), "123");
        assert_eq!(fixed(100.0, 3), "100");
        assert_eq!(fixed(9.99999, 4), "10");
        assert_eq!(fixed(-1234567.891, 6), "-1234567.891");
        assert_eq!(fixed(1e300, 2), "1e300");
        assert_eq!(fixed(f64::INFINITY, 2), "");
        assert_eq!(fixed(f64::NAN, 2), "");
    }

    #[test]
    fn fixed_point_matches_the_standard_formatter() {
        // Away from exact ties, rounding agrees with `format!`.
        let mut x = -1234.5678f64;
        while x < 1234.5678 {
            for d in 0..=6 {
                let s = fixed(x, d);
                let want = format!("{:.*}", d as usize, x);
                let want: f64 = want.parse().unwrap();
                let got: f64 = s.parse().unwrap();
                assert!(
                    (got - want).abs() <= 10f64.powi(-(d as i32)) * 0.5001,
                    "{x} {d}: {s}"
                );
            }
            x += 0.739_137;
        }
    }

    #[test]
    fn integers() {
        assert_eq!(
            collect(|w| {
                w.uint(0);
                w.byte(b' ');
                w.uint(u64::MAX);
                w.byte(b' ');
                w.int(-42);
                w.byte(b' ');
                w.int(i64::MIN);
            }),
            format!("0 {} -42 {}", u64::MAX, i64::MIN)
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let start = doppel_sim::RUN_START;
        let mut c = Clock::default();
        for t in [
            start,
            start + 13 * 3_600 * NS_PER_S + 5 * 60 * NS_PER_S + 9 * NS_PER_S,
            start + 86_400 * NS_PER_S - 1,
            start + 250_000_000,
            start + 1,
            start + 1_000,
            start + 120_000_000,
            -1_500_000_000,
        ] {
            assert_eq!(collect(|w| c.write(t, w)), format_ts(t));
        }
    }

    #[test]
    fn rows_survive_many_flushes_and_truncation() {
        let text = collect(|w| {
            for i in 0..200_000u64 {
                let mark = w.mark();
                w.slice(b"drop me");
                w.truncate(mark);
                w.uint(i);
                w.byte(b'\n');
                w.end_row().unwrap();
            }
        });
        let lines: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(lines, (0..200_000).collect::<Vec<_>>());
    }
}
