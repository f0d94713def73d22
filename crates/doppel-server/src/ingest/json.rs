//! The JSON reading format, shared by HTTP and MQTT:
//! `{"ts": <RFC 3339 | epoch ms>, "values": {"signal": value, ...}}` or an array of those.
//! `ts` is optional (the server's time is used). The bulk form adds `"twin"` to each reading.

use doppel_model::{parse_time, Batch, Catalog, Reading, Timestamp, ValidationErrors, Value};
use serde_json::Value as Json;

/// Most readings accepted in one document.
pub const MAX_READINGS: usize = 100_000;

/// Decodes readings for one twin (`twin` from the URL or topic). Field paths are `ts`,
/// `values.x` for a single object and `[i].ts` for an array.
pub fn decode_for_twin(body: &[u8], twin: &str, now: Timestamp) -> Result<Batch, ValidationErrors> {
    decode(body, Some(twin), now)
}

/// Decodes the bulk form where each reading names its `twin`.
pub fn decode_bulk(body: &[u8], now: Timestamp) -> Result<Batch, ValidationErrors> {
    decode(body, None, now)
}

/// Field-path prefix of reading `i` in a document that was (or was not) an array.
pub fn label(is_array: bool) -> impl Fn(usize) -> String {
    move |i| {
        if is_array {
            format!("[{i}].")
        } else {
            String::new()
        }
    }
}

