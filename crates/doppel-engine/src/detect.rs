//! Anomaly detection inside a shard: one [`TwinDetector`] per twin, fed every reading the
//! shard applies, in time order. Plain data, no IO: the shard decides what to do with the
//! scores (store them as the derived series [`SCORE_SIGNAL`], hand alarm edges to the alarm
//! service), and the engine persists the detectors' state so a restart does not forget what
//! each twin learned.
//!
//! Next to the detector, a twin whose model has a failure-mode catalogue keeps its
//! maintenance-advice state ([`TwinAdvice`]): hourly buckets of its recent history, the
//! detector's explanation since the last evaluation, and its [`AdviceTracker`]. Each scored
//! reading feeds them (cheap); advice is evaluated only every [`Detectors::advice_every`] of
//! reading time, once the detector has learned, exactly as `doppel eval advice` does.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use doppel_analytics::{
    AdviceConfig, AdviceEvent, AdviceInput, AdviceTracker, DetectorConfig, DetectorState,
    ExplanationWindow, PastCase, Score, SignalContribution, SignalSpec, TwinDetector, TwinHistory,
};
use doppel_model::{format_ts, Catalog, Timestamp, ValidatedReading, Value};
use serde::{Deserialize, Serialize};

use crate::EngineError;

/// Name of the derived series holding each twin's anomaly score (0..1, 0.5 = threshold).
/// Signal names cannot start with `.`, so it never collides with a model's signal.
pub const SCORE_SIGNAL: &str = ".anomaly_score";

/// A twin's detector with what the shard remembers around it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TwinAnalytics {
    pub det: TwinDetector,
    /// Time of the last reading scored; older readings are not scored (history only).
    pub last_ts: Timestamp,
    /// The last score, shown with the twin's state (kept across restarts).
    #[serde(default)]
    pub last: Option<Score>,
    /// Maintenance-advice state; absent while the twin's model has no failure modes (and in
    /// detector state saved before advice existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<Box<TwinAdvice>>,
}

/// Width of a history bucket for forecasts: one hour.
const ADVICE_BUCKET_NS: i64 = 3_600 * 1_000_000_000;

/// A twin's maintenance-advice state, fed by its shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TwinAdvice {
    /// Hourly buckets of the numeric signals (as many as the forecasts fit on: 14 days).
    pub history: TwinHistory,
    /// The detector's strongest contributions since the last evaluation. Not saved: its
    /// map is keyed by (signal, kind) pairs, which JSON cannot key an object by, and it
    /// holds at most one evaluation interval (a restart starts a fresh one).
    #[serde(skip)]
    pub window: ExplanationWindow,
    pub tracker: AdviceTracker,
    /// Reading time of the next evaluation (`Timestamp::MIN`: not set yet).
    pub next_eval: Timestamp,
}

impl TwinAdvice {
    fn new(config: &AdviceConfig) -> Self {
        TwinAdvice {
            history: TwinHistory::new(ADVICE_BUCKET_NS, config.forecast.max_points.max(1)),
            window: ExplanationWindow::default(),
            tracker: AdviceTracker::new(config.clone()),
            next_eval: Timestamp::MIN,
        }
    }
}

/// Health of a twin as its detector sees it, shown with the twin's state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TwinHealth {
    /// Latest anomaly score (0..1; 0.5 is the threshold).
    pub score: f64,
    /// True while the detector considers the twin anomalous.
    pub anomalous: bool,
    /// True while the detector is still learning what normal looks like.
    pub learning: bool,
    /// Feedback-adapted sensitivity factor (1 at start; above 1 after false alarms).
    pub sensitivity: f64,
    /// RFC 3339 time of the latest scored reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scored_at: Option<String>,
    /// The signals contributing to the latest score, highest first.
    #[schema(value_type = Vec<Object>)]
    pub contributions: Vec<SignalContribution>,
}

