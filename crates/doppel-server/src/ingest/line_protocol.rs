//! InfluxDB line protocol, as sent by Telegraf and every Influx client:
//! `pump_1,site=a bearing_temp=71.2,running=true 1700000000000000000`.
//! The twin is the `twin` tag when present, else the measurement; fields are signals;
//! a line without a timestamp takes the server's time. Parsing uses the
//! `influxdb-line-protocol` crate (the parser of InfluxDB 3 itself); lines in the plain
//! form that clients send (no escapes, no quoted strings, decimal numbers) take a direct
//! scan first that gives the same result without building the crate's intermediate form,
//! and anything else goes to the crate.

use std::borrow::Cow;

use doppel_model::{Precision, ReadingRef, Timestamp, ValidationErrors, Value};
use influxdb_line_protocol::{parse_lines, split_lines, FieldValue};

/// A decoded body with the 1-based line number of each reading, for error paths. Names of
/// plain lines borrow from the body.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub readings: Vec<ReadingRef<'a>>,
    pub lines: Vec<usize>,
}

impl Decoded<'_> {
    /// Field-path prefix of reading `i`: `lines[7].`.
    pub fn label(&self) -> impl Fn(usize) -> String + '_ {
        label(&self.lines)
    }
}

/// Field-path prefix of reading `i` given each reading's line number: `lines[7].`.
pub fn label(lines: &[usize]) -> impl Fn(usize) -> String + '_ {
    |i| format!("lines[{}].", lines.get(i).copied().unwrap_or(0))
}

/// Decodes a whole body; any bad line refuses the body, reporting every bad line.
pub fn decode(
    body: &str,
    precision: Precision,
    now: Timestamp,
) -> Result<Decoded<'_>, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let mut readings = Vec::new();
    let mut lines = Vec::new();
    // `split_lines` walks the body a char at a time to keep newlines inside quoted strings
    // and escapes; a body with neither quotes nor backslashes splits at every newline, and
    // memchr finds those many times faster.
    let plain = memchr::memchr2(b'"', b'\\', body.as_bytes()).is_none();
    let split: Box<dyn Iterator<Item = &str>> = if plain {
        Box::new(body.split('\n'))
    } else {
        Box::new(split_lines(body))
    };
    for (idx, raw) in split.enumerate() {
        let n = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(line) = scan_plain(trimmed) {
            let ts = match line.ts {
                None => now,
                Some(t) => match precision.to_nanos(t) {
                    Some(t) => t,
                    None => {
                        errs.push(
                            format!("lines[{n}].timestamp"),
                            format!("{t} overflows at this precision"),
                        );
                        continue;
                    }
                },
            };
            readings.push(ReadingRef {
                twin: Cow::Borrowed(line.twin),
                ts,
                values: line.fields,
            });
            lines.push(n);
            continue;
        }
        let parsed = match parse_lines(trimmed).next() {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                errs.push(format!("lines[{n}]"), e.to_string());
                continue;
            }
            None => continue,
        };
        let twin = parsed
            .series
            .tag_set
            .as_ref()
            .and_then(|tags| tags.iter().find(|(k, _)| k.as_str() == "twin"))
            .map(|(_, v)| v.as_str().to_string())
            .unwrap_or_else(|| parsed.series.measurement.as_str().to_string());
        let ts = match parsed.timestamp {
            None => now,
            Some(t) => match precision.to_nanos(t) {
                Some(t) => t,
                None => {
                    errs.push(
                        format!("lines[{n}].timestamp"),
                        format!("{t} overflows at this precision"),
                    );
                    continue;
                }
            },
        };
        let mut values = Vec::with_capacity(parsed.field_set.len());
        for (name, v) in &parsed.field_set {
            let value = match v {
                FieldValue::F64(f) => Value::Float(*f),
                FieldValue::I64(i) => Value::Int(*i),
                FieldValue::U64(u) => match i64::try_from(*u) {
                    Ok(i) => Value::Int(i),
                    Err(_) => {
                        errs.push(
                            format!("lines[{n}].values.{}", name.as_str()),
                            "unsigned value too large",
                        );
                        continue;
                    }
                },
                FieldValue::Boolean(b) => Value::Bool(*b),
                FieldValue::String(s) => Value::String(s.as_str().to_string()),
            };
            values.push((Cow::Owned(name.as_str().to_string()), value));
        }
        readings.push(ReadingRef {
            twin: Cow::Owned(twin),
            ts,
            values,
        });
        lines.push(n);
    }
    if readings.is_empty() && errs.is_empty() {
        errs.push("body", "no lines");
    }
    errs.into_result().map(|()| Decoded { readings, lines })
}

