//! Fuzzes kubelet's credential-key matching: never panics, and the compiled index answers
//! exactly what checking every key one by one answers.
//!
//! Input: newline-separated lines; the last line is the image, the others are keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocistore_core::credmatch::{self, KeyKind, Matcher};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some(image) = lines.pop() else {
        return;
    };
    let keys: Vec<&str> = lines.into_iter().take(64).collect();
    for key in &keys {
        let _ = credmatch::urls_match(key, image);
        let _ = credmatch::normalize_config_key(key.as_bytes());
        let _ = credmatch::pattern_problem(key.as_bytes());
    }
    for kind in [KeyKind::ConfigKey, KeyKind::Pattern] {
        let matcher = Matcher::new(&keys, kind, kind == KeyKind::ConfigKey);
        assert_eq!(matcher.lookup(image), matcher.lookup_linear(image));
    }
});
