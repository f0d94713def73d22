//! The JSON reading format, shared by HTTP and MQTT:
//! `{"ts": <RFC 3339 | epoch ms>, "values": {"signal": value, ...}}` or an array of those.
//! `ts` is optional (the server's time is used). The bulk form adds `"twin"` to each reading.

use std::borrow::Cow;
use std::fmt;

use doppel_model::{
    parse_time, Batch, Catalog, Reading, ReadingRef, Timestamp, ValidationErrors, Value,
};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
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

/// The fast path: a document whose every reading is well formed, read straight into
/// readings that borrow their names from the body, without building a JSON tree (a map and
/// a `String` per key). `None` means "not sure": any problem, and anything the tree path
/// would read differently (escaped names, repeated keys, an empty or oversized document),
/// sends the caller to [`decode_for_twin`] / [`decode_bulk`], which report every error.
/// When it answers, it answers what those would (a property test checks).
pub fn decode_fast<'a>(
    body: &'a [u8],
    twin: Option<&'a str>,
    now: Timestamp,
) -> Option<Vec<ReadingRef<'a>>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let readings = DocSeed { twin, now }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    (!readings.is_empty()).then_some(readings)
}

/// Any error: the fast path gives up, the tree path explains.
fn bail<E: de::Error>() -> E {
    E::custom("not on the fast path")
}

#[derive(Clone, Copy)]
struct DocSeed<'a> {
    twin: Option<&'a str>,
    now: Timestamp,
}

impl<'de> DeserializeSeed<'de> for DocSeed<'de> {
    type Value = Vec<ReadingRef<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'de> {
    type Value = Vec<ReadingRef<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reading or an array of readings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(r) = seq.next_element_seed(ReadingSeed(self))? {
            if out.len() == MAX_READINGS {
                return Err(bail());
            }
            out.push(r);
        }
        Ok(out)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(vec![read_reading(self, map)?])
    }
}

struct ReadingSeed<'a>(DocSeed<'a>);

impl<'de> DeserializeSeed<'de> for ReadingSeed<'de> {
    type Value = ReadingRef<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ReadingSeed<'de> {
    type Value = ReadingRef<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a reading object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        read_reading(self.0, map)
    }
}

fn read_reading<'de, A: MapAccess<'de>>(
    ctx: DocSeed<'de>,
    mut map: A,
) -> Result<ReadingRef<'de>, A::Error> {
    let (mut ts, mut twin, mut values) = (None, None, None);
    while let Some(key) = map.next_key::<&'de str>()? {
        match key {
            "ts" if ts.is_none() => ts = Some(map.next_value_seed(TsSeed(ctx.now))?),
            "twin" if twin.is_none() => twin = Some(map.next_value::<&'de str>()?),
            "values" if values.is_none() => values = Some(map.next_value_seed(ValuesSeed)?),
            _ => return Err(bail()),
        }
    }
    let twin = match (ctx.twin, twin) {
        (Some(addressed), Some(named)) if named != addressed => return Err(bail()),
        (Some(addressed), _) => addressed,
        (None, Some(named)) => named,
        (None, None) => return Err(bail()),
    };
    Ok(ReadingRef {
        twin: Cow::Borrowed(twin),
        ts: ts.unwrap_or(ctx.now),
        values: values.ok_or_else(bail)?,
    })
}

/// `ts`: RFC 3339 text, epoch milliseconds, or null (the server's time).
struct TsSeed(Timestamp);

impl<'de> DeserializeSeed<'de> for TsSeed {
    type Value = Timestamp;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for TsSeed {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a time")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Timestamp, E> {
        Ok(self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        parse_time(v).map_err(|_| bail())
    }

    fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Timestamp, E> {
        ms.checked_mul(1_000_000).ok_or_else(bail)
    }

    fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Timestamp, E> {
        i64::try_from(ms)
            .map_err(|_| bail())
            .and_then(|ms| self.visit_i64(ms))
    }

    fn visit_f64<E: de::Error>(self, ms: f64) -> Result<Timestamp, E> {
        if ms.is_finite() && ms.abs() < 9.2e12 {
            #[allow(clippy::cast_possible_truncation)] // |ms * 1e6| < 9.2e18 < i64::MAX
            Ok((ms * 1e6).round() as i64)
        } else {
            Err(bail())
        }
    }
}

/// `values`: a non-empty object of distinct signal names and scalar values.
struct ValuesSeed;

impl<'de> DeserializeSeed<'de> for ValuesSeed {
    type Value = Vec<(Cow<'de, str>, Value)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValuesSeed {
    type Value = Vec<(Cow<'de, str>, Value)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of signal values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out: Vec<(Cow<'de, str>, Value)> = Vec::with_capacity(16);
        while let Some(name) = map.next_key::<&'de str>()? {
            // The tree keeps the last of repeated names; the engine would refuse them.
            if out.iter().any(|(n, _)| n == name) {
                return Err(bail());
            }
            out.push((Cow::Borrowed(name), map.next_value_seed(ScalarSeed)?));
        }
        if out.is_empty() {
            return Err(bail());
        }
        Ok(out)
    }
}