impl TwinAnalytics {
    pub fn health(&self) -> TwinHealth {
        TwinHealth {
            score: self.last.as_ref().map_or(0.0, |s| s.total),
            anomalous: self.det.in_alarm(),
            learning: self.det.is_warming_up(),
            sensitivity: self.det.sensitivity(),
            scored_at: self.last.as_ref().map(|s| format_ts(s.ts)),
            contributions: self
                .last
                .as_ref()
                .map(|s| s.per_signal.iter().take(5).cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// The reading's numeric values as `(signal, value)`. Names borrowed, not cloned: the
/// interned `Arc`s are shared by every thread, and touching their counts for every value
/// would make cores fight over them. Built in `buf`'s allocation (see [`recycle`]).
fn numeric_values<'r>(r: &'r ValidatedReading, buf: Vec<(&str, f64)>) -> Vec<(&'r str, f64)> {
    let mut out = recycle(buf);
    out.extend(r.values.iter().filter_map(|(name, v)| match v {
        Value::Float(x) => Some((&**name, *x)),
        Value::Int(i) => Some((&**name, *i as f64)),
        Value::Bool(_) | Value::String(_) => None,
    }));
    out
}

/// `v` emptied, under another lifetime, keeping its allocation: a collect into a vector of
/// the same layout reuses the source's buffer. Scoring a reading used to allocate its list
/// of values twice.
fn recycle<'b>(mut v: Vec<(&str, f64)>) -> Vec<(&'b str, f64)> {
    v.clear();
    v.into_iter().map(|(_, x)| ("", x)).collect()
}

/// The shared copy of the signal specs `specs` in `seen`.
fn intern(
    seen: &mut std::collections::HashSet<Arc<[SignalSpec]>>,
    specs: &Arc<[SignalSpec]>,
) -> Arc<[SignalSpec]> {
    if let Some(s) = seen.get(specs) {
        return Arc::clone(s);
    }
    seen.insert(Arc::clone(specs));
    Arc::clone(specs)
}

/// Every detector of one shard.
#[derive(Debug, Default)]
pub(crate) struct Detectors {
    /// Shared by every detector of the shard that was created with it (or saved with an
    /// equal one).
    pub config: Arc<DetectorConfig>,
    /// One copy of each model's signal specs (names, ranges, roles) for all the shard's
    /// detectors.
    specs: std::collections::HashSet<Arc<[SignalSpec]>>,
    pub twins: HashMap<Arc<str>, TwinAnalytics>,
    /// Settings of every twin's advice tracker.
    pub advice: AdviceConfig,
    /// Reading time between two advice evaluations of a twin, in nanoseconds.
    pub advice_every: i64,
    /// The twins' remaining-life estimates, posted by the engine's RUL part.
    pub rul: Option<crate::rul::RulBoard>,
    /// An empty list kept for its allocation (see [`numeric_values`]).
    values_buf: Vec<(&'static str, f64)>,
}

impl Detectors {
    pub fn new(config: DetectorConfig, mut twins: HashMap<Arc<str>, TwinAnalytics>) -> Self {
        let config = Arc::new(config);
        let mut specs = std::collections::HashSet::new();
        for ta in twins.values_mut() {
            ta.det.share_config(&config);
            ta.det.share_signals(|s| intern(&mut specs, s));
        }
        Detectors {
            config,
            specs,
            twins,
            advice: AdviceConfig::default(),
            advice_every: 600 * 1_000_000_000,
            rul: None,
            values_buf: Vec::new(),
        }
    }

    /// Reads remaining-life estimates from `board` at each advice evaluation.
    pub fn with_rul(mut self, board: crate::rul::RulBoard) -> Self {
        self.rul = Some(board);
        self
    }

    /// Sets how twins are advised.
    pub fn with_advice(mut self, advice: AdviceConfig, every: std::time::Duration) -> Self {
        self.advice = advice;
        self.advice_every = i64::try_from(every.as_nanos()).unwrap_or(i64::MAX).max(1);
        self
    }

    /// Feeds the reading just scored by [`observe`](Self::observe) (and its score, the
    /// twin's last) to the twin's advice state and, when an evaluation is due, evaluates its
    /// advice. `past_cases` is asked for the model's labelled cases only then. Returns the
    /// tracker's changes (usually none).
    pub fn advise(
        &mut self,
        catalog: &Catalog,
        r: &ValidatedReading,
        past_cases: impl FnOnce(&str) -> Vec<PastCase>,
    ) -> Vec<AdviceEvent> {
        let Some(model) = catalog.model(&r.model) else {
            return Vec::new();
        };
        if model.failure_modes.is_empty() {
            return Vec::new();
        }
        let Some(ta) = self.twins.get_mut(&r.twin) else {
            return Vec::new();
        };
        let TwinAnalytics {
            det, last, advice, ..
        } = ta;
        let Some(score) = last.as_ref().filter(|s| s.ts == r.ts) else {
            return Vec::new();
        };
        let adv = advice.get_or_insert_with(|| Box::new(TwinAdvice::new(&self.advice)));
        let values = numeric_values(r, std::mem::take(&mut self.values_buf));
        adv.history.observe(r.ts, &values);
        self.values_buf = recycle(values);
        adv.window.add(score);
        if adv.next_eval == Timestamp::MIN {
            adv.next_eval = r.ts.saturating_add(self.advice_every);
        }
        if r.ts < adv.next_eval {
            return Vec::new();
        }
        adv.next_eval = r.ts.saturating_add(self.advice_every);
        if det.is_warming_up() {
            // What the detector says while it learns is kept for the first evaluation.
            return Vec::new();
        }
        let (contributions, in_alarm) = adv.window.take();
        let cases = past_cases(&model.id);
        let input = AdviceInput {
            now: r.ts,
            model,
            contributions: &contributions,
            in_alarm,
            history: &adv.history,
            rul: self
                .rul
                .as_ref()
                .and_then(|b| crate::rul::board_life(b, &r.twin, r.ts)),
            past_cases: &cases,
        };
        adv.tracker.evaluate(&input).events
    }

    /// Maintenance was done on the twin: its tracker holds `failure_mode` off (from the
    /// twin's latest reading time, the clock its tracker runs on).
    pub fn dismiss_advice(&mut self, twin: &str, failure_mode: &str) -> bool {
        let Some(ta) = self.twins.get_mut(twin) else {
            return false;
        };
        let now = ta.last_ts;
        ta.advice
            .as_mut()
            .is_some_and(|a| a.tracker.dismiss(failure_mode, now))
    }

    /// Scores one reading. Returns the detector's decision before it and the score (kept as
    /// the twin's last; the caller clones it only if it needs to keep it), or `None` when
    /// nothing was scored (no numeric value, or a reading older than the last one scored:
    /// detectors learn in time order only).
    pub fn observe(&mut self, catalog: &Catalog, r: &ValidatedReading) -> Option<(bool, &Score)> {
        if !r
            .values
            .iter()
            .any(|(_, v)| matches!(v, Value::Float(_) | Value::Int(_)))
        {
            return None;
        }
        if !self.twins.contains_key(&r.twin) {
            let mut det = match catalog.model(&r.model) {
                Some(m) => TwinDetector::for_model(m, Arc::clone(&self.config)),
                None => TwinDetector::new(Arc::clone(&self.config)),
            };
            det.share_signals(|s| intern(&mut self.specs, s));
            self.twins.insert(
                r.twin.clone(),
                TwinAnalytics {
                    det,
                    last_ts: Timestamp::MIN,
                    last: None,
                    advice: None,
                },
            );
        }
        let ta = self.twins.get_mut(&r.twin)?;
        if r.ts < ta.last_ts {
            return None;
        }
        ta.last_ts = r.ts;
        let was = ta.det.in_alarm();
        let values = numeric_values(r, std::mem::take(&mut self.values_buf));
        let score = ta.det.observe(r.ts, &values);
        self.values_buf = recycle(values);
        Some((was, &*ta.last.insert(score)))
    }
}

/// Detector state on disk: `analytics/detectors-{shard}.bin`, the shard's twins (twin →
/// detector, last score and advice state), replaced atomically by each shard.
pub(crate) fn state_path(dir: &Path, shard: usize) -> PathBuf {
    dir.join("analytics").join(format!("detectors-{shard}.bin"))
}

/// First bytes of a binary detector snapshot, then its format version (u32 LE), the number
/// of twin records (u64 LE) and the CRC32 of those 20 bytes (u32 LE). Then blocks, each its
/// length (u32 LE), the CRC32 of its payload (u32 LE) and the payload as postcard: first the
/// [`Tables`] (the detector configurations and signal-spec lists the twins share, each once),
/// then one record per twin, which names its configuration and specs by their place in the
/// tables. A damaged record costs its twin only, unless its length is damaged too: then the
/// rest of the file is lost (those twins learn again); damaged tables lose the file.
///
/// Version 1 held each twin's configuration and specs in its record; such a file is refused
/// (logged) and its twins learn again.
const MAGIC: &[u8; 8] = b"doppelDS";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 24;
/// No record is near this big (a 1,000-signal twin with 14 days of advice history is a few
/// MB); a larger length is damage.
const MAX_RECORD: usize = 256 << 20;

/// What the twins of a snapshot share, each once: detector configurations and lists of
/// signal specs.
#[derive(Serialize, Deserialize)]
struct Tables {
    configs: Vec<DetectorConfig>,
    specs: Vec<Vec<SignalSpec>>,
}

/// One twin in the binary snapshot. The same fields as [`TwinAnalytics`] but without the
/// optional-field shortcuts of its JSON form, which a format that does not name its fields
/// cannot follow; the detector's configuration and specs by their place in the [`Tables`].
#[derive(Serialize)]
struct RecordRef<'a> {
    twin: &'a str,
    config: u32,
    specs: u32,
    #[serde(serialize_with = "detector_state")]
    det: &'a TwinDetector,
    last_ts: Timestamp,
    last: &'a Option<Score>,
    advice: Option<AdviceRecordRef<'a>>,
}

fn detector_state<S: serde::Serializer>(det: &&TwinDetector, s: S) -> Result<S::Ok, S::Error> {
    det.serialize_state(s)
}

#[derive(Deserialize)]
struct Record {
    twin: Arc<str>,
    config: u32,
    specs: u32,
    det: DetectorState,
    last_ts: Timestamp,
    last: Option<Score>,
    advice: Option<AdviceRecord>,
}

/// The place of the value `a` points to in `table`, adding it on first sight (by pointer:
/// twins share their `Arc`s, so a shard's table has an entry per model, not per twin).
fn place<T: ?Sized>(
    table: &mut HashMap<usize, u32>,
    a: &Arc<T>,
    add: impl FnOnce(&T),
) -> Result<u32, String> {
    let key = Arc::as_ptr(a).cast::<()>() as usize;
    if let Some(&i) = table.get(&key) {
        return Ok(i);
    }
    let i = u32::try_from(table.len()).map_err(|_| "too many shared tables".to_string())?;
    table.insert(key, i);
    add(a);
    Ok(i)
}

/// The place [`place`] gave the value `a` points to.
fn placed<T: ?Sized>(table: &HashMap<usize, u32>, a: &Arc<T>) -> Result<u32, String> {
    let key = Arc::as_ptr(a).cast::<()>() as usize;
    table
        .get(&key)
        .copied()
        .ok_or_else(|| "not in the shared tables".to_string())
}

/// Appends one block (length, CRC32, payload) holding `value` as postcard.
fn push_block<T: Serialize>(out: Vec<u8>, value: &T) -> Result<Vec<u8>, String> {
    let start = out.len();
    let mut out = out;
    out.extend_from_slice(&[0; 8]);
    out = postcard::to_extend(value, out).map_err(|e| e.to_string())?;
    let len = out.len() - start - 8;
    if len > MAX_RECORD {
        return Err(format!("a block of {len} bytes"));
    }
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A twin's advice state. Its tracker holds published advice, whose JSON form (tagged and
/// optional fields) is the API's; it goes in as that JSON: small, and only for twins with
/// failure modes.
#[derive(Serialize)]
struct AdviceRecordRef<'a> {
    history: &'a TwinHistory,
    next_eval: Timestamp,
    tracker_json: Vec<u8>,
}

#[derive(Deserialize)]
struct AdviceRecord {
    history: TwinHistory,
    next_eval: Timestamp,
    tracker_json: Vec<u8>,
}

/// About how many bytes of a snapshot a save hands to the file at a time.
pub(crate) const PIECE_BYTES: usize = 1 << 20;

/// A shard's twins encoded as a binary snapshot piece by piece: the header and the shared
/// tables (found by a first pass over the twins), then the twins' records, so that a save
/// holds about [`PIECE_BYTES`] of it at a time rather than all of it (mid warm-up a twin's
/// record is its warm-up readings, ~15 KB for 10 signals).
pub(crate) struct Encoder<'p, I> {
    twins: I,
    configs: HashMap<usize, u32>,
    specs: HashMap<usize, u32>,
    /// The header and the tables block, until the first piece takes them.
    head: Vec<u8>,
    path: &'p Path,
}

fn encode_failed(path: &Path, e: String) -> EngineError {
    EngineError::Persist {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

impl<'a, 'p, I> Encoder<'p, I>
where
    I: ExactSizeIterator<Item = (&'a Arc<str>, &'a TwinAnalytics)> + Clone,
{
    pub(crate) fn new(twins: I, path: &'p Path) -> Result<Self, EngineError> {
        let fail = |e: String| encode_failed(path, e);
        let mut tables = Tables {
            configs: Vec::new(),
            specs: Vec::new(),
        };
        let (mut configs, mut specs) = (HashMap::new(), HashMap::new());
        for (_, ta) in twins.clone() {
            place(&mut configs, ta.det.shared_config(), |c| {
                tables.configs.push(c.clone())
            })
            .map_err(fail)?;
            place(&mut specs, ta.det.signals(), |s| {
                tables.specs.push(s.to_vec())
            })
            .map_err(fail)?;
        }
        let mut head = Vec::with_capacity(HEADER_LEN + 1024);
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&(twins.len() as u64).to_le_bytes());
        let crc = crc32fast::hash(&head);
        head.extend_from_slice(&crc.to_le_bytes());
        let head = push_block(head, &tables).map_err(fail)?;
        Ok(Encoder {
            twins,
            configs,
            specs,
            head,
            path,
        })
    }

    /// The next piece: at least `min` bytes unless it is the last; `None` once all is out.
    pub(crate) fn next_piece(&mut self, min: usize) -> Result<Option<Vec<u8>>, EngineError> {
        let fail = |e: String| encode_failed(self.path, e);
        let mut out = std::mem::take(&mut self.head);
        out.reserve(min.min(PIECE_BYTES).saturating_sub(out.len()));
        while out.len() < min {
            let Some((twin, ta)) = self.twins.next() else {
                break;
            };
            let advice = match &ta.advice {
                Some(a) => Some(AdviceRecordRef {
                    history: &a.history,
                    next_eval: a.next_eval,
                    tracker_json: serde_json::to_vec(&a.tracker)
                        .map_err(|e| fail(e.to_string()))?,
                }),
                None => None,
            };
            let record = RecordRef {
                twin,
                config: placed(&self.configs, ta.det.shared_config()).map_err(fail)?,
                specs: placed(&self.specs, ta.det.signals()).map_err(fail)?,
                det: &ta.det,
                last_ts: ta.last_ts,
                last: &ta.last,
                advice,
            };
            out = push_block(out, &record).map_err(|e| fail(format!("twin {twin}: {e}")))?;
        }
        Ok((!out.is_empty()).then_some(out))
    }
}

/// Encodes a shard's twins as a binary snapshot, whole.
pub(crate) fn encode<'a>(
    twins: impl ExactSizeIterator<Item = (&'a Arc<str>, &'a TwinAnalytics)> + Clone,
    path: &Path,
) -> Result<Vec<u8>, EngineError> {
    let mut enc = Encoder::new(twins, path)?;
    Ok(enc.next_piece(usize::MAX)?.unwrap_or_default())
}

/// What a binary snapshot held: the twins it could read, and what was wrong with it.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub twins: Vec<(Arc<str>, TwinAnalytics)>,
    /// Records that could not be used (damaged, or missing from a cut-off file).
    pub lost: u64,
    /// The first problem found, if any.
    pub problem: Option<String>,
}