/// One line as the direct scan reads it.
#[derive(Debug, PartialEq)]
struct PlainLine<'a> {
    twin: &'a str,
    ts: Option<i64>,
    fields: Vec<(Cow<'a, str>, Value)>,
}

/// Reads a line of the plain form `measurement[,tag=value...] field=value[,...] [timestamp]`
/// whose names need no escapes and whose values are decimal floats, `i` integers or bools.
/// `None` means "not plain": the caller hands the line to the full parser, which also
/// reports any error, so this never decides that a line is bad.
///
/// Works on bytes in one pass over the fields: every separator is ASCII, so each cut is at
/// a char boundary, and a decimal float is read as it is scanned (see [`fast_decimal`]);
/// splitting first and parsing the pieces after visited each byte of a value about six
/// times, which on pieces of a few bytes was most of the work.
fn scan_plain(line: &str) -> Option<PlainLine<'_>> {
    let b = line.as_bytes();
    let first = b.iter().position(|&c| c == b' ')?;
    let series = &line[..first];
    if series.bytes().any(special) {
        return None;
    }
    let mut pieces = Pieces::new(series, b',');
    let measurement = pieces
        .next()
        .filter(|m| !m.is_empty() && !m.as_bytes().contains(&b'='))?;
    let mut twin = None;
    for tag in pieces {
        let (k, v) = plain_pair(tag)?;
        if k == "twin" && twin.is_none() {
            twin = Some(v);
        }
    }
    let mut fields = Vec::with_capacity(8);
    let mut i = first + 1;
    loop {
        let key_start = i;
        while let Some(&c) = b.get(i) {
            match c {
                b'=' => break,
                b',' | b' ' => return None,
                c if special(c) => return None,
                _ => i += 1,
            }
        }
        if i == key_start || i >= b.len() {
            return None;
        }
        let key = &line[key_start..i];
        i += 1;
        let (value, end) = match fast_decimal(b, i) {
            Some(found) => found,
            None => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b',' || c == b' ')
                    .map_or(b.len(), |n| i + n);
                (plain_value(line.get(i..end)?)?, end)
            }
        };
        fields.push((Cow::Borrowed(key), value));
        match b.get(end) {
            None => {
                return Some(PlainLine {
                    twin: twin.unwrap_or(measurement),
                    ts: None,
                    fields,
                })
            }
            Some(b',') => i = end + 1,
            Some(_) => {
                // A space: the timestamp, which must be the rest of the line.
                let ts = plain_int(line.get(end + 1..)?)?;
                return Some(PlainLine {
                    twin: twin.unwrap_or(measurement),
                    ts: Some(ts),
                    fields,
                });
            }
        }
    }
}

/// Bytes that make a line not plain anywhere in it.
fn special(c: u8) -> bool {
    matches!(c, b'\\' | b'"' | b'\t' | b'\n' | b'\r' | 0)
}

