//! `cargo +nightly fuzz run http`: a few requests in a row, read from the input, → the
//! real router over a fresh memory store (the properties are in
//! `chat-transport-ws/tests/fuzz_checks/http.rs`).
#![no_main]

#[allow(dead_code)]
#[path = "../../chat-transport-ws/tests/fuzz_checks/mod.rs"]
mod checks;
mod common;

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use checks::http::{
    BodyChoice, Caller, Harness, MethodChoice, Param, Step, Target, CONTENT_TYPES, FIELD_NAMES,
    QUERY_NAMES,
};
use common::{json, list, name};

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new)
}

fn param(u: &mut Unstructured<'_>) -> Result<Param> {
    Ok(match u.int_in_range(0..=8)? {
        0..=3 => Param::Known(u.arbitrary()?),
        4 => Param::Uuid(u.arbitrary()?),
        5 => Param::Number(u.arbitrary()?),
        6 | 7 => Param::Text(name(
            u,
            &["general", "bob", "alice", "true", "request", "online"],
        )?),
        _ => Param::Raw(u.arbitrary()?),
    })
}

fn step(u: &mut Unstructured<'_>) -> Result<Step> {
    let caller = Caller {
        user: u.int_in_range(0..=1)?,
        admin_key: if u.ratio(1, 5)? {
            Some(u.arbitrary()?)
        } else {
            None
        },
    };
    let method = match u.int_in_range(0..=8)? {
        0..=5 => MethodChoice::Documented,
        6 | 7 => MethodChoice::Named(u.arbitrary()?),
        _ => MethodChoice::Other(u.arbitrary()?),
    };
    let target = if u.ratio(8, 9)? {
        Target::Route(u.arbitrary()?, list(u, 2, param)?)
    } else {
        Target::UnderApi(u.arbitrary()?)
    };
    let query = list(u, 2, |u| Ok((name(u, QUERY_NAMES)?, param(u)?)))?;
    let body = match u.int_in_range(0..=3)? {
        0 => BodyChoice::Empty,
        1 => BodyChoice::Bytes(u.arbitrary()?),
        _ => BodyChoice::Fields(list(u, 3, |u| Ok((name(u, FIELD_NAMES)?, json(u, 2)?)))?),
    };
    let content_type = if u.ratio(1, 2)? {
        Some(name(u, CONTENT_TYPES)?)
    } else {
        None
    };
    Ok(Step {
        caller,
        method,
        target,
        query,
        body,
        content_type,
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(steps) = (1..=5)
        .map_while(|_| (!u.is_empty()).then(|| step(&mut u)))
        .collect::<Result<Vec<Step>>>()
    else {
        return;
    };
    harness().check(&steps);
});