/// Decodes a binary snapshot. Never panics: a damaged header loses the file, a damaged
/// record its twin, a damaged length the rest of the file.
pub(crate) fn decode(bytes: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let u32_at =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        d.problem = Some("not a detector snapshot (bad magic or too short)".into());
        return d;
    }
    if crc32fast::hash(&bytes[..20]) != u32_at(20) {
        d.problem = Some("header checksum mismatch".into());
        return d;
    }
    let version = u32_at(8);
    if version != VERSION {
        d.problem = Some(format!(
            "format version {version}, this build reads {VERSION}"
        ));
        return d;
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&bytes[12..20]);
    let count = u64::from_le_bytes(count);
    let problem = |d: &mut Decoded, p: String| {
        d.lost += 1;
        d.problem.get_or_insert(p);
    };
    let mut at = HEADER_LEN;
    let tables = match read_tables(bytes, &mut at) {
        Ok(t) => t,
        Err(e) => {
            d.lost = count;
            d.problem = Some(e);
            return d;
        }
    };
    let mut read = 0u64;
    while read < count {
        if bytes.len() - at < 8 {
            break;
        }
        let len = u32_at(at) as usize;
        let crc = u32_at(at + 4);
        at += 8;
        if len > MAX_RECORD || bytes.len() - at < len {
            break;
        }
        let payload = &bytes[at..at + len];
        at += len;
        read += 1;
        if crc32fast::hash(payload) != crc {
            problem(&mut d, format!("record {read}: checksum mismatch"));
            continue;
        }
        match record_to_twin(payload, &tables) {
            Ok(t) => d.twins.push(t),
            Err(e) => problem(&mut d, format!("record {read}: {e}")),
        }
    }
    if read < count {
        d.lost += count - read;
        d.problem
            .get_or_insert(format!("cut off after {read} of {count} twins"));
    } else if at != bytes.len() {
        d.problem.get_or_insert("bytes after the last twin".into());
    }
    d
}

