//! The on-disk record format shared by sessio's embedded stores (this crate's
//! [`FileStore`](crate::FileStore) and `sessio-redb`).
//!
//! A record is one session: its deadline and its values. The layout (all integers
//! little-endian) is versioned so that a later release can read what this one wrote:
//!
//! | bytes | field |
//! |---|---|
//! | 3 | magic `SSR` |
//! | 1 | format version, `1` |
//! | 1 | flags: bit 0 set when the session has a deadline |
//! | 8 | deadline, milliseconds since the Unix epoch (0 when there is none) |
//! | 4 | number of entries `n` |
//! | n × | `u32` key length, key (UTF-8), `u32` value length, value |
//!
//! [`decode`] checks every length against the bytes that are left before it reads, so
//! garbage, truncated or hostile input is a [`FormatError`], never a panic or a huge
//! allocation.
//!
//! ```
//! use std::{sync::Arc, time::{Duration, UNIX_EPOCH}};
//! use sessio::store::{Record, Values};
//! use sessio_fs::format;
//!
//! let mut values = Values::default();
//! values.insert("user", "\"iris\"");
//! let deadline = Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_123));
//! let bytes = format::encode(&values, deadline);
//! let back = format::decode(&bytes).unwrap();
//! assert_eq!(back, Record { values: Arc::new(values), expires_at: deadline });
//! assert_eq!(format::decode_deadline(&bytes).unwrap(), deadline);
//! assert!(format::decode(b"garbage").is_err());
//! ```

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use sessio::store::{Record, Values};

const MAGIC: &[u8; 3] = b"SSR";
const VERSION: u8 = 1;
const FLAG_DEADLINE: u8 = 1;
/// Bytes before the first entry.
pub const HEADER_LEN: usize = 3 + 1 + 1 + 8 + 4;

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// The bytes do not start with the record magic: not a sessio record at all.
    #[error("not a sessio record (bad magic bytes)")]
    BadMagic,
    /// Written by a newer sessio with a format this version cannot read.
    #[error(
        "record format version {0} is not supported (this build reads version 1); upgrade sessio"
    )]
    UnsupportedVersion(u8),
    /// Unknown flag bits (written by a newer version, or garbage).
    #[error("unknown record flags {0:#04x}")]
    UnknownFlags(u8),
    /// The record ends before a field it announces.
    #[error("record truncated: {what} at byte {offset} needs {needed} bytes, {left} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// How many bytes are left.
        left: usize,
    },
    /// A key is not UTF-8.
    #[error("key at byte {offset} is not UTF-8")]
    KeyNotUtf8 {
        /// Where the key starts.
        offset: usize,
    },
    /// A key appears twice.
    #[error("key at byte {offset} appears twice")]
    DuplicateKey {
        /// Where the second copy starts.
        offset: usize,
    },
    /// Bytes follow the last entry.
    #[error("{0} unexpected bytes after the last entry")]
    TrailingBytes(usize),
}

/// Milliseconds since the epoch; times before it count as the epoch (long expired).
fn to_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The expiry-index form of a deadline: milliseconds since the Unix epoch.
pub fn deadline_millis(t: SystemTime) -> u64 {
    to_millis(t)
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 1000))
}

fn len_u32(n: usize) -> [u8; 4] {
    // Keys and values longer than 4 GiB cannot occur in a session (and would not fit
    // any store); saturate rather than panic, decode then reports the record truncated.
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// Encodes a session record.
pub fn encode(values: &Values, expires_at: Option<SystemTime>) -> Vec<u8> {
    let size = HEADER_LEN
        + values
            .iter()
            .map(|(k, v)| 8 + k.len() + v.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.push(if expires_at.is_some() {
        FLAG_DEADLINE
    } else {
        0
    });
    out.extend_from_slice(&expires_at.map_or(0, to_millis).to_le_bytes());
    out.extend_from_slice(&len_u32(values.len()));
    for (k, v) in values {
        out.extend_from_slice(&len_u32(k.len()));
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&len_u32(v.len()));
        out.extend_from_slice(v);
    }
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FormatError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(FormatError::Truncated {
                what,
                offset: self.pos,
                needed: n,
                left,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u32(&mut self, what: &'static str) -> Result<usize, FormatError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }
}

fn header(bytes: &[u8]) -> Result<(Option<SystemTime>, Reader<'_>), FormatError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.take(3, "magic").map_err(|_| FormatError::BadMagic)? != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = r.take(1, "version")?[0];
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let flags = r.take(1, "flags")?[0];
    if flags & !FLAG_DEADLINE != 0 {
        return Err(FormatError::UnknownFlags(flags));
    }
    let raw = r.take(8, "deadline")?;
    let mut ms = [0u8; 8];
    ms.copy_from_slice(raw);
    let deadline = (flags & FLAG_DEADLINE != 0).then(|| from_millis(u64::from_le_bytes(ms)));
    Ok((deadline, r))
}

/// Reads only the deadline from the header (for expiry scans that need not decode
/// the values).
pub fn decode_deadline(bytes: &[u8]) -> Result<Option<SystemTime>, FormatError> {
    header(bytes).map(|(deadline, _)| deadline)
}

/// Decodes a record written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Record, FormatError> {
    let (expires_at, mut r) = header(bytes)?;
    let n = r.u32("entry count")?;
    // Every entry takes at least 8 bytes: a count larger than that is garbage, and
    // checking it first bounds the allocation below by the input size.
    let left = bytes.len() - r.pos;
    if n > left / 8 {
        return Err(FormatError::Truncated {
            what: "entries",
            offset: r.pos,
            needed: n.saturating_mul(8),
            left,
        });
    }
    let mut values = Values::with_capacity(bytes.len());
    for _ in 0..n {
        let key_len = r.u32("key length")?;
        let offset = r.pos;
        let key = std::str::from_utf8(r.take(key_len, "key")?)
            .map_err(|_| FormatError::KeyNotUtf8 { offset })?;
        let value_len = r.u32("value length")?;
        let value = r.take(value_len, "value")?;
        if values.insert(key, value) {
            return Err(FormatError::DuplicateKey { offset });
        }
    }
    if r.pos != bytes.len() {
        return Err(FormatError::TrailingBytes(bytes.len() - r.pos));
    }
    Ok(Record {
        values: Arc::new(values),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    #[test]
    fn round_trips_without_deadline_and_empty() {
        let values = Values::default();
        let back = decode(&encode(&values, None)).unwrap();
        assert_eq!(back.expires_at, None);
        assert!(back.values.is_empty());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut values = Values::default();
        values.insert("a", b"hello");
        values.insert("ключ", [0, 255, 7]);
        let bytes = encode(&values, Some(SystemTime::now()));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(FormatError::TrailingBytes(1)));
    }

    #[test]
    fn huge_counts_do_not_allocate() {
        let mut bytes = encode(&Values::default(), None);
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&bytes),
            Err(FormatError::Truncated {
                what: "entries",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
            let mut framed = b"SSR\x01\x00".to_vec();
            framed.extend_from_slice(&bytes);
            let _ = decode(&framed);
        }

        #[test]
        fn round_trips(entries in proptest::collection::hash_map("\\PC{0,12}", proptest::collection::vec(any::<u8>(), 0..40), 0..8), ms in proptest::option::of(0u64..1u64 << 45)) {
            let values: Values = entries.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect();
            let deadline = ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
            let back = decode(&encode(&values, deadline)).unwrap();
            prop_assert_eq!(&*back.values, &values);
            prop_assert_eq!(back.expires_at, deadline);
        }
    }
}
