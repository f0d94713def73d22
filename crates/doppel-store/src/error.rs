//! The one error type of the store. Every variant carries what failed (file and operation,
//! byte offset, twin and signal) so a log line or an HTTP body can say what happened.

use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file-system call failed; `op` names it ("fsync", "write", "open", ...).
    #[error("{op} of {} failed: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: std::io::Error,
    },

    /// A WAL segment holds bytes that cannot be a torn tail: a bad record followed by more
    /// segments, an unknown header, or a record whose checksum matches but whose content does
    /// not decode. The store refuses to open rather than silently dropping acknowledged data.
    #[error("WAL segment {} is corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// The store was closed (or its writer thread is gone); nothing more can be written.
    #[error("the store is closed")]
    Closed,

    /// Another open store (a running server, in this or another process) holds the lock of
    /// this directory; two writers would corrupt each other.
    #[error("{} is in use: another process (a running server?) has this store open", path.display())]
    Locked { path: PathBuf },

    /// A numeric aggregate was asked of a series that holds text values.
    #[error("signal {signal:?} of twin {twin:?} holds text values, which only support the count aggregate")]
    NotNumeric { twin: String, signal: String },

    /// Query parameters that cannot be answered (step <= 0, from > to, too many buckets).
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// A row that the WAL format cannot hold (a twin or signal name longer than 65535 bytes,
    /// a string value longer than 4 GiB). Nothing of its batch was written.
    #[error("row of twin {twin:?}, signal {signal:?} cannot be stored: {reason}")]
    InvalidRow {
        twin: String,
        signal: String,
        reason: String,
    },

    /// One `write` call whose rows encode to more than one WAL record may hold. Nothing of it
    /// was written; split the batch.
    #[error("batch encodes to {bytes} bytes, more than the {limit}-byte WAL record limit")]
    BatchTooLarge { bytes: usize, limit: usize },
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// A copy of this error for another waiter of the same failed group commit: every writer
    /// of a batch gets its own error value, and `std::io::Error` is not `Clone`.
    pub(crate) fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Io { path, op, source } => StoreError::Io {
                path: path.clone(),
                op,
                // Keep the OS error code: callers map ENOSPC to "507 Insufficient Storage".
                source: match source.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(source.kind(), source.to_string()),
                },
            },
            StoreError::Corrupt {
                path,
                offset,
                reason,
            } => StoreError::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            StoreError::Closed => StoreError::Closed,
            StoreError::Locked { path } => StoreError::Locked { path: path.clone() },
            StoreError::NotNumeric { twin, signal } => StoreError::NotNumeric {
                twin: twin.clone(),
                signal: signal.clone(),
            },
            StoreError::InvalidQuery(s) => StoreError::InvalidQuery(s.clone()),
            StoreError::InvalidRow {
                twin,
                signal,
                reason,
            } => StoreError::InvalidRow {
                twin: twin.clone(),
                signal: signal.clone(),
                reason: reason.clone(),
            },
            StoreError::BatchTooLarge { bytes, limit } => StoreError::BatchTooLarge {
                bytes: *bytes,
                limit: *limit,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_message_names_file_and_operation() {
        let e = StoreError::io(
            "wal/00000001.wal",
            "fsync",
            std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"),
        );
        assert_eq!(
            e.to_string(),
            "fsync of wal/00000001.wal failed: No space left on device"
        );
        let d = e.duplicate();
        assert_eq!(d.to_string(), e.to_string());
        assert!(matches!(d, StoreError::Io { op: "fsync", .. }));
    }

    #[test]
    fn duplicates_keep_the_os_error_code() {
        let e = StoreError::io("x", "write", std::io::Error::from_raw_os_error(28));
        match e.duplicate() {
            StoreError::Io { source, .. } => {
                assert_eq!(source.raw_os_error(), Some(28));
                assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
            }
            other => panic!("{other:?}"),
        }
    }
}