/// The common case of [`plain_value`], read while scanning: `-?[0-9]+(.[0-9]+)?` of at most
/// 15 digits, ended by `,`, a space or the end of the line. Returns the value and where it
/// ended; `None` (anything else: integers, exponents, bools, long mantissas) leaves the
/// value to `plain_value`, which reads every such form the same way.
fn fast_decimal(b: &[u8], mut i: usize) -> Option<(Value, usize)> {
    let neg = b.get(i) == Some(&b'-');
    if neg {
        i += 1;
    }
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    loop {
        match b.get(i) {
            Some(&c) if c.is_ascii_digit() => {
                if digits == 15 {
                    return None;
                }
                m = m * 10 + u64::from(c - b'0');
                digits += 1;
                if dot {
                    frac += 1;
                }
            }
            Some(b'.') if !dot && digits > 0 => dot = true,
            Some(b',' | b' ') | None => break,
            Some(_) => return None,
        }
        i += 1;
    }
    if digits == 0 || (dot && frac == 0) {
        return None;
    }
    // Clinger's fast path, as in `plain_value`: m < 10^15 < 2^53 is exact, and one
    // division by an exact power of ten is correctly rounded.
    #[allow(clippy::cast_precision_loss)]
    let x = m as f64 / POW10[frac];
    Some((Value::Float(if neg { -x } else { x }), i))
}

/// `s.split(sep)` for an ASCII separator, a byte at a time.
struct Pieces<'a> {
    s: &'a str,
    at: usize,
    sep: u8,
    done: bool,
}

impl<'a> Pieces<'a> {
    fn new(s: &'a str, sep: u8) -> Self {
        Self {
            s,
            at: 0,
            sep,
            done: false,
        }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let rest = self.s.as_bytes().get(self.at..)?;
        match rest.iter().position(|&b| b == self.sep) {
            Some(len) => {
                let piece = self.s.get(self.at..self.at + len);
                self.at += len + 1;
                piece
            }
            None => {
                self.done = true;
                self.s.get(self.at..)
            }
        }
    }
}

/// `key=value` with both sides non-empty and no other `=`.
fn plain_pair(s: &str) -> Option<(&str, &str)> {
    let at = s.as_bytes().iter().position(|&b| b == b'=')?;
    let (k, v) = (s.get(..at)?, s.get(at + 1..)?);
    (!k.is_empty() && !v.is_empty() && !v.as_bytes().contains(&b'=')).then_some((k, v))
}

fn digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// `-?[0-9]+` as an i64; `None` for anything else, including overflow.
fn plain_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, mag) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if !digits(mag) {
        return None;
    }
    if mag.len() < 19 {
        // Fewer than 19 digits cannot overflow an i64.
        let m = mag
            .iter()
            .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
        return Some(if neg { -m } else { m });
    }
    s.parse().ok()
}