/// The shared tables, as `Arc`s for the twins to share.
type SharedTables = (Vec<Arc<DetectorConfig>>, Vec<Arc<[SignalSpec]>>);

/// Reads the tables block at `*at` and moves past it.
fn read_tables(bytes: &[u8], at: &mut usize) -> Result<SharedTables, String> {
    let word = |i: usize| -> Option<u32> {
        let b = bytes.get(i..i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (Some(len), Some(crc)) = (word(*at), word(*at + 4)) else {
        return Err("cut off before the shared tables".into());
    };
    let start = *at + 8;
    let payload = bytes
        .get(start..start.saturating_add(len as usize))
        .filter(|_| (len as usize) <= MAX_RECORD)
        .ok_or("cut off in the shared tables")?;
    if crc32fast::hash(payload) != crc {
        return Err("shared tables: checksum mismatch".into());
    }
    let t: Tables = postcard::from_bytes(payload).map_err(|e| format!("shared tables: {e}"))?;
    *at = start + payload.len();
    Ok((
        t.configs.into_iter().map(Arc::new).collect(),
        t.specs.into_iter().map(Arc::from).collect(),
    ))
}

fn record_to_twin(
    payload: &[u8],
    (configs, specs): &SharedTables,
) -> Result<(Arc<str>, TwinAnalytics), String> {
    let r: Record = postcard::from_bytes(payload).map_err(|e| e.to_string())?;
    let config = configs
        .get(r.config as usize)
        .ok_or_else(|| format!("twin {}: no configuration {}", r.twin, r.config))?;
    let specs = specs
        .get(r.specs as usize)
        .ok_or_else(|| format!("twin {}: no signal list {}", r.twin, r.specs))?;
    let det = TwinDetector::from_state(Arc::clone(config), Arc::clone(specs), r.det)
        .map_err(|e| format!("twin {}: {e}", r.twin))?;
    let advice = match r.advice {
        Some(a) => Some(Box::new(TwinAdvice {
            history: a.history,
            window: ExplanationWindow::default(),
            tracker: serde_json::from_slice(&a.tracker_json)
                .map_err(|e| format!("twin {}: advice tracker: {e}", r.twin))?,
            next_eval: a.next_eval,
        })),
        None => None,
    };
    Ok((
        r.twin,
        TwinAnalytics {
            det,
            last_ts: r.last_ts,
            last: r.last,
            advice,
        },
    ))
}

pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| EngineError::Persist {
            path: path.to_path_buf(),
            source,
        })?;
    }
    crate::catalog_file::write_atomic(path, bytes)
}

