//! The store conformance suite against the in-memory store.

use std::sync::Arc;

use chat_core::memory::MemoryStore;
use chat_core::ports::Store;

chat_core::conformance_tests!(|| async { Arc::new(MemoryStore::new()) as Arc<dyn Store> });

/// The macro is the one list of behaviours: every `pub async fn` of the suite is in it,
/// so a new behaviour cannot be written and then forgotten by every store.
#[test]
fn every_behaviour_is_run_by_the_macro() {
    let sources = [
        include_str!("../src/conformance/log.rs"),
        include_str!("../src/conformance/marks.rs"),
        include_str!("../src/conformance/history.rs"),
        include_str!("../src/conformance/conversations.rs"),
        include_str!("../src/conformance/people.rs"),
    ];
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/conformance"))
        .expect("the suite's folder")
        .count();
    assert_eq!(
        files,
        sources.len() + 1,
        "a new file of behaviours is read here too"
    );
    let mod_rs = include_str!("../src/conformance/mod.rs");
    let list = &mod_rs[mod_rs
        .find("macro_rules! conformance_tests")
        .expect("the macro")..];
    let mut checked = 0;
    for source in sources {
        for line in source.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let name = rest.split('(').next().unwrap_or_default();
            assert!(
                list.contains(&format!("            {name},"))
                    || list.contains(&format!("            {name}\n")),
                "conformance::{name} is not in conformance_tests!"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "the scan found the behaviours ({checked})");
}
