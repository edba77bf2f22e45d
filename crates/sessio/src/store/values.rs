//! [`Values`]: one session's keys and encoded values, kept in one buffer.

use std::fmt;

use serde::{
    de::{MapAccess, SeqAccess, Visitor},
    ser::SerializeMap,
    Deserialize, Deserializer, Serialize, Serializer,
};

/// The values of one session: UTF-8 keys to encoded bytes.
///
/// All entries live back to back in one buffer, each a key length and a value length
/// (LEB128) followed by the key and the value. Sessions hold a handful of keys, so a
/// lookup scans instead of hashing, a clone is one allocation and one copy, and a
/// session at rest in memory costs one heap block for all its values (a hash map of
/// strings and byte buffers costs a table plus two blocks per key). The price is a
/// linear lookup: fine for tens of keys, not meant for thousands.
///
/// Iteration yields entries in the order they were first inserted; replacing a value
/// with one of another length moves its entry to the end. Equality ignores order.
///
/// ```
/// use sessio::store::Values;
///
/// let mut values = Values::new();
/// values.insert("user", br#""iris""#);
/// values.insert("visits", b"3");
/// assert_eq!(values.get("visits"), Some(&b"3"[..]));
/// assert!(values.insert("visits", b"4")); // replaced
/// assert!(values.remove("user"));
/// assert_eq!(values.iter().collect::<Vec<_>>(), [("visits", &b"4"[..])]);
///
/// let same: Values = [("visits", "4")].into_iter().collect();
/// assert_eq!(values, same);
/// ```
#[derive(Clone, Default)]
pub struct Values {
    /// The entries, back to back. Nothing else: the memory store keeps every session's
    /// map behind an `Arc`, and a 24-byte map fits its allocator's 48-byte block where a
    /// count beside it would take 64.
    buf: Vec<u8>,
}

/// One entry, as positions in the buffer.
#[derive(Clone, Copy)]
struct Span {
    /// Where the entry's header starts.
    start: usize,
    /// Where the key starts (the value follows it).
    key: usize,
    key_len: usize,
    value_len: usize,
}

impl Span {
    fn value(self) -> usize {
        self.key + self.key_len
    }

    fn end(self) -> usize {
        self.value() + self.value_len
    }
}

impl Values {
    /// An empty map (no allocation).
    pub const fn new() -> Self {
        Values { buf: Vec::new() }
    }

    /// An empty map with room for `bytes` of keys and values (and their few bytes of
    /// framing) before it reallocates.
    pub fn with_capacity(bytes: usize) -> Self {
        Values {
            buf: Vec::with_capacity(bytes),
        }
    }

    /// How many keys the map holds (counted: a walk over the entries).
    pub fn len(&self) -> usize {
        self.raw_iter().count()
    }

    /// Whether the map holds no keys.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes the entries take, framing included (what a clone copies).
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.find(key).map(|s| &self.buf[s.value()..s.end()])
    }

    /// Whether the map holds `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// Sets `key` to `value`; returns whether the key was already there.
    pub fn insert(&mut self, key: &str, value: impl AsRef<[u8]>) -> bool {
        let value = value.as_ref();
        match self.find(key) {
            // The common case (a counter or a flag rewritten): overwrite in place.
            Some(s) if s.value_len == value.len() => {
                self.buf[s.value()..s.end()].copy_from_slice(value);
                true
            }
            Some(s) => {
                self.buf.drain(s.start..s.end());
                self.push(key.as_bytes(), value);
                true
            }
            None => {
                self.push(key.as_bytes(), value);
                false
            }
        }
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match self.find(key) {
            Some(s) => {
                self.buf.drain(s.start..s.end());
                true
            }
            None => false,
        }
    }

    /// Removes every key, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Keeps only the entries for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &[u8]) -> bool) {
        let mut kept = Values::with_capacity(self.buf.len());
        for (k, v) in self.iter() {
            if keep(k, v) {
                kept.push(k.as_bytes(), v);
            }
        }
        *self = kept;
    }

    /// Every key and its value.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            values: self,
            pos: 0,
        }
    }

    /// Every key and its value, the key as bytes: for scans that need no `&str`
    /// (and so no UTF-8 check).
    pub(crate) fn raw_iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            let s = self.span_at(pos)?;
            pos = s.end();
            Some((&self.buf[s.key..s.value()], &self.buf[s.value()..s.end()]))
        })
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &str> + '_ {
        self.iter().map(|(k, _)| k)
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        let needed = key.len() + value.len() + 4;
        // Small maps grow exactly: a session kept in memory then holds no spare
        // capacity. Larger ones grow geometrically, so that building one stays linear.
        if self.buf.len() < 512 {
            self.buf.reserve_exact(needed);
        } else {
            self.buf.reserve(needed);
        }
        write_len(&mut self.buf, key.len());
        write_len(&mut self.buf, value.len());
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
    }

    fn find(&self, key: &str) -> Option<Span> {
        let key = key.as_bytes();
        let mut pos = 0;
        while let Some(s) = self.span_at(pos) {
            if s.key_len == key.len() && &self.buf[s.key..s.value()] == key {
                return Some(s);
            }
            pos = s.end();
        }
        None
    }

    /// The entry starting at `pos`, if one does. The buffer is only ever written by
    /// `push`, so every entry is whole; a short read ends the walk all the same.
    fn span_at(&self, pos: usize) -> Option<Span> {
        let mut at = pos;
        let key_len = read_len(&self.buf, &mut at)?;
        let value_len = read_len(&self.buf, &mut at)?;
        let span = Span {
            start: pos,
            key: at,
            key_len,
            value_len,
        };
        (span.end() <= self.buf.len()).then_some(span)
    }
}

