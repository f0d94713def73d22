//! Crash and failure tests with real files and fsync on: torn tails at every offset, garbage
//! and flipped bytes, corruption that must not be papered over, concurrent writers, and file
//! systems that refuse access.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use doppel_model::Value;
use doppel_store::{Row, Store, StoreError, StoreOptions};

const SIGNALS: [&str; 3] = ["temp", "rpm", "state"];

/// fsync on: these tests are about durability. They damage WAL segments, so nothing may
/// move out of the WAL into segment files: checkpoints are off (`store::tests` and the model
/// test cover those).
fn opts() -> StoreOptions {
    StoreOptions {
        checkpoint_on_close: false,
        checkpoint_wal_bytes: u64::MAX,
        ..StoreOptions::default()
    }
}

/// Batch `i`: one point per signal at ts `i`, of three value kinds.
fn batch(i: i64) -> Vec<Row> {
    let values = [
        Value::Float(i as f64 + 0.5),
        Value::Int(i * 10),
        Value::String(format!("state-{i}")),
    ];
    SIGNALS
        .iter()
        .zip(values)
        .map(|(s, value)| Row {
            twin: "pump".into(),
            signal: (*s).into(),
            ts: i,
            value,
        })
        .collect()
}

/// The batch numbers the store holds, checking each is whole (all signals, right values).
fn batches_in(store: &Store) -> Vec<i64> {
    let per_signal: Vec<Vec<(i64, Value)>> = SIGNALS
        .iter()
        .map(|s| {
            store
                .range("pump", s, i64::MIN, i64::MAX, usize::MAX)
                .unwrap()
                .into_iter()
                .map(|p| (p.ts, p.value))
                .collect()
        })
        .collect();
    let ids: Vec<i64> = per_signal[0].iter().map(|(ts, _)| *ts).collect();
    for &i in &ids {
        let want = batch(i);
        for (k, series) in per_signal.iter().enumerate() {
            assert!(
                series.contains(&(i, want[k].value.clone())),
                "batch {i} is not whole: signal {} has {series:?}",
                SIGNALS[k]
            );
        }
    }
    for series in &per_signal {
        assert_eq!(series.len(), ids.len(), "signals disagree: {per_signal:?}");
    }
    ids
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

fn last_segment(dir: &Path) -> PathBuf {
    segments(dir).pop().unwrap()
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).unwrap().len()
}

fn copy_store(from: &Path, to: &Path) {
    fs::create_dir_all(to.join("wal")).unwrap();
    for seg in segments(from) {
        fs::copy(&seg, to.join("wal").join(seg.file_name().unwrap())).unwrap();
    }
}

/// Writes batches `0..n` into a fresh store in `dir`, one `write` each, and returns the
/// length of the last segment after each write (all in one segment).
fn write_batches(dir: &Path, n: i64) -> Vec<u64> {
    let store = Store::open(dir, opts()).unwrap();
    let mut ends = vec![file_len(&last_segment(dir))];
    for i in 0..n {
        store.write(batch(i)).unwrap();
        // Acked means durable and on disk: the file length already includes the record.
        ends.push(file_len(&last_segment(dir)));
    }
    store.close().unwrap();
    ends
}

#[test]
fn torn_tail_at_every_offset_of_the_last_record() {
    let base = tempfile::tempdir().unwrap();
    let n = 5;
    let ends = write_batches(base.path(), n);
    let (start, end) = (ends[n as usize - 1], ends[n as usize]);
    assert!(end > start + 20, "last record should be a few dozen bytes");

    for cut in start..=end {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        let seg = last_segment(dir.path());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let store = Store::open(dir.path(), opts()).unwrap();
        let want: Vec<i64> = if cut == end {
            (0..n).collect()
        } else {
            (0..n - 1).collect()
        };
        assert_eq!(batches_in(&store), want, "cut at {cut}");
        assert_eq!(
            file_len(&seg),
            if cut == end { end } else { start },
            "torn bytes are truncated away"
        );

        // The repaired segment takes new records that survive the next reopen.
        store.write(batch(100)).unwrap();
        store.close().unwrap();
        drop(store);
        let store = Store::open(dir.path(), opts()).unwrap();
        let mut want = want;
        want.push(100);
        assert_eq!(batches_in(&store), want, "after recovery from cut {cut}");
    }
}