/// Exact powers of ten an f64 holds.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A field value in one of the plain forms: `-?[0-9]+i`, `-?[0-9]+(.[0-9]+)?([eE][-+]?[0-9]+)?`
/// or one of the ten spellings of a bool.
fn plain_value(v: &str) -> Option<Value> {
    let b = v.as_bytes();
    let lead = *b.first()?;
    if !(lead == b'-' || lead.is_ascii_digit()) {
        return match v {
            "t" | "T" | "true" | "True" | "TRUE" => Some(Value::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => Some(Value::Bool(false)),
            _ => None,
        };
    }
    if let Some(i) = v.strip_suffix('i') {
        return plain_int(i).map(Value::Int);
    }
    let neg = lead == b'-';
    let unsigned = if neg { &b[1..] } else { b };
    let (mantissa, exponent) = match unsigned.iter().position(|&c| c == b'e' || c == b'E') {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.iter().position(|&c| c == b'.') {
        Some(at) => {
            let frac = &mantissa[at + 1..];
            if !digits(frac) {
                return None;
            }
            (&mantissa[..at], frac)
        }
        None => (mantissa, &mantissa[..0]),
    };
    if !digits(int) {
        return None;
    }
    match exponent {
        Some(e) => {
            let e = match e.split_first() {
                Some((b'-' | b'+', rest)) => rest,
                _ => e,
            };
            if !digits(e) {
                return None;
            }
        }
        None => {
            // Clinger's fast path: an integer mantissa below 2^53 divided by an exact power
            // of ten is one correctly rounded IEEE division, the value `parse` returns.
            let n = int.len() + frac.len();
            if n <= 15 && frac.len() < POW10.len() {
                let m = int
                    .iter()
                    .chain(frac)
                    .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
                #[allow(clippy::cast_precision_loss)] // m < 10^15 < 2^53: exact
                let x = m as f64 / POW10[frac.len()];
                return Some(Value::Float(if neg { -x } else { x }));
            }
        }
    }
    v.parse().ok().map(Value::Float)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn measurement_or_twin_tag_names_the_twin() {
        let body = "pump_1 temp=71.2,on=true,cycles=3i,state=\"ok\" 1000\n\
                    # comment\n\
                    \n\
                    sensors,twin=pump_2 temp=1 2000\n\
                    motor temp=5\n";
        let d = decode(body, Precision::Milliseconds, 42).unwrap();
        let r = &d.readings;
        assert_eq!(r.len(), 3);
        assert_eq!((&*r[0].twin, r[0].ts), ("pump_1", 1_000_000_000));
        // A quoted string makes line 1 go to the full parser (owned names); line 5 is plain.
        assert!(matches!(r[0].twin, Cow::Owned(_)));
        assert!(
            matches!(r[2].twin, Cow::Borrowed(_)),
            "plain lines borrow their names"
        );
        assert_eq!(r[0].values[2].1, Value::Int(3));
        assert_eq!(r[0].values[3].1, Value::String("ok".into()));
        assert_eq!((&*r[1].twin, r[1].ts), ("pump_2", 2_000_000_000));
        assert_eq!(r[2].ts, 42);
        assert_eq!(d.lines, [1, 4, 5]);
        assert_eq!(d.label()(1), "lines[4].");
    }

    #[test]
    fn bad_lines_are_all_reported() {
        let e = decode("ok x=1 1\nbad line\nalso=bad\n", Precision::Nanoseconds, 0).unwrap_err();
        let f: Vec<_> = e.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(f, ["lines[2]", "lines[3]"]);
        let e = decode("p x=1 9223372036854775807", Precision::Seconds, 0).unwrap_err();
        assert_eq!(e.errors[0].field, "lines[1].timestamp");
        assert!(decode("", Precision::Nanoseconds, 0).is_err());
    }

    type Owned = (String, Option<i64>, Vec<(String, Value)>);

    fn owned(p: PlainLine<'_>) -> Owned {
        let fields = p.fields.into_iter().map(|(k, v)| (k.to_string(), v));
        (p.twin.to_string(), p.ts, fields.collect())
    }

    /// The full parser's reading of one line, in the direct scan's terms.
    fn full_parse(line: &str) -> Option<Owned> {
        let p = parse_lines(line).next()?.ok()?;
        let twin = p
            .series
            .tag_set
            .as_ref()
            .and_then(|tags| tags.iter().find(|(k, _)| k.as_str() == "twin"))
            .map(|(_, v)| v.as_str().to_string())
            .unwrap_or_else(|| p.series.measurement.as_str().to_string());
        let mut fields = Vec::new();
        for (k, v) in &p.field_set {
            let v = match v {
                FieldValue::F64(f) => Value::Float(*f),
                FieldValue::I64(i) => Value::Int(*i),
                FieldValue::Boolean(b) => Value::Bool(*b),
                _ => return None,
            };
            fields.push((k.as_str().to_string(), v));
        }
        Some((twin, p.timestamp, fields))
    }

    #[test]
    fn plain_lines_scan_like_the_full_parser() {
        for line in [
            "pump_1 temp=71.2,on=true,cycles=3i 1000",
            "sensors,site=a,twin=pump_2 temp=-1e3,x=2.5E-2,y=-0 -5",
            "m,twin=a,twin=b x=1",
            "m x=T,y=False,z=12345678901234567890",
        ] {
            let fast = scan_plain(line).map(owned);
            assert!(fast.is_some(), "{line}");
            assert_eq!(fast, full_parse(line), "{line}");
        }
        for line in [
            "m x=\"s\"",
            "m x=1u",
            "m x=1.",
            "m x=.5",
            "m x=1e",
            "m  x=1",
            "m x=1 1 2",
            "m,t x=1",
            "m x=99999999999999999999i",
            "m x=1 99999999999999999999",
            "m\\ x=1",
            "m,a=b=c x=1",
        ] {
            assert_eq!(scan_plain(line), None, "{line}");
        }
    }

    proptest! {
        /// Whenever the direct scan reads a line, the full parser reads it the same way.
        #[test]
        fn scan_agrees_with_the_full_parser(s in r#"[a-c]{1,2}(,[a-c]{0,2}=[a-c0-9=]{0,2}){0,2} ([a-c,]{0,2}=[-+0-9.eEtTfFrueals ui]{0,6}){1,3}( -?[0-9]{1,3})?"#) {
            if let Some(fast) = scan_plain(&s) {
                prop_assert_eq!(Some(owned(fast)), full_parse(&s));
            }
        }

        /// The same on lines that are mostly well formed, so most take the direct scan.
        #[test]
        fn scan_agrees_on_wellformed_lines(s in r#"[a-c]{1,2}(,[a-c]{1,2}=[a-c0-9]{1,2}){0,2} [a-c]{1,2}=(-?[0-9]{1,3}(\.[0-9]{1,2})?([eE][-+]?[0-9]{1,2})?i?|t|F|true|False)(,[a-c]{1,2}=(-?[0-9]{1,3}(\.[0-9]{1,2})?|T|f)){0,2}( -?[0-9]{1,3})?"#) {
            let fast = scan_plain(&s);
            // Only an `i` after a float or exponent makes such a line not plain.
            prop_assert!(fast.is_some() || s.contains('i'), "{}", s);
            if let Some(fast) = fast {
                prop_assert_eq!(Some(owned(fast)), full_parse(&s));
            }
        }

        /// The fast decimal path gives the bits `str::parse` gives, short and long mantissas.
        #[test]
        fn decimal_floats_read_exactly_as_parse(int in "-?[0-9]{1,12}", frac in "[0-9]{0,14}", x in -1e9f64..1e9, places in 0usize..10) {
            for v in [if frac.is_empty() { int.clone() } else { format!("{int}.{frac}") }, format!("{x:.places$}")] {
                let want: f64 = v.parse().unwrap();
                match plain_value(&v) {
                    Some(Value::Float(got)) => prop_assert_eq!(got.to_bits(), want.to_bits(), "{}", v),
                    other => prop_assert!(false, "{v} read as {other:?}"),
                }
            }
        }

        /// The scan's own decimal reader gives the same value as `plain_value` (and so as
        /// `parse`) where it answers, and declines the rest; the value always ends at the
        /// same place.
        #[test]
        fn fast_decimals_read_as_plain_value(
            v in prop_oneof!["-?[0-9]{1,17}([.][0-9]{0,17})?", "[-0-9.eEi]{0,20}"],
            end in "(,|  ?[0-9]{0,3}|)",
        ) {
            let line = format!("{v}{end}");
            if let Some((got, at)) = fast_decimal(line.as_bytes(), 0) {
                prop_assert_eq!(at, v.len(), "{}", line);
                let want = plain_value(&v);
                prop_assert!(matches!((&got, &want), (Value::Float(g), Some(Value::Float(w))) if g.to_bits() == w.to_bits()), "{} read as {:?}, plain_value {:?}", line, got, want);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,120}") {
            let _ = decode(&s, Precision::Nanoseconds, 0);
        }

        /// Without quotes or backslashes, lines end at every newline, as `split_lines` says.
        #[test]
        fn plain_bodies_split_at_every_newline(s in r#"[a-z,= 0-9.#\n\r-]{0,160}"#) {
            let ours: Vec<&str> = s.split('\n').collect();
            let theirs: Vec<&str> = split_lines(&s).collect();
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn lineish_text_never_panics(s in r#"[a-z,= "\\0-9.tfi#\n-]{0,120}"#) {
            let _ = decode(&s, Precision::Milliseconds, 0);
        }
    }
}