/// One value, as [`Value::from_json`] reads it.
struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for ScalarSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, bool or text")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        #[allow(clippy::cast_precision_loss)] // as serde_json's `Number::as_f64`
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
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

    /// JSON text of reading documents, mostly well formed, with the cases the two paths
    /// could read differently: escaped and repeated names, big and fractional numbers, null,
    /// nested values, unknown keys, a twin that is not the addressed one.
    fn arb_doc() -> impl Strategy<Value = String> {
        let value = prop_oneof![
            4 => (-1_000_000i64..1_000_000).prop_map(|i| i.to_string()),
            4 => (-1e6f64..1e6).prop_map(|f| format!("{f}")),
            1 => Just("12345678901234567890".to_string()),
            1 => Just("-9223372036854775809".to_string()),
            1 => Just("1e400".to_string()),
            1 => Just("true".to_string()),
            1 => Just("\"on\"".to_string()),
            1 => Just("\"a\\\"b\"".to_string()),
            1 => Just("null".to_string()),
            1 => Just("[1]".to_string()),
        ];
        let name = prop_oneof![
            6 => "[a-d]".prop_map(|n| format!("\"{n}\"")),
            1 => Just("\"a\\u0062\"".to_string()),
        ];
        let values = proptest::collection::vec((name, value), 0..5).prop_map(|kv| {
            let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{{{}}}", body.join(", "))
        });
        let ts = prop_oneof![
            3 => (0i64..2_000_000_000_000).prop_map(|t| t.to_string()),
            1 => (0f64..2e12).prop_map(|t| format!("{t}")),
            2 => Just("\"2026-12-02T10:00:00.5Z\"".to_string()),
            1 => Just("\"2026-13-02T10:00:00Z\"".to_string()),
            1 => Just("null".to_string()),
            1 => Just("99999999999999999".to_string()),
            1 => Just("true".to_string()),
        ];
        let twin = prop_oneof![
            4 => Just("\"p1\"".to_string()),
            1 => Just("\"p2\"".to_string()),
            1 => Just("\"p\\u0031\"".to_string()),
            1 => Just("1".to_string()),
        ];
        let reading = (
            proptest::collection::vec(values, 1..3),
            proptest::option::of(ts),
            proptest::option::of(twin),
            proptest::bool::weighted(0.1),
            0usize..4,
        )
            .prop_map(|(values, ts, twin, extra, turn)| {
                // Mostly one `values`; sometimes a repeated one, an unknown key.
                let mut e: Vec<String> = values
                    .into_iter()
                    .take(if extra { 2 } else { 1 })
                    .map(|v| format!("\"values\": {v}"))
                    .collect();
                e.extend(ts.map(|t| format!("\"ts\": {t}")));
                e.extend(twin.map(|t| format!("\"twin\": {t}")));
                if extra && turn == 0 {
                    e.push("\"x\": 1".to_string());
                }
                let k = turn % e.len();
                e.rotate_left(k);
                format!("{{{}}}", e.join(", "))
            });
        prop_oneof![
            reading.clone(),
            proptest::collection::vec(reading, 0..4).prop_map(|r| format!("[{}]", r.join(","))),
        ]
    }

    proptest! {
        // The fast path answers for about one generated document in ten.
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Whenever the fast path reads a document, the tree path reads the same readings.
        #[test]
        fn fast_path_reads_what_the_tree_reads(
            doc in arb_doc(),
            bulk in any::<bool>(),
        ) {
            let twin = (!bulk).then_some("p1");
            if let Some(fast) = decode_fast(doc.as_bytes(), twin, 7) {
                let tree = decode(doc.as_bytes(), twin, 7);
                prop_assert!(tree.is_ok(), "{doc}: fast read it, the tree refused: {tree:?}");
                let tree = tree.unwrap();
                let sorted = |mut v: Vec<(String, Value)>| { v.sort_by(|a, b| a.0.cmp(&b.0)); v };
                let fast: Vec<_> = fast.into_iter().map(|r| {
                    let r = r.into_owned();
                    (r.twin, r.ts, sorted(r.values))
                }).collect();
                let tree: Vec<_> = tree.readings.into_iter().map(|r| (r.twin, r.ts, sorted(r.values))).collect();
                prop_assert_eq!(fast, tree, "{}", doc);
            }
        }

        /// Well-formed documents do take the fast path.
        #[test]
        fn wellformed_documents_take_the_fast_path(
            readings in proptest::collection::vec(
                (proptest::option::of(-1_000_000_000i64..1_000_000_000_000), proptest::collection::btree_map("[a-z]{1,6}", -1e6f64..1e6, 1..6)),
                1..5),
        ) {
            let items: Vec<Json> = readings.iter().map(|(ts, values)| {
                let mut o = serde_json::json!({"twin": "p1", "values": values});
                if let Some(ts) = ts { o["ts"] = serde_json::json!(ts); }
                o
            }).collect();
            let doc = serde_json::to_vec(&items).unwrap();
            let fast = decode_fast(&doc, None, 7);
            prop_assert!(fast.is_some());
            let tree = decode_bulk(&doc, 7).unwrap();
            prop_assert_eq!(fast.unwrap().len(), tree.readings.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_for_twin(&body, "p", 0);
            let _ = decode_bulk(&body, 0);
            let _ = decode_fast(&body, Some("p"), 0);
            let _ = decode_fast(&body, None, 0);
        }

        #[test]
        fn arbitrary_json_never_panics(s in r#"[\[\]{}",:0-9a-z .eE+-]{0,80}"#) {
            let _ = decode_for_twin(s.as_bytes(), "p", 0);
            let _ = decode_fast(s.as_bytes(), None, 0);
        }
    }
}