#[test]
fn garbage_after_the_last_record_is_truncated() {
    let base = tempfile::tempdir().unwrap();
    let ends = write_batches(base.path(), 4);
    let end = *ends.last().unwrap();
    let mut huge_len = u32::MAX.to_le_bytes().to_vec();
    huge_len.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let mut plausible_len = 20u32.to_le_bytes().to_vec();
    plausible_len.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    plausible_len.extend_from_slice(&[7u8; 20]);
    let pseudo_random: Vec<u8> = (0u32..300)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for garbage in [
        vec![0u8; 1],
        vec![0u8; 4096],
        vec![0xff; 7],
        huge_len,
        plausible_len,
        pseudo_random,
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        let seg = last_segment(dir.path());
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .unwrap()
            .write_all(&garbage)
            .unwrap();
        let store = Store::open(dir.path(), opts()).unwrap();
        assert_eq!(batches_in(&store), vec![0, 1, 2, 3], "garbage {garbage:?}");
        assert_eq!(file_len(&seg), end);
        assert_eq!(store.stats().wal_bytes, end);
    }
}

#[test]
fn corrupt_record_in_the_last_segment_cuts_the_tail_there() {
    let base = tempfile::tempdir().unwrap();
    let ends = write_batches(base.path(), 5);
    // Record 2 spans ends[2]..ends[3]: damage its payload, then its checksum field.
    for offset in [ends[2] + 8 + 5, ends[2] + 5] {
        let dir = tempfile::tempdir().unwrap();
        copy_store(base.path(), dir.path());
        let seg = last_segment(dir.path());
        let mut bytes = fs::read(&seg).unwrap();
        bytes[offset as usize] ^= 0x01;
        fs::write(&seg, &bytes).unwrap();

        let store = Store::open(dir.path(), opts()).unwrap();
        assert_eq!(batches_in(&store), vec![0, 1], "flip at {offset}");
        assert_eq!(file_len(&seg), ends[2]);
    }
}

#[test]
fn damage_before_the_last_segment_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let small = StoreOptions {
        segment_bytes: 64,
        ..opts()
    };
    let store = Store::open(dir.path(), small.clone()).unwrap();
    for i in 0..6 {
        store.write(batch(i)).unwrap();
    }
    store.close().unwrap();
    drop(store);
    let segs = segments(dir.path());
    assert!(segs.len() >= 3, "expected rotation, got {segs:?}");

    let victim = &segs[1];
    let mut bytes = fs::read(victim).unwrap();
    let at = bytes.len() - 3;
    bytes[at] ^= 0x80;
    fs::write(victim, &bytes).unwrap();
    match Store::open(dir.path(), small.clone()) {
        Err(StoreError::Corrupt { path, offset, .. }) => {
            assert_eq!(&path, victim);
            assert_eq!(offset, 8, "the segment's first record");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Nothing was truncated: the operator still has every byte to look at.
    assert_eq!(fs::read(victim).unwrap(), bytes);

    // A file that is not a WAL segment at all is also refused, in any position.
    fs::write(victim, b"NOTAWAL!and more").unwrap();
    let err = Store::open(dir.path(), small).unwrap_err();
    assert!(err.to_string().contains("bad magic"), "{err}");
}

#[test]
fn concurrent_writers_share_commits_and_every_acked_row_survives_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), opts()).unwrap());
    let threads = 8;
    let per_thread = 200;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            thread::spawn(move || {
                for j in 0..per_thread {
                    store
                        .write(vec![Row {
                            twin: format!("w{t}").into(),
                            signal: "s".into(),
                            ts: j,
                            value: Value::Int(t * 1000 + j),
                        }])
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    store.close().unwrap();
    drop(store);

    let store = Store::open(dir.path(), opts()).unwrap();
    for t in 0..threads {
        let got: Vec<(i64, Value)> = store
            .range(&format!("w{t}"), "s", i64::MIN, i64::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|p| (p.ts, p.value))
            .collect();
        let want: Vec<(i64, Value)> = (0..per_thread)
            .map(|j| (j, Value::Int(t * 1000 + j)))
            .collect();
        assert_eq!(got, want, "writer {t}");
    }
    assert_eq!(store.stats().points, (threads * per_thread) as u64);
    // The index merges duplicates, so check the log itself: exactly one record per write
    // (8-byte frame + type + "wN" + "s" + ts + int = 33 bytes) after the 8-byte header.
    assert_eq!(
        store.stats().wal_bytes,
        8 + 33 * (threads * per_thread) as u64
    );
}

#[test]
fn close_during_concurrent_writes_completes_everyone_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), opts()).unwrap());
    let acked = Arc::new(Mutex::new(Vec::new()));
    let completions = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, acked, completions) = (store.clone(), acked.clone(), completions.clone());
            thread::spawn(move || {
                for j in 0..150i64 {
                    let (acked, completions) = (acked.clone(), completions.clone());
                    let ts = t * 1000 + j;
                    store.write_with(
                        vec![Row {
                            twin: "t".into(),
                            signal: "s".into(),
                            ts,
                            value: Value::Bool(j % 2 == 0),
                        }],
                        Box::new(move |r| {
                            completions.fetch_add(1, Ordering::SeqCst);
                            match r {
                                Ok(()) => acked.lock().unwrap().push(ts),
                                Err(StoreError::Closed) => {}
                                Err(e) => panic!("unexpected {e}"),
                            }
                        }),
                    );
                    // Spread the submissions so the close lands in the middle of them.
                    thread::sleep(std::time::Duration::from_micros(100));
                }
            })
        })
        .collect();
    thread::sleep(std::time::Duration::from_millis(5));
    store.close().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(
        completions.load(Ordering::SeqCst),
        600,
        "every completion ran once"
    );
    drop(store);

    let mut acked = acked.lock().unwrap().clone();
    acked.sort_unstable();
    let store = Store::open(dir.path(), opts()).unwrap();
    let stored: Vec<i64> = store
        .range("t", "s", i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|p| p.ts)
        .collect();
    assert_eq!(stored, acked, "exactly the acked rows are durable");
}

