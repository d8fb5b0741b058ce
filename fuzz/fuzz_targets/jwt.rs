//! `cargo +nightly fuzz run jwt`: every input is tried twice against the authenticator,
//! as a token (its bytes as text) and as a token built from header and claims read from
//! the same bytes (the properties are in `chat-transport-ws/tests/fuzz_checks/jwt.rs`).
#![no_main]

#[allow(dead_code)]
#[path = "../../chat-transport-ws/tests/fuzz_checks/mod.rs"]
mod checks;
mod common;

use std::sync::OnceLock;

use arbitrary::{Result, Unstructured};
use checks::jwt::{Harness, Hmac, Signing, Time, TokenCase, ALGS, CLAIM_NAMES};
use common::{json, list, name};
use serde_json::Value;

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(Harness::new)
}

fn time(u: &mut Unstructured<'_>) -> Result<Time> {
    Ok(match u.int_in_range(0..=5)? {
        0..=2 => Time::FromNow(u.int_in_range(-100_000..=100_000)?),
        3 => Time::FromNow(u.arbitrary()?),
        4 => Time::FractionFromNow(u.arbitrary()?),
        _ => Time::Json(json(u, 2)?),
    })
}

fn hmac(u: &mut Unstructured<'_>) -> Result<Hmac> {
    u.choose(&Hmac::ALL).copied()
}

fn case(u: &mut Unstructured<'_>) -> Result<TokenCase> {
    let alg = match u.int_in_range(0..=9)? {
        0 => None,
        1..=8 => Some((*u.choose(ALGS)?).to_owned()),
        _ => Some(u.arbitrary()?),
    };
    let header = list(u, 2, |u| {
        Ok((
            name(u, &["typ", "kid", "cty", "jku", "x5t", "crit", "alg"])?,
            json(u, 2)?,
        ))
    })?;
    let sub = match u.int_in_range(0..=5)? {
        0 => None,
        1..=4 => Some(Value::from(name(u, &["alice", "bob", "a", "x_1"])?)),
        _ => Some(json(u, 2)?),
    };
    let exp = if u.ratio(9, 10)? {
        Some(time(u)?)
    } else {
        None
    };
    let nbf = if u.ratio(1, 3)? { Some(time(u)?) } else { None };
    let display = if u.ratio(1, 3)? {
        Some(json(u, 1)?)
    } else {
        None
    };
    let claims = list(u, 3, |u| Ok((name(u, CLAIM_NAMES)?, json(u, 2)?)))?;
    let signing = match u.int_in_range(0..=7)? {
        0..=3 => Signing::Secret(hmac(u)?),
        4 | 5 => Signing::OtherKey(u.arbitrary()?, hmac(u)?),
        6 => Signing::Unsigned,
        _ => Signing::Raw(u.arbitrary()?),
    };
    Ok(TokenCase {
        alg,
        header,
        sub,
        exp,
        nbf,
        name: display,
        claims,
        signing,
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let h = harness();
    h.check_token(&String::from_utf8_lossy(data));
    if let Ok(case) = case(&mut Unstructured::new(data)) {
        h.check_case(&case);
    }
});
