//! The id verifiers: plain, signed and encrypted id cookie values. Any input is
//! rejected or yields a valid id; a value made by `encode` always verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessio::{
    secure::{IdCookie, Key, Keys},
    SessionId,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let keys = Keys::new(Key::from_bytes(&[1; 32]).unwrap()).with_previous(Key::from_bytes(&[2; 32]).unwrap());
    for mode in [IdCookie::Plain, IdCookie::Signed(keys.clone()), IdCookie::Encrypted(keys)] {
        if let Some((id, _)) = mode.decode("sessio", text) {
            assert!(SessionId::parse(id.as_str()).is_some());
            let again = mode.encode("sessio", &id);
            assert_eq!(mode.decode("sessio", &again).map(|(i, _)| i), Some(id));
        }
    }
});
