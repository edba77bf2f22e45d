//! File names for store keys: lowercase hex of the key bytes plus `.session`; and
//! directory names for users: lowercase hex of the SHA-256 of the user.
//!
//! Hex uses only `0-9a-f`, so no key or user (whatever bytes a custom id generator, a
//! forged cookie or a user name puts in it) can name `..`, a separator, a device or a
//! hidden file, and two never map to names that a case-insensitive filesystem would
//! merge. Users are hashed because their names may be longer than a file name may be.

use sha2::{Digest, Sha256};

/// Longest key the store accepts, in bytes: its name (2 characters per byte plus the
/// suffix) must fit the 255-byte file name limit of common filesystems.
pub(crate) const MAX_KEY_BYTES: usize = 120;

pub(crate) const SUFFIX: &str = ".session";
pub(crate) const TMP_PREFIX: &str = ".tmp-";
/// The subdirectory of the user index: one directory per user, one empty file per
/// session of that user, named like the session's file.
pub(crate) const USERS_DIR: &str = "users";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The file name for `key`, or `None` when the key is too long to be stored.
pub(crate) fn file_name(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return None;
    }
    let mut name = hex(key.as_bytes());
    name.push_str(SUFFIX);
    Some(name)
}

/// The name of the index directory of `user`: 64 hex digits.
pub(crate) fn user_dir(user: &str) -> String {
    hex(&Sha256::digest(user.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// The key a file name stands for; `None` for any other file.
pub(crate) fn key_of(name: &str) -> Option<String> {
    let hex = name.strip_suffix(SUFFIX)?.as_bytes();
    if hex.is_empty() || hex.len() % 2 != 0 || hex.len() > MAX_KEY_BYTES * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let bytes = hex
        .chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// A redacted form of a file name for errors and logs: keys are session ids (secrets),
/// so only the first 8 hex digits (4 bytes of the key) are shown, enough to find the
/// file with `ls DIR/3f2a9c1b*`.
pub(crate) fn redacted(name: &str) -> String {
    format!("{}…{SUFFIX}", &name[..name.len().min(8)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_stay_in_the_directory() {
        for key in [
            "a",
            "../../etc/passwd",
            "/abs",
            "K\u{0}\\x",
            "ключ✓",
            "AbC-_~.",
        ] {
            let name = file_name(key).unwrap();
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b".session".contains(&b)));
            assert!(!name.contains('/') && !name.starts_with('.'));
            assert_eq!(key_of(&name).as_deref(), Some(key));
        }
        assert_eq!(file_name(""), None);
        assert!(file_name(&"x".repeat(MAX_KEY_BYTES)).unwrap().len() <= 255);
        assert_eq!(file_name(&"x".repeat(MAX_KEY_BYTES + 1)), None);
        for other in [".tmp-1-2", "AB.session", "abc.session", "zz.session", "x"] {
            assert_eq!(key_of(other), None, "{other}");
        }
    }

    #[test]
    fn user_dirs_are_fixed_length_hex_and_distinct() {
        let long = "u".repeat(10_000);
        let users = ["alice", "Alice", "../..", "", "a/b\\c\u{0}", long.as_str()];
        let dirs: Vec<String> = users.iter().map(|u| user_dir(u)).collect();
        for dir in &dirs {
            assert_eq!(dir.len(), 64);
            assert!(dir
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
        let distinct: std::collections::HashSet<&String> = dirs.iter().collect();
        assert_eq!(distinct.len(), users.len());
        // Stable across runs and versions: the directories are on disk.
        assert_eq!(
            user_dir("alice"),
            "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
        );
    }
}
