//! InfluxDB line protocol, as sent by Telegraf and every Influx client:
//! `pump_1,site=a bearing_temp=71.2,running=true 1700000000000000000`.
//! The twin is the `twin` tag when present, else the measurement; fields are signals;
//! a line without a timestamp takes the server's time. Parsing uses the
//! `influxdb-line-protocol` crate (the parser of InfluxDB 3 itself).

use doppel_model::{Batch, Precision, Reading, Timestamp, ValidationErrors, Value};
use influxdb_line_protocol::{parse_lines, split_lines, FieldValue};

/// A decoded body with the 1-based line number of each reading, for error paths.
#[derive(Debug)]
pub struct Decoded {
    pub batch: Batch,
    pub lines: Vec<usize>,
}

impl Decoded {
    /// Field-path prefix of reading `i`: `lines[7].`.
    pub fn label(&self) -> impl Fn(usize) -> String + '_ {
        |i| format!("lines[{}].", self.lines.get(i).copied().unwrap_or(0))
    }
}

/// Decodes a whole body; any bad line refuses the body, reporting every bad line.
pub fn decode(
    body: &str,
    precision: Precision,
    now: Timestamp,
) -> Result<Decoded, ValidationErrors> {
    let mut errs = ValidationErrors::new();
    let mut readings = Vec::new();
    let mut lines = Vec::new();
    for (idx, raw) in split_lines(body).enumerate() {
        let n = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
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
            values.push((name.as_str().to_string(), value));
        }
        readings.push(Reading { twin, ts, values });
        lines.push(n);
    }
    if readings.is_empty() && errs.is_empty() {
        errs.push("body", "no lines");
    }
    errs.into_result().map(|()| Decoded {
        batch: Batch { readings },
        lines,
    })
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
        let r = &d.batch.readings;
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].twin.as_str(), r[0].ts), ("pump_1", 1_000_000_000));
        assert_eq!(r[0].values[2].1, Value::Int(3));
        assert_eq!(r[0].values[3].1, Value::String("ok".into()));
        assert_eq!((r[1].twin.as_str(), r[1].ts), ("pump_2", 2_000_000_000));
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

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,120}") {
            let _ = decode(&s, Precision::Nanoseconds, 0);
        }

        #[test]
        fn lineish_text_never_panics(s in r#"[a-z,= "\\0-9.tfi#\n-]{0,120}"#) {
            let _ = decode(&s, Precision::Milliseconds, 0);
        }
    }
}