/// Writes a snapshot that comes in pieces, atomically as [`write`] does: a `None` ends it;
/// pieces that stop before that (the encoder failed) leave the old file in place.
pub(crate) fn write_pieces(
    path: &Path,
    pieces: impl IntoIterator<Item = Option<Vec<u8>>>,
) -> Result<(), EngineError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| EngineError::Persist {
            path: path.to_path_buf(),
            source,
        })?;
    }
    crate::catalog_file::write_atomic_with(path, |f| {
        for piece in pieces {
            match piece {
                Some(bytes) => f.write_all(&bytes)?,
                None => return Ok(()),
            }
        }
        Err(std::io::Error::other("snapshot cut short"))
    })
}

/// Which shard file a snapshot file name is, and whether it is the legacy JSON form.
fn shard_file(name: &str) -> Option<(usize, bool)> {
    let rest = name.strip_prefix("detectors-")?;
    let (n, json) = if let Some(n) = rest.strip_suffix(".bin") {
        (n, false)
    } else {
        (rest.strip_suffix(".json")?, true)
    };
    Some((n.parse().ok()?, json))
}

/// Loads every saved detector (whatever the shard count was when they were saved). A twin
/// found in several files keeps the one that scored the latest reading. A shard's JSON file
/// (the form written before the binary one) is read when its binary file is absent; once
/// read, every twin is written again in the binary form for `shards` shards and the JSON
/// files are removed. Unreadable files and damaged twins are logged and skipped: those
/// detectors learn again.
pub(crate) fn load_all(dir: &Path, shards: usize) -> HashMap<Arc<str>, TwinAnalytics> {
    let mut out: HashMap<Arc<str>, TwinAnalytics> = HashMap::new();
    let Ok(entries) = fs::read_dir(dir.join("analytics")) else {
        return out;
    };
    let mut files: Vec<(usize, bool, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let (n, json) = shard_file(&e.file_name().to_string_lossy())?;
            Some((n, json, e.path()))
        })
        .collect();
    let binary: std::collections::HashSet<usize> =
        files.iter().filter(|f| !f.1).map(|f| f.0).collect();
    let mut legacy = Vec::new();
    files.retain(|(n, json, path)| {
        if *json {
            legacy.push(path.clone());
        }
        !(*json && binary.contains(n))
    });
    let mut merge = |twin: Arc<str>, ta: TwinAnalytics| {
        let newer = out.get(&twin).is_none_or(|cur| ta.last_ts > cur.last_ts);
        if newer {
            out.insert(twin, ta);
        }
    };
    // Files are read and decoded side by side (one thread each), then merged in name order.
    files.sort_by(|a, b| a.2.cmp(&b.2));
    let read: Vec<Vec<(Arc<str>, TwinAnalytics)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|(_, json, path)| scope.spawn(move || read_file(path, *json)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for twins in read {
        twins.into_iter().for_each(|(t, ta)| merge(t, ta));
    }
    if !legacy.is_empty() {
        if let Err(err) = replace_legacy(dir, shards, &out, &legacy) {
            tracing::warn!(error = %err, "detector state not yet rewritten in the binary form; the JSON form is kept");
        }
    }
    out
}

