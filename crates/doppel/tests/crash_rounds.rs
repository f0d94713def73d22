//! Random kill -9 rounds against the real binary: several HTTP writers record exactly which
//! readings were answered 2xx, the server is SIGKILLed at a seeded random moment (with
//! checkpoints every few KiB of WAL and small chunks, so kills land mid-write, mid-seal and
//! mid-checkpoint; one writer first fills a gap left in the previous round, so late points
//! merge into chunks already in segment files), restarted on the same data directory, and the whole history is checked:
//! every acknowledged reading present, none twice, every value the one its index implies,
//! and the server opened. History accumulates over the rounds.
//!
//! `crash_rounds` runs a few rounds as an ordinary test. `crash_rounds_many` (ignored) runs
//! `DOPPEL_CRASH_ROUNDS` (default 100) and prints a summary; `bench/crash.sh` runs it in
//! release. `DOPPEL_CRASH_SEED` replays a run (the seed is printed at the start).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{create_plant, Options, TestServer, T0_MS};
use serde_json::{json, Value};

const TWINS: [&str; 2] = ["pump-1", "pump-2"];
const SIGNALS: [&str; 3] = ["cycles", "bearing_temp", "running"];

/// splitmix64: a seeded generator small enough to read, so a seed replays a run exactly
/// (as far as thread timing allows).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The value reading `i` carries for `signal`: a pure function of the index, so any point
/// holding another value is corrupt.
fn expected(signal: &str, i: usize) -> Value {
    match signal {
        "cycles" => json!(i),
        "bearing_temp" => json!(((i * 7919) % 10_000) as f64 / 100.0),
        "running" => json!(i.is_multiple_of(3)),
        _ => unreachable!("{signal}"),
    }
}

fn reading(i: usize) -> Value {
    let values: serde_json::Map<String, Value> = SIGNALS
        .iter()
        .map(|s| ((*s).to_string(), expected(s, i)))
        .collect();
    json!({"ts": T0_MS + i as i64, "values": values})
}

/// How a run is shaped.
#[derive(Debug, Clone)]
struct CrashConfig {
    rounds: usize,
    seed: u64,
    writers: usize,
    /// The kill comes uniformly between these many milliseconds after the writers start.
    kill_after_ms: (u64, u64),
    /// Readings per request, uniformly in this range (one request is acked as a whole).
    batch: (u64, u64),
    checkpoint_bytes: u64,
    chunk_points: usize,
    /// Readings per round written late, in the next round.
    late: usize,
}

/// What a run found. Everything but `rounds`, `acked`, `unacked_present` and `checkpoints`
/// must be zero.
#[derive(Debug, Default, Clone)]
struct Summary {
    rounds: usize,
    /// Readings answered 2xx, over all rounds.
    acked: usize,
    /// Readings whose request failed with the kill, found stored anyway (allowed).
    unacked_present: usize,
    /// Acked (or once seen stored) readings missing after a restart.
    lost: usize,
    /// (twin, signal, timestamp) stored more than once.
    duplicated: usize,
    /// Points with a value other than their index implies, a timestamp no reading had, or
    /// readings stored with only some of their signals.
    corrupt: usize,
    /// Restarts that did not come up listening.
    failed_opens: usize,
    /// Requests answered with something other than 2xx.
    refused: usize,
    /// Checkpoints completed, and kills that interrupted one (from the server's debug log).
    checkpoints: usize,
    kills_in_checkpoint: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rounds {}, acked points {} ({} readings × {} signals), unacked but stored {}, \
             lost {}, duplicated {}, corrupt {}, corrupt/failed opens {}, refused requests {}, \
             checkpoints {}, kills during a checkpoint {}",
            self.rounds,
            self.acked * SIGNALS.len(),
            self.acked,
            SIGNALS.len(),
            self.unacked_present,
            self.lost,
            self.duplicated,
            self.corrupt,
            self.failed_opens,
            self.refused,
            self.checkpoints,
            self.kills_in_checkpoint
        )
    }
}

