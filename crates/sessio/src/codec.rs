//! The value codec: how typed values become the bytes that stores keep.

use arrayvec::ArrayVec;
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::BoxError;

/// How session values are serialized (Iris's `Encoding`).
///
/// Every store keeps the encoded bytes as they are; only the session handle encodes and
/// decodes. Counters written by [`Session::increment`](crate::Session::increment) are
/// kept as ASCII decimal integers (what Redis `HINCRBY` and SQL arithmetic work on),
/// which is also their JSON form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// JSON via `serde_json` (the default): readable in any store, interoperable.
    #[default]
    Json,
    /// MessagePack via `rmp-serde`: smaller and faster for structured values. Encoded
    /// values start with the byte `0xC1` (never used by MessagePack itself) so that they
    /// cannot be mistaken for the decimal counters that `increment` writes; a counter
    /// decodes as any integer type. A value `set` with this codec cannot be incremented.
    MessagePack,
}

/// Marks MessagePack values (a byte MessagePack never emits).
const MSGPACK_MARK: u8 = 0xC1;

/// Values up to this size are encoded without a heap buffer (see [`Codec::encode`]).
const SMALL: usize = 128;

/// A value that the codec could not encode or decode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(#[source] BoxError);

impl Codec {
    /// Serializes `value`.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, CodecError> {
        // Small values (most) are written on the stack, then copied into an allocation
        // of their exact size: a `Vec` (serde_json starts one at 128 bytes) would be kept
        // whole by `Bytes`, for as long as a store keeps the value.
        let mut small = ArrayVec::<u8, SMALL>::new();
        let written = match self {
            Codec::Json => serde_json::to_writer(&mut small, value).map_err(BoxError::from),
            Codec::MessagePack => {
                small.push(MSGPACK_MARK);
                rmp_serde::encode::write_named(&mut small, value).map_err(BoxError::from)
            }
        };
        match written {
            Ok(()) => return Ok(Bytes::copy_from_slice(&small)),
            // A full buffer: the value is larger; anything else is a real error.
            Err(e) if !small.is_full() => return Err(CodecError(e)),
            Err(_) => {}
        }
        match self {
            Codec::Json => serde_json::to_vec(value)
                .map(Bytes::from)
                .map_err(|e| CodecError(e.into())),
            Codec::MessagePack => {
                let mut out = vec![MSGPACK_MARK];
                rmp_serde::encode::write_named(&mut out, value)
                    .map_err(|e| CodecError(e.into()))?;
                Ok(Bytes::from(out))
            }
        }
    }

    /// Deserializes `bytes` as a `T`; garbage or a value of another type is an error.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| CodecError(e.into())),
            Codec::MessagePack => match bytes.split_first() {
                Some((&MSGPACK_MARK, rest)) => {
                    rmp_serde::from_slice(rest).map_err(|e| CodecError(e.into()))
                }
                _ => {
                    let n = crate::store::parse_counter(bytes).ok_or_else(|| {
                        CodecError("neither a MessagePack value nor a counter".into())
                    })?;
                    T::deserialize(
                        serde::de::value::I64Deserializer::<serde::de::value::Error>::new(n),
                    )
                    .map_err(|e| CodecError(e.into()))
                }
            },
        }
    }

    /// Decodes to a dynamic JSON value (for `get_all`, admin views and the demo).
    pub fn decode_json(self, bytes: &[u8]) -> Result<serde_json::Value, CodecError> {
        self.decode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Codec::Json.decode::<serde_json::Value>(&bytes);
            let _ = Codec::Json.decode::<i64>(&bytes);
            let _ = Codec::Json.decode::<String>(&bytes);
        }

        #[test]
        fn roundtrip_strings(s in ".*") {
            let b = Codec::Json.encode(&s).unwrap();
            prop_assert_eq!(Codec::Json.decode::<String>(&b).unwrap(), s);
        }

        #[test]
        fn roundtrip_integers_are_decimal(n in any::<i64>()) {
            let b = Codec::Json.encode(&n).unwrap();
            let text = n.to_string();
            prop_assert_eq!(&b[..], text.as_bytes());
            prop_assert_eq!(Codec::Json.decode::<i64>(&b).unwrap(), n);
        }
    }

    #[test]
    fn message_pack_round_trips_and_reads_counters() {
        let c = Codec::MessagePack;
        let b = c.encode(&vec!["a", "b"]).unwrap();
        assert_eq!(b[0], 0xC1);
        assert_eq!(c.decode::<Vec<String>>(&b).unwrap(), vec!["a", "b"]);
        assert_eq!(c.decode::<u8>(b"42").unwrap(), 42);
        assert_eq!(c.decode::<i64>(b"-7").unwrap(), -7);
        assert!(c.decode::<String>(b"42").is_err());
        assert!(c.decode::<i64>(b"\x01garbage").is_err());
        assert_eq!(
            c.decode_json(&c.encode(&7u32).unwrap()).unwrap(),
            serde_json::json!(7)
        );
    }

    proptest! {
        #[test]
        fn message_pack_any_bytes_decode_or_error(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Codec::MessagePack.decode::<serde_json::Value>(&bytes);
            let _ = Codec::MessagePack.decode::<i64>(&bytes);
        }
    }

    #[test]
    fn values_around_the_stack_buffer_size_round_trip() {
        for codec in [Codec::Json, Codec::MessagePack] {
            for len in [0, 120, 125, 126, 127, 128, 129, 1000] {
                let s = "x".repeat(len);
                let b = codec.encode(&s).unwrap();
                assert_eq!(codec.decode::<String>(&b).unwrap(), s, "{codec:?} {len}");
            }
        }
        assert_eq!(&Codec::Json.encode(&"x".repeat(126)).unwrap().len(), &128);
    }

    #[test]
    fn encode_errors_are_errors_whatever_the_size() {
        // JSON object keys must be strings.
        let small = std::collections::BTreeMap::from([((1, 2), 3)]);
        assert!(Codec::Json.encode(&small).is_err());
        // Past the stack buffer first, then the error.
        assert!(Codec::Json.encode(&("x".repeat(200), small)).is_err());
    }

    #[test]
    fn wrong_type_is_an_error() {
        let b = Codec::Json.encode("text").unwrap();
        assert!(Codec::Json.decode::<i64>(&b).is_err());
    }
}
