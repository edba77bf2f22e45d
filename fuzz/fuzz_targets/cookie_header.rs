//! Cookie header parsing for server-side sessions (plain, signed and encrypted ids):
//! any bytes yield no id or a well-formed one, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessio::{
    secure::{Key, Keys},
    Sessions,
};

fuzz_target!(|data: &[u8]| {
    let keys = Keys::new(Key::from_bytes(&[5; 32]).unwrap());
    for sessions in [
        Sessions::builder().build().unwrap(),
        Sessions::builder().signed_ids(keys.clone()).build().unwrap(),
        Sessions::builder().encrypted_ids(keys).build().unwrap(),
    ] {
        let lazy = sessions.lazy_from_cookie_headers([data], false);
        let _ = lazy.has_cookie();
    }
});