impl Summary {
    fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.corrupt == 0
            && self.failed_opens == 0
            && self.refused == 0
    }
}

/// The writers' shared record of one round.
#[derive(Debug, Default)]
struct Round {
    next: AtomicUsize,
    /// Indices left free in the previous round, written now by writer 0 before anything
    /// else: late points whose chunks a checkpoint has already put in a segment file.
    late: Vec<usize>,
    late_taken: AtomicUsize,
    /// Reading index → twin (index into `TWINS`) of every reading sent.
    sent: Mutex<BTreeMap<usize, usize>>,
    acked: Mutex<Vec<usize>>,
    refused: Mutex<Vec<(u16, String)>>,
    stop: AtomicBool,
}

/// Starts the writers: each takes the next block of reading indices, sends it as one request
/// to its twin, and stops at its first transport error (the server is gone).
fn start_writers(
    s: &TestServer,
    cfg: &CrashConfig,
    rng: &mut Rng,
    round: &Arc<Round>,
) -> Vec<std::thread::JoinHandle<()>> {
    let url = s.http_url();
    let auth = format!("Bearer {}", s.admin_token);
    (0..cfg.writers)
        .map(|t| {
            let (round, url, auth) = (round.clone(), url.clone(), auth.clone());
            let mut rng = Rng(rng.next());
            let (lo, hi) = cfg.batch;
            std::thread::spawn(move || {
                let agent = common::pooled_agent();
                let headers = [
                    ("Authorization", auth.as_str()),
                    ("Content-Type", "application/json"),
                ];
                let twin = t % TWINS.len();
                let path = format!("/api/v1/twins/{}/readings", TWINS[twin]);
                while !round.stop.load(Ordering::Relaxed) {
                    let k = usize::try_from(rng.between(lo, hi)).unwrap();
                    let late_from = if t == 0 {
                        round.late_taken.fetch_add(k, Ordering::SeqCst)
                    } else {
                        usize::MAX
                    };
                    let ids: Vec<usize> = if late_from < round.late.len() {
                        round.late[late_from..(late_from + k).min(round.late.len())].to_vec()
                    } else {
                        let first = round.next.fetch_add(k, Ordering::SeqCst);
                        (first..first + k).collect()
                    };
                    {
                        let mut sent = round.sent.lock().unwrap();
                        for i in &ids {
                            sent.insert(*i, twin);
                        }
                    }
                    let body = Value::Array(ids.iter().map(|i| reading(*i)).collect()).to_string();
                    match common::http_text(
                        &agent,
                        &url,
                        "POST",
                        &path,
                        &headers,
                        Some(body.as_bytes()),
                    ) {
                        Ok((200..=299, _)) => round.acked.lock().unwrap().extend(ids),
                        Ok((status, text)) => round.refused.lock().unwrap().push((status, text)),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

fn join_bounded(handles: Vec<std::thread::JoinHandle<()>>, within: Duration) {
    let deadline = Instant::now() + within;
    for h in handles {
        while !h.is_finished() {
            assert!(
                Instant::now() < deadline,
                "writer threads did not finish in time"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        h.join().unwrap();
    }
}

/// Checks the whole stored history against what was sent (`sent`: index → twin), updating
/// `durable` (readings that must stay: acked, or seen stored after an earlier restart).
fn check_history(
    s: &TestServer,
    sent: &BTreeMap<usize, usize>,
    durable: &mut BTreeSet<usize>,
    sum: &mut Summary,
) -> Vec<String> {
    let mut problems = Vec::new();
    // Reading index → signals stored for it.
    let mut stored: BTreeMap<usize, usize> = BTreeMap::new();
    for (twin_no, twin) in TWINS.iter().enumerate() {
        for signal in SIGNALS {
            // Read in pages of a million points (the API's most per request).
            let mut points: Vec<Value> = Vec::new();
            let mut from = String::new();
            loop {
                let h = s.get_ok(&format!(
                    "/api/v1/twins/{twin}/signals/{signal}/history?limit=1000000{from}"
                ));
                let page = h["points"].as_array().unwrap();
                let last = page.last().and_then(|p| p["ts"].as_i64());
                points.extend(page.iter().cloned());
                match (h["truncated"].as_bool(), last) {
                    // `from` is in milliseconds: every reading is on a whole millisecond.
                    (Some(true), Some(ts)) => from = format!("&from={}", ts / 1_000_000 + 1),
                    _ => break,
                }
            }
            let mut seen = BTreeSet::new();
            for p in &points {
                let ts = p["ts"].as_i64().unwrap();
                let Ok(i) = usize::try_from(ts / 1_000_000 - T0_MS) else {
                    sum.corrupt += 1;
                    problems.push(format!("{twin}/{signal}: point before T0: {p}"));
                    continue;
                };
                if ts % 1_000_000 != 0 || sent.get(&i) != Some(&twin_no) {
                    sum.corrupt += 1;
                    problems.push(format!("{twin}/{signal}: point no reading had: {p}"));
                    continue;
                }
                if p["value"] != expected(signal, i) {
                    sum.corrupt += 1;
                    problems.push(format!(
                        "{twin}/{signal}: reading {i} holds {} instead of {}",
                        p["value"],
                        expected(signal, i)
                    ));
                }
                if !seen.insert(i) {
                    sum.duplicated += 1;
                    problems.push(format!("{twin}/{signal}: reading {i} stored twice"));
                    continue;
                }
                *stored.entry(i).or_default() += 1;
            }
        }
    }
    for (i, n) in &stored {
        if *n != SIGNALS.len() {
            sum.corrupt += 1;
            problems.push(format!(
                "reading {i} stored with {n} of its {} signals",
                SIGNALS.len()
            ));
        }
    }
    for i in durable.iter() {
        if !stored.contains_key(i) {
            sum.lost += 1;
            if sum.lost <= 10 {
                problems.push(format!("acked reading {i} lost"));
            }
        }
    }
    durable.extend(stored.keys());
    problems
}

/// Checkpoints started and completed in the log of the server's last run.
fn checkpoints_in_last_run(log: &str) -> (usize, usize) {
    let last = log.rsplit("===== start #").next().unwrap_or("");
    let started = last.matches("checkpoint started").count();
    let done = last.matches("checkpoint done").count();
    (started, done)
}

fn seed_from_env() -> u64 {
    match std::env::var("DOPPEL_CRASH_SEED") {
        Ok(s) => s.parse().expect("DOPPEL_CRASH_SEED must be a u64"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// Runs the rounds; stops early at a server that does not open again. The caller asserts.
fn run_crash_rounds(cfg: &CrashConfig) -> Summary {
    eprintln!("crash rounds: seed {} ({cfg:?})", cfg.seed);
    let mut rng = Rng(cfg.seed);
    let env = vec![
        (
            "DOPPEL_STORE_CHECKPOINT_BYTES".to_string(),
            cfg.checkpoint_bytes.to_string(),
        ),
        (
            "DOPPEL_STORE_CHUNK_POINTS".to_string(),
            cfg.chunk_points.to_string(),
        ),
        ("DOPPEL_ANOMALY".to_string(), "off".to_string()),
        (
            "RUST_LOG".to_string(),
            "info,doppel_store=debug".to_string(),
        ),
    ];
    let mut s = TestServer::start_with(Options {
        env,
        ..Options::default()
    });
    create_plant(&s);
    let mut sum = Summary::default();
    let mut sent_all: BTreeMap<usize, usize> = BTreeMap::new();
    let mut durable: BTreeSet<usize> = BTreeSet::new();
    let mut next = 0usize;
    let mut late = Vec::new();
    let started = Instant::now();
    for r in 0..cfg.rounds {
        // Leave a gap for the next round's late writer (on writer 0's twin).
        let gap = next..next + cfg.late;
        let round = Arc::new(Round {
            next: AtomicUsize::new(gap.end),
            late: std::mem::replace(&mut late, gap.collect()),
            ..Round::default()
        });
        let kill_after =
            Duration::from_millis(rng.between(cfg.kill_after_ms.0, cfg.kill_after_ms.1));
        let handles = start_writers(&s, cfg, &mut rng, &round);
        std::thread::sleep(kill_after);
        s.kill9();
        join_bounded(handles, Duration::from_secs(60));
        let (ck_started, ck_done) = checkpoints_in_last_run(&s.log());
        sum.checkpoints += ck_done;
        let in_checkpoint = ck_started > ck_done;
        sum.kills_in_checkpoint += usize::from(in_checkpoint);

        next = round.next.load(Ordering::SeqCst);
        sent_all.extend(round.sent.lock().unwrap().iter());
        let acked = std::mem::take(&mut *round.acked.lock().unwrap());
        let refused = std::mem::take(&mut *round.refused.lock().unwrap());
        sum.refused += refused.len();
        sum.acked += acked.len();
        sum.rounds += 1;
        let before = durable.len();
        durable.extend(acked.iter().copied());
        let must = durable.len();

        if let Err(e) = s.try_spawn() {
            sum.failed_opens += 1;
            eprintln!(
                "round {r}: the server did not open after kill -9: {e}\n{}",
                s.log()
            );
            break;
        }
        let mut problems = check_history(&s, &sent_all, &mut durable, &mut sum);
        sum.unacked_present += durable.len() - must;
        if !refused.is_empty() {
            problems.push(format!(
                "requests refused: {:?}",
                &refused[..refused.len().min(5)]
            ));
        }
        eprintln!(
            "round {r}: killed after {kill_after:?}{}, {} readings acked this round, \
             {} stored in all (+{}), {:?} so far",
            if in_checkpoint {
                " during a checkpoint"
            } else {
                ""
            },
            acked.len(),
            durable.len(),
            durable.len() - before,
            started.elapsed()
        );
        if !problems.is_empty() {
            eprintln!("round {r} (seed {}): {}", cfg.seed, problems.join("\n  "));
            break;
        }
    }
    if sum.failed_opens == 0 {
        s.stop();
    }
    eprintln!("crash rounds (seed {}): {sum}", cfg.seed);
    sum
}

#[test]
fn crash_rounds() {
    let cfg = CrashConfig {
        rounds: 4,
        seed: seed_from_env(),
        writers: 4,
        kill_after_ms: (100, 1_500),
        batch: (1, 16),
        checkpoint_bytes: 16 << 10,
        chunk_points: 64,
        late: 300,
    };
    let sum = run_crash_rounds(&cfg);
    assert!(sum.clean(), "seed {}: {sum}", cfg.seed);
    assert_eq!(sum.rounds, cfg.rounds);
    assert!(sum.acked > 0, "nothing was acked: {sum}");
}

/// `DOPPEL_CRASH_ROUNDS` rounds (default 100); `bench/crash.sh` runs it in release.
#[test]
#[ignore = "long: run by bench/crash.sh"]
fn crash_rounds_many() {
    let rounds = std::env::var("DOPPEL_CRASH_ROUNDS")
        .ok()
        .map(|r| r.parse().expect("DOPPEL_CRASH_ROUNDS must be a number"))
        .unwrap_or(100);
    let cfg = CrashConfig {
        rounds,
        seed: seed_from_env(),
        writers: 6,
        kill_after_ms: (20, 1_200),
        batch: (1, 32),
        checkpoint_bytes: 32 << 10,
        chunk_points: 128,
        late: 500,
    };
    let sum = run_crash_rounds(&cfg);
    assert!(sum.clean(), "seed {}: {sum}", cfg.seed);
    assert_eq!(sum.rounds, cfg.rounds);
}