/// Whether the document is a JSON array (its first non-blank byte is `[`).
pub fn is_array(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// Every problem of a refused document: the decoding errors plus what the catalog finds in
/// the readings that did decode (unknown signals, wrong kinds), so a user fixes all at once.
/// Called only after decoding failed, so the happy path validates once.
pub fn explain(
    body: &[u8],
    twin: Option<&str>,
    now: Timestamp,
    catalog: &Catalog,
) -> ValidationErrors {
    let (partial, mut errs) = decode_partial(body, twin, now);
    if let Err(more) = catalog.validate_batch(partial, label(is_array(body))) {
        for e in more.errors {
            let dup = errs.errors.iter().any(|x| x.field == e.field);
            // A reading whose values all failed to decode is reported once, not also as empty.
            let empty = e.field.ends_with("values") && e.message == "no values";
            if !dup && !empty {
                errs.errors.push(e);
            }
        }
        errs.errors
            .sort_by(|a, b| field_order(&a.field).cmp(&field_order(&b.field)));
    }
    errs
}

/// Sorts errors by reading index, then by field, so they read in document order.
fn field_order(f: &str) -> (usize, &str) {
    let idx = f
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    (idx, f)
}

fn decode(body: &[u8], twin: Option<&str>, now: Timestamp) -> Result<Batch, ValidationErrors> {
    let (batch, errs) = decode_partial(body, twin, now);
    errs.into_result().map(|()| batch)
}

/// Decodes what it can: the readings that decoded (with their good values) and the errors.
fn decode_partial(body: &[u8], twin: Option<&str>, now: Timestamp) -> (Batch, ValidationErrors) {
    let mut errs = ValidationErrors::new();
    let doc: Json = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(e) => {
            errs.push("body", format!("not valid JSON: {e}"));
            return (Batch::default(), errs);
        }
    };
    let (items, array) = match doc {
        Json::Array(items) => (items, true),
        obj @ Json::Object(_) => (vec![obj], false),
        _ => {
            errs.push("body", "expected a reading object or an array of readings");
            return (Batch::default(), errs);
        }
    };
    if items.is_empty() {
        errs.push("body", "no readings");
        return (Batch::default(), errs);
    }
    if items.len() > MAX_READINGS {
        errs.push(
            "body",
            format!(
                "{} readings; at most {MAX_READINGS} per request",
                items.len()
            ),
        );
        return (Batch::default(), errs);
    }
    let prefix = label(array);
    let mut readings = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let p = prefix(i);
        let Json::Object(mut obj) = item else {
            errs.push(p.trim_end_matches('.').to_string(), "expected an object");
            continue;
        };
        let ts = match obj.remove("ts") {
            None | Some(Json::Null) => Some(now),
            Some(Json::String(s)) => match parse_time(&s) {
                Ok(t) => Some(t),
                Err(e) => {
                    errs.push(format!("{p}ts"), e.to_string());
                    None
                }
            },
            Some(Json::Number(n)) => {
                let t = n
                    .as_i64()
                    .and_then(|ms| ms.checked_mul(1_000_000))
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.is_finite() && f.abs() < 9.2e12)
                            .map(|ms| (ms * 1e6).round() as i64)
                    });
                if t.is_none() {
                    errs.push(
                        format!("{p}ts"),
                        format!("epoch milliseconds {n} out of range"),
                    );
                }
                t
            }
            Some(_) => {
                errs.push(
                    format!("{p}ts"),
                    "expected RFC 3339 text or epoch milliseconds",
                );
                None
            }
        };
        let twin_id = match twin {
            Some(t) => {
                if obj.remove("twin").is_some_and(|v| v.as_str() != Some(t)) {
                    errs.push(
                        format!("{p}twin"),
                        format!("does not match the twin `{t}` addressed"),
                    );
                }
                Some(t.to_string())
            }
            None => match obj.remove("twin") {
                Some(Json::String(s)) => Some(s),
                Some(_) => {
                    errs.push(format!("{p}twin"), "expected a twin id");
                    None
                }
                None => {
                    errs.push(format!("{p}twin"), "missing");
                    None
                }
            },
        };
        let values = match obj.remove("values") {
            Some(Json::Object(map)) => {
                let map_was_empty = map.is_empty();
                let mut vals = Vec::with_capacity(map.len());
                for (name, v) in map {
                    match Value::from_json(&v) {
                        Ok(v) => vals.push((name, v)),
                        Err(m) => errs.push(format!("{p}values.{name}"), m),
                    }
                }
                if map_was_empty {
                    errs.push(format!("{p}values"), "no values");
                }
                vals
            }
            Some(_) => {
                errs.push(format!("{p}values"), "expected an object of signal values");
                vec![]
            }
            None => {
                errs.push(format!("{p}values"), "missing");
                vec![]
            }
        };
        for k in obj.keys() {
            errs.push(format!("{p}{k}"), "unknown field (expected ts, values)");
        }
        // A bad `ts` still lets the values be checked against the model (with a stand-in time).
        if let Some(twin) = twin_id {
            readings.push(Reading {
                twin,
                ts: ts.unwrap_or(now),
                values,
            });
        }
    }
    (Batch { readings }, errs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields(e: ValidationErrors) -> Vec<String> {
        e.errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn single_and_array() {
        let b = decode_for_twin(
            br#"{"ts": 1000, "values": {"t": 71.2, "on": true}}"#,
            "p1",
            5,
        )
        .unwrap();
        assert_eq!(b.readings[0].ts, 1_000_000_000);
        assert_eq!(b.readings[0].values.len(), 2);
        let b = decode_for_twin(
            br#"[{"ts": "1970-01-01T00:00:02Z", "values": {"t": 1}}, {"values": {"t": 2}}]"#,
            "p1",
            7,
        )
        .unwrap();
        assert_eq!(b.readings[0].ts, 2_000_000_000);
        assert_eq!(b.readings[1].ts, 7, "server time when ts is absent");
    }

    #[test]
    fn errors_name_fields() {
        let e = decode_for_twin(br#"{"ts": "noon", "values": {"t": null}, "x": 1}"#, "p", 0)
            .unwrap_err();
        assert_eq!(fields(e), ["ts", "values.t", "x"]);
        let e = decode_for_twin(
            br#"[{"values": {"t": 1}}, {"ts": true, "values": 3}]"#,
            "p",
            0,
        )
        .unwrap_err();
        assert_eq!(fields(e), ["[1].ts", "[1].values"]);
        assert_eq!(fields(decode_for_twin(b"{", "p", 0).unwrap_err()), ["body"]);
        assert_eq!(
            fields(decode_for_twin(b"[]", "p", 0).unwrap_err()),
            ["body"]
        );
        assert_eq!(
            fields(decode_bulk(br#"[{"values": {"t": 1}}]"#, 0).unwrap_err()),
            ["[0].twin"]
        );
    }

    #[test]
    fn explain_reports_decode_and_model_errors_together() {
        let mut c = Catalog::new();
        c.put_model(
            serde_json::from_value(serde_json::json!({
                "id": "m", "name": "M", "signals": [{"name": "t"}, {"name": "on", "kind": "bool"}]
            }))
            .unwrap(),
        )
        .unwrap();
        c.put_twin(serde_json::from_value(serde_json::json!({"id": "p", "model": "m"})).unwrap())
            .unwrap();
        let body = br#"{"ts": "noon", "values": {"t": "hot", "zz": 1, "on": null}}"#;
        assert!(decode_for_twin(body, "p", 0).is_err());
        let e = explain(body, Some("p"), 0, &c);
        assert_eq!(fields(e), ["ts", "values.on", "values.t", "values.zz"]);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_for_twin(&body, "p", 0);
            let _ = decode_bulk(&body, 0);
        }

        #[test]
        fn arbitrary_json_never_panics(s in r#"[\[\]{}",:0-9a-z .eE+-]{0,80}"#) {
            let _ = decode_for_twin(s.as_bytes(), "p", 0);
        }
    }
}