/// Lengths as LEB128: one byte below 128, which is what session keys and most values
/// need.
fn write_len(buf: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

#[inline]
fn read_len(buf: &[u8], at: &mut usize) -> Option<usize> {
    let first = *buf.get(*at)?;
    if first < 0x80 {
        *at += 1;
        return Some(usize::from(first));
    }
    read_long_len(buf, at)
}

fn read_long_len(buf: &[u8], at: &mut usize) -> Option<usize> {
    let mut n = 0usize;
    for shift in (0..usize::BITS).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        n |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte < 0x80 {
            return Some(n);
        }
    }
    None
}

/// The iterator of [`Values::iter`].
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    values: &'a Values,
    pos: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = &self.values.buf;
        let s = self.values.span_at(self.pos)?;
        self.pos = s.end();
        // Keys only ever enter as `&str`.
        let key = std::str::from_utf8(&buf[s.key..s.value()]).unwrap_or_default();
        Some((key, &buf[s.value()..s.end()]))
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = (&'a str, &'a [u8]);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> Extend<(K, V)> for Values {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k.as_ref(), v);
        }
    }
}

impl<K: AsRef<str>, V: AsRef<[u8]>> FromIterator<(K, V)> for Values {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut values = Values::new();
        values.extend(iter);
        values
    }
}

/// `values["key"]`, like a map's index: panics if `key` is absent (use
/// [`get`](Values::get) for a fallible lookup).
impl std::ops::Index<&str> for Values {
    type Output = [u8];

    fn index(&self, key: &str) -> &[u8] {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no value under {key:?}"),
        }
    }
}

impl PartialEq for Values {
    fn eq(&self, other: &Self) -> bool {
        self.buf.len() == other.buf.len()
            && self.len() == other.len()
            && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl Eq for Values {}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Raw<'a>(&'a [u8]);
        impl fmt::Debug for Raw<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "b\"{}\"", self.0.escape_ascii())
            }
        }
        f.debug_map()
            .entries(self.iter().map(|(k, v)| (k, Raw(v))))
            .finish()
    }
}

/// A map of string keys to byte strings (MessagePack `bin`), as a
/// `HashMap<String, Bytes>` was: sealed cookies made before this type still open.
impl Serialize for Values {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Raw<'a>(&'a [u8]);
        impl Serialize for Raw<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, &Raw(v))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Values {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ValuesVisitor)
    }
}

struct ValuesVisitor;

impl<'de> Visitor<'de> for ValuesVisitor {
    type Value = Values;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of strings to byte strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
        // The size hint comes from the input: cap what it may reserve.
        let mut values = Values::with_capacity(map.size_hint().unwrap_or(0).min(64) * 16);
        while let Some((k, v)) = map.next_entry::<std::borrow::Cow<'de, str>, ByteString>()? {
            values.insert(&k, v.0);
        }
        Ok(values)
    }
}

/// A value as any self-describing format writes bytes: a byte string, a string or a
/// sequence of small integers (JSON).
struct ByteString(Vec<u8>);