/// The twins of one snapshot file (binary, or the legacy JSON form); what it cannot read
/// is logged.
fn read_file(path: &Path, json: bool) -> Vec<(Arc<str>, TwinAnalytics)> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(err) => {
            tracing::warn!(file = %path.display(), error = %err, "detector state unreadable; those twins learn again");
            return Vec::new();
        }
    };
    if json {
        return match serde_json::from_slice::<HashMap<Arc<str>, TwinAnalytics>>(&bytes) {
            Ok(map) => map.into_iter().collect(),
            Err(err) => {
                tracing::warn!(file = %path.display(), error = %err, "detector state unreadable; those twins learn again");
                Vec::new()
            }
        };
    }
    let decoded = decode(&bytes);
    if let Some(problem) = &decoded.problem {
        tracing::warn!(file = %path.display(), problem = %problem, lost = decoded.lost, read = decoded.twins.len(), "detector state damaged; the twins it lost learn again");
    }
    decoded.twins
}

/// Writes every loaded twin in the binary form, partitioned as the shards will hold them,
/// then removes the JSON files: the binary files are durable before any JSON goes.
fn replace_legacy(
    dir: &Path,
    shards: usize,
    twins: &HashMap<Arc<str>, TwinAnalytics>,
    legacy: &[PathBuf],
) -> Result<(), EngineError> {
    let n = shards.max(1);
    let mut per_shard: Vec<Vec<(&Arc<str>, &TwinAnalytics)>> = (0..n).map(|_| Vec::new()).collect();
    for (twin, ta) in twins {
        per_shard[crate::shard::shard_of(twin, n)].push((twin, ta));
    }
    for (i, list) in per_shard.into_iter().enumerate() {
        let path = state_path(dir, i);
        write(&path, &encode(list.into_iter(), &path)?)?;
    }
    for path in legacy {
        fs::remove_file(path).map_err(|source| EngineError::Persist {
            path: path.clone(),
            source,
        })?;
    }
    let analytics = dir.join("analytics");
    fs::File::open(&analytics)
        .and_then(|d| d.sync_all())
        .map_err(|source| EngineError::Persist {
            path: analytics,
            source,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::AssetModel;

    const MIN: i64 = 60 * 1_000_000_000;

    #[test]
    fn recycling_a_list_keeps_its_allocation() {
        let mut v: Vec<(&str, f64)> = Vec::with_capacity(16);
        v.push(("a", 1.0));
        let at = v.as_ptr() as usize;
        let w: Vec<(&str, f64)> = recycle(v);
        assert!(w.is_empty());
        assert_eq!((w.capacity(), w.as_ptr() as usize), (16, at));
    }

    fn model(failure_modes: bool) -> AssetModel {
        let mut m = serde_json::json!({
            "id": "pump", "name": "Pump", "version": 1,
            "signals": [
                {"name": "bearing_temp", "unit": "°C", "kind": "float", "min": -20.0, "max": 120.0, "role": "output"},
                {"name": "vib", "unit": "mm/s", "kind": "float", "min": 0.0, "max": 20.0, "role": "output"}
            ]
        });
        if failure_modes {
            m["failure_modes"] = serde_json::json!([{
                "id": "bearing_wear", "name": "Bearing wear",
                "signature": [
                    {"signal": "vib", "direction": "rising", "weight": 2.0},
                    {"signal": "bearing_temp", "direction": "rising", "weight": 1.0}
                ],
                "actions": ["inspect the bearing"], "typical_horizon_h": 72.0
            }]);
        }
        serde_json::from_value(m).unwrap()
    }

    fn reading(model: &str, ts: i64, k: f64) -> ValidatedReading {
        ValidatedReading {
            twin: Arc::from("p1"),
            model: Arc::from(model),
            ts,
            values: vec![
                (
                    Arc::from("bearing_temp"),
                    Value::Float(60.0 + (k * 0.7).sin()),
                ),
                (Arc::from("vib"), Value::Float(2.0 + (k * 1.3).cos() * 0.1)),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// Feeds `n` readings a minute apart; returns the evaluations' count (tracker events are
    /// none on a healthy stream, so the window's take marks an evaluation).
    fn feed(dets: &mut Detectors, catalog: &Catalog, model: &str, n: usize) -> usize {
        let mut evaluations = 0;
        for k in 0..n {
            let r = reading(model, k as i64 * MIN, k as f64);
            if dets.observe(catalog, &r).is_none() {
                continue;
            }
            let mut asked = false;
            let events = dets.advise(catalog, &r, |_| {
                asked = true;
                Vec::new()
            });
            assert!(
                events.is_empty(),
                "a healthy twin gets no advice: {events:?}"
            );
            if asked {
                evaluations += 1;
            }
        }
        evaluations
    }

    #[test]
    fn advice_is_evaluated_on_reading_time_after_the_warm_up_only_with_failure_modes() {
        let config = DetectorConfig {
            warmup: 60,
            ..DetectorConfig::default()
        };
        let catalog = Catalog::from_parts(vec![model(true)], vec![]).unwrap();
        let mut dets = Detectors::new(config.clone(), HashMap::new())
            .with_advice(AdviceConfig::default(), std::time::Duration::from_secs(600));
        // 3 h a minute apart: the warm-up is the first hour, then one evaluation every 10 min.
        let n = feed(&mut dets, &catalog, "pump", 180);
        assert!((11..=13).contains(&n), "{n} evaluations");
        let adv = dets.twins["p1"].advice.as_ref().unwrap();
        assert!(adv.history.signal("vib").is_some());
        // Saved and loaded with the detector; state saved before advice existed still loads.
        let json = serde_json::to_string(&dets.twins).unwrap();
        let back: HashMap<Arc<str>, TwinAnalytics> = serde_json::from_str(&json).unwrap();
        assert!(back["p1"].advice.is_some());
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        old["p1"].as_object_mut().unwrap().remove("advice");
        let back: HashMap<Arc<str>, TwinAnalytics> = serde_json::from_value(old).unwrap();
        assert!(back["p1"].advice.is_none());
        assert!(
            !dets.dismiss_advice("p1", "bearing_wear"),
            "nothing was open"
        );

        // A model without failure modes keeps no advice state.
        let catalog = Catalog::from_parts(vec![model(false)], vec![]).unwrap();
        let mut dets = Detectors::new(config, HashMap::new());
        assert_eq!(feed(&mut dets, &catalog, "pump", 180), 0);
        assert!(dets.twins["p1"].advice.is_none());
    }

    /// A shard's twins after three hours of readings: learned detectors, one with advice
    /// state (the pump model has failure modes), one without.
    fn learned_twins() -> HashMap<Arc<str>, TwinAnalytics> {
        let config = DetectorConfig {
            warmup: 60,
            ..DetectorConfig::default()
        };
        let catalog =
            Catalog::from_parts(vec![model(true), model_named("plain", false)], vec![]).unwrap();
        let mut dets = Detectors::new(config, HashMap::new())
            .with_advice(AdviceConfig::default(), std::time::Duration::from_secs(600));
        feed(&mut dets, &catalog, "pump", 180);
        for k in 0..100 {
            let mut r = reading("plain", k as i64 * MIN, k as f64);
            r.twin = Arc::from("p2");
            dets.observe(&catalog, &r);
        }
        // One still learning.
        let mut r = reading("plain", 0, 0.0);
        r.twin = Arc::from("p3");
        dets.observe(&catalog, &r);
        dets.twins
    }

    fn model_named(id: &str, failure_modes: bool) -> AssetModel {
        let mut m = model(failure_modes);
        m.id = id.to_string();
        m
    }

    fn assert_same(a: &HashMap<Arc<str>, TwinAnalytics>, b: &HashMap<Arc<str>, TwinAnalytics>) {
        assert_eq!(a.len(), b.len());
        for (twin, x) in a {
            let y = &b[twin];
            assert_eq!(x.det, y.det, "{twin}");
            assert_eq!(x.last_ts, y.last_ts);
            assert_eq!(x.last, y.last);
            assert_eq!(x.advice.is_some(), y.advice.is_some());
            if let (Some(p), Some(q)) = (&x.advice, &y.advice) {
                assert_eq!(p.history, q.history);
                assert_eq!(p.tracker, q.tracker);
                assert_eq!(p.next_eval, q.next_eval);
            }
        }
    }

    #[test]
    fn binary_snapshot_round_trips_learned_detectors_with_advice_state() {
        let twins = learned_twins();
        assert!(twins["p1"].advice.is_some() && !twins["p1"].det.is_warming_up());
        assert!(twins["p2"].advice.is_none() && !twins["p2"].det.is_warming_up());
        assert!(twins["p3"].det.is_warming_up());
        let path = Path::new("detectors-0.bin");
        let bytes = encode(twins.iter(), path).unwrap();
        let d = decode(&bytes);
        assert!(d.problem.is_none(), "{:?}", d.problem);
        assert_eq!(d.lost, 0);
        let back: HashMap<_, _> = d.twins.into_iter().collect();
        assert_same(&twins, &back);
        // Smaller than the JSON form.
        let json = serde_json::to_vec(&twins).unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn a_snapshot_in_pieces_is_the_whole_snapshot_and_a_cut_one_keeps_the_old_file() {
        let twins = learned_twins();
        let whole = encode(twins.iter(), Path::new("x")).unwrap();
        for min in [1, 100, 5_000, whole.len(), usize::MAX] {
            let mut enc = Encoder::new(twins.iter(), Path::new("x")).unwrap();
            let mut pieces = Vec::new();
            while let Some(p) = enc.next_piece(min).unwrap() {
                pieces.push(p);
            }
            assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() >= min));
            assert_eq!(pieces.concat(), whole, "pieces of at least {min} bytes");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = state_path(dir.path(), 0);
        let mut enc = Encoder::new(twins.iter(), &p).unwrap();
        let pieces = std::iter::from_fn(|| enc.next_piece(100).unwrap().map(Some));
        write_pieces(&p, pieces.chain([None])).unwrap();
        assert_eq!(fs::read(&p).unwrap(), whole);
        // Pieces that stop before their end leave the file as it was.
        let cut = vec![Some(b"doppelDS".to_vec())];
        assert!(write_pieces(&p, cut).is_err());
        assert_eq!(fs::read(&p).unwrap(), whole);
    }

    #[test]
    fn a_damaged_snapshot_loses_only_what_is_damaged() {
        let twins = learned_twins();
        let bytes = encode(twins.iter(), Path::new("x")).unwrap();
        // A flipped byte in a record: that twin only.
        let mut bad = bytes.clone();
        let last = bad.len() - 3;
        bad[last] ^= 0x40;
        let d = decode(&bad);
        assert_eq!((d.twins.len(), d.lost), (2, 1));
        assert!(d.problem.unwrap().contains("checksum"));
        // Cut off: the twins before the cut.
        let d = decode(&bytes[..bytes.len() - 10]);
        assert_eq!(d.twins.len() as u64 + d.lost, 3);
        assert!(d.lost >= 1 && d.problem.unwrap().contains("cut off"));
        // A damaged header: nothing.
        let mut bad = bytes.clone();
        bad[13] ^= 1;
        let d = decode(&bad);
        assert!(d.twins.is_empty() && d.problem.is_some());
        assert!(decode(b"").problem.is_some());
        assert!(decode(b"{\"p1\": {}}").problem.is_some());
    }

    #[test]
    fn a_snapshot_of_the_previous_format_is_refused_and_its_twins_learn_again() {
        // Version 1: the header, then records with no shared tables before them.
        let mut v1 = Vec::new();
        v1.extend_from_slice(MAGIC);
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&1u64.to_le_bytes());
        let crc = crc32fast::hash(&v1);
        v1.extend_from_slice(&crc.to_le_bytes());
        v1.extend_from_slice(&[3, 0, 0, 0]);
        v1.extend_from_slice(&crc32fast::hash(b"abc").to_le_bytes());
        v1.extend_from_slice(b"abc");
        let d = decode(&v1);
        assert!(d.twins.is_empty());
        assert!(
            d.problem
                .as_deref()
                .is_some_and(|p| p.contains("version 1")),
            "{:?}",
            d.problem
        );

        let dir = tempfile::tempdir().unwrap();
        let p = state_path(dir.path(), 0);
        write(&p, &v1).unwrap();
        assert!(load_all(dir.path(), 1).is_empty());
        // The shard's detectors start afresh and learn; their next snapshot is readable.
        let mut dets = Detectors::new(DetectorConfig::default(), HashMap::new());
        let catalog = Catalog::from_parts(vec![model(false)], vec![]).unwrap();
        feed(&mut dets, &catalog, "pump", 3);
        write(&p, &encode(dets.twins.iter(), &p).unwrap()).unwrap();
        assert_same(&dets.twins, &load_all(dir.path(), 1));
    }

    #[test]
    fn twins_of_one_model_share_their_signal_specs_and_the_snapshot_holds_them_once() {
        let mut twins = learned_twins();
        let mut p4 = twins["p2"].clone();
        p4.det = p4.det.clone();
        twins.insert(Arc::from("p4"), p4);
        let bytes = encode(twins.iter(), Path::new("x")).unwrap();
        let d = decode(&bytes);
        assert!(d.problem.is_none(), "{:?}", d.problem);
        let dets = Detectors::new(DetectorConfig::default(), d.twins.into_iter().collect());
        let (a, b) = (&dets.twins["p2"].det, &dets.twins["p4"].det);
        assert!(Arc::ptr_eq(a.signals(), b.signals()));
        assert!(Arc::ptr_eq(a.signals(), dets.twins["p3"].det.signals()));
        // One table entry for the two models' lists (pump, plain: equal specs, one entry).
        let mut at = HEADER_LEN;
        let (configs, specs) = read_tables(&bytes, &mut at).unwrap();
        assert_eq!((configs.len(), specs.len()), (1, 1));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any damage (bytes flipped, the file cut anywhere, garbage after it) is reported,
        /// never a panic, and what is read back is what was written.
        #[test]
        fn damaged_snapshots_never_panic(
            flips in proptest::collection::vec((0usize..1_000_000, 1u8..=255), 0..4),
            cut in proptest::option::of(0usize..1_000_000),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3),
        ) {
            let twins = learned_twins();
            let mut bytes = encode(twins.iter(), Path::new("x")).unwrap();
            for (at, x) in &flips {
                let n = bytes.len();
                bytes[at % n] ^= x;
            }
            if let Some(c) = cut {
                bytes.truncate(c % (bytes.len() + 1));
            }
            bytes.extend_from_slice(&tail);
            let damaged = !flips.is_empty() || cut.is_some() || !tail.is_empty();
            let d = decode(&bytes);
            proptest::prop_assert!(d.twins.len() <= 3);
            for (twin, ta) in &d.twins {
                proptest::prop_assert_eq!(&ta.det, &twins[twin].det);
            }
            if d.problem.is_none() {
                proptest::prop_assert_eq!(d.twins.len(), 3);
            }
            if !damaged {
                proptest::prop_assert!(d.problem.is_none());
            }
        }
    }

    #[test]
    fn json_snapshots_load_and_are_replaced_by_binary_ones() {
        let twins = learned_twins();
        let dir = tempfile::tempdir().unwrap();
        let analytics = dir.path().join("analytics");
        fs::create_dir_all(&analytics).unwrap();
        // Shard 0 and a shard beyond today's count wrote JSON; shard 1 is already binary,
        // with an older JSON file beside it that must not be read.
        let (a, b): (Vec<_>, Vec<_>) = twins.iter().partition(|(t, _)| &***t == "p1");
        let json = |v: &[(&Arc<str>, &TwinAnalytics)]| {
            serde_json::to_vec(&v.iter().cloned().collect::<HashMap<_, _>>()).unwrap()
        };
        fs::write(analytics.join("detectors-0.json"), json(&a)).unwrap();
        fs::write(analytics.join("detectors-5.json"), json(&b[..1])).unwrap();
        let p = state_path(dir.path(), 1);
        write(&p, &encode(b[1..].iter().copied(), &p).unwrap()).unwrap();
        fs::write(analytics.join("detectors-1.json"), b"not read").unwrap();

        // JSON keeps floats to their last digit or so (no exact round trip in this crate):
        // what it holds is what must load.
        let mut expected: HashMap<Arc<str>, TwinAnalytics> =
            serde_json::from_slice(&json(&a)).unwrap();
        expected.extend(serde_json::from_slice::<HashMap<_, _>>(&json(&b[..1])).unwrap());
        expected.extend(b[1..].iter().map(|(t, ta)| ((*t).clone(), (*ta).clone())));
        let loaded = load_all(dir.path(), 2);
        assert_same(&expected, &loaded);
        let mut names: Vec<String> = fs::read_dir(&analytics)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["detectors-0.bin", "detectors-1.bin"]);
        // And the binary files alone hold everything.
        assert_same(&expected, &load_all(dir.path(), 2));
    }
}