#[test]
fn delete_twin_is_durable_and_later_points_survive() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    store.write(batch(1)).unwrap();
    store.write(batch(2)).unwrap();
    store.delete_twin("pump").unwrap();
    assert!(store.as_of("pump", i64::MAX).is_empty());
    store.write(batch(0)).unwrap(); // older timestamp, written after the tombstone
    store.close().unwrap();
    drop(store);
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(batches_in(&store), vec![0]);
    assert_eq!(store.stats().series, 3);
}

#[test]
fn a_cut_replays_over_segment_files_and_a_torn_tail_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts()).unwrap();
    for i in 0..10 {
        store.write(batch(i)).unwrap();
    }
    // Batches 0..10 move into a segment file; the cut and what follows stay in the WAL.
    store.checkpoint().unwrap();
    for i in 10..15 {
        store.write(batch(i)).unwrap();
    }
    store.drop_before("pump", None, 5).unwrap();
    store.write(batch(2)).unwrap(); // older than the cut, written after it
    assert_eq!(batches_in(&store), [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    drop(store);
    // A record torn by the crash after the cut.
    let seg = last_segment(dir.path());
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
    drop(f);

    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(batches_in(&store), [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(store.stats().points, 3 * 11);
    // Once a checkpoint covers the cut, the segment files no longer hold the old points.
    store.checkpoint().unwrap();
    drop(store);
    let store = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(batches_in(&store), [2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(store.stats().points, 3 * 11);
}

#[test]
fn a_path_that_is_a_file_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = Store::open(&file, opts()).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    // A directory where a segment should be.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("wal").join("00000001.wal")).unwrap();
    let err = Store::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn read_only_directory_is_an_error_not_a_panic() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), 2);
    let wal = dir.path().join("wal");
    let seg = last_segment(dir.path());
    fs::set_permissions(&seg, fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(&wal, fs::Permissions::from_mode(0o555)).unwrap();
    let restore = || {
        fs::set_permissions(&wal, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&seg, fs::Permissions::from_mode(0o644)).unwrap();
    };

    // Root (as in many containers) ignores permission bits; then there is nothing to test.
    let probe = wal.join("probe");
    if fs::write(&probe, b"").is_ok() {
        let _ = fs::remove_file(&probe);
        restore();
        eprintln!("skipping: permissions are not enforced for this user");
        return;
    }
    let result = Store::open(dir.path(), opts());
    restore();
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err}");

    let fresh = tempfile::tempdir().unwrap();
    fs::set_permissions(fresh.path(), fs::Permissions::from_mode(0o555)).unwrap();
    let result = Store::open(fresh.path().join("data"), opts());
    fs::set_permissions(fresh.path(), fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(
        result,
        Err(StoreError::Io {
            op: "create directory",
            ..
        })
    ));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), opts()).unwrap();
    first.write(batch(0)).unwrap();
    let err = Store::open(dir.path(), opts()).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    // Still writable after the refused open: the refused one touched nothing.
    first.write(batch(1)).unwrap();
    first.close().unwrap();
    drop(first);
    let again = Store::open(dir.path(), opts()).unwrap();
    assert_eq!(batches_in(&again), vec![0, 1]);
}