impl<'de> Deserialize<'de> for ByteString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = ByteString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ByteString, E> {
                Ok(ByteString(v.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ByteString, E> {
                Ok(ByteString(v))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteString, E> {
                Ok(ByteString(v.as_bytes().to_vec()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteString, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(ByteString(out))
            }
        }
        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, Vec<u8>),
        Remove(String),
        Clear,
        Retain(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct keys, so that replacing and removing happen often.
        let key = prop_oneof!["[a-d]", "[a-d]{2}", ".{0,3}", "k{100,140}"];
        prop_oneof![
            6 => (key.clone(), proptest::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(k, v)| Op::Insert(k, v)),
            2 => key.prop_map(Op::Remove),
            1 => Just(Op::Clear),
            1 => any::<u8>().prop_map(Op::Retain),
        ]
    }

    proptest! {
        /// Behaves exactly like a `HashMap<String, Vec<u8>>`.
        #[test]
        fn matches_a_hash_map(ops in proptest::collection::vec(op(), 0..60)) {
            let mut values = Values::new();
            let mut model: HashMap<String, Vec<u8>> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(values.insert(&k, &v), model.insert(k, v).is_some());
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(values.remove(&k), model.remove(&k).is_some());
                    }
                    Op::Clear => {
                        values.clear();
                        model.clear();
                    }
                    Op::Retain(b) => {
                        let keep = |k: &str, v: &[u8]| (k.len() + v.len()) % 3 != usize::from(b % 3);
                        values.retain(keep);
                        model.retain(|k, v| keep(k, v));
                    }
                }
                prop_assert_eq!(values.len(), model.len());
                for (k, v) in &model {
                    prop_assert_eq!(values.get(k), Some(&v[..]));
                }
                let listed: HashMap<String, Vec<u8>> =
                    values.iter().map(|(k, v)| (k.to_owned(), v.to_vec())).collect();
                prop_assert_eq!(&listed, &model);
            }
            let rebuilt: Values = model.iter().collect::<Vec<_>>().into_iter().rev()
                .map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            prop_assert_eq!(&rebuilt, &values);
        }

        /// MessagePack and JSON round trips, and MessagePack's bytes equal those of the
        /// `HashMap<String, Bytes>` that sealed cookies used to carry.
        #[test]
        fn serde_round_trips(entries in proptest::collection::btree_map(".{0,8}", proptest::collection::vec(any::<u8>(), 0..40), 0..6)) {
            let values: Values = entries.iter().collect();
            let packed = rmp_serde::to_vec(&values).unwrap();
            prop_assert_eq!(rmp_serde::from_slice::<Values>(&packed).unwrap(), values.clone());
            let json = serde_json::to_vec(&values).unwrap();
            prop_assert_eq!(serde_json::from_slice::<Values>(&json).unwrap(), values.clone());
            let old: HashMap<String, Bytes> =
                entries.iter().map(|(k, v)| (k.clone(), Bytes::from(v.clone()))).collect();
            let from_old = rmp_serde::from_slice::<Values>(&rmp_serde::to_vec(&old).unwrap()).unwrap();
            prop_assert_eq!(from_old, values);
        }

        /// No input makes deserializing panic.
        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = rmp_serde::from_slice::<Values>(&bytes);
        }
    }

    #[test]
    fn a_map_is_one_vec_and_nothing_else() {
        // What keeps the memory store's `Arc<Values>` in a 48-byte allocator block.
        assert_eq!(
            std::mem::size_of::<Values>(),
            std::mem::size_of::<Vec<u8>>()
        );
    }

    #[test]
    fn lengths_over_127_use_more_bytes_and_still_read_back() {
        let long = vec![7u8; 70_000];
        let mut values = Values::new();
        values.insert("a", b"1");
        values.insert("long", &long);
        values.insert("b", b"2");
        assert_eq!(values.get("long"), Some(&long[..]));
        assert_eq!(values.get("b"), Some(&b"2"[..]));
        assert_eq!(values.encoded_len(), 2 + 2 + 1 + 3 + 4 + 70_000 + 2 + 2);
    }

    #[test]
    fn a_same_length_replace_stays_in_place_and_another_moves_to_the_end() {
        let mut values: Values = [("a", "1"), ("b", "2")].into_iter().collect();
        values.insert("a", "9");
        assert_eq!(values.keys().collect::<Vec<_>>(), ["a", "b"]);
        values.insert("a", "10");
        assert_eq!(values.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(format!("{values:?}"), r#"{"b": b"2", "a": b"10"}"#);
    }
}
