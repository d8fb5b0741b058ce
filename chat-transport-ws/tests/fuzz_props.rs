//! The fuzz targets' properties (`fuzz/`), as bounded property tests on stable: the same
//! check functions (`fuzz_checks`), fed by proptest strategies instead of libFuzzer.
//! Each property runs a few thousand cases.

mod fuzz_checks;

use chat_core::Command;
use fuzz_checks::http::{self, BodyChoice, Caller, MethodChoice, Param, Step, Target};
use fuzz_checks::jwt::{self, Hmac, Signing, Time, TokenCase};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as RunConfig, FileFailurePersistence};
use serde_json::{Map, Number, Value};

/// `cases` cases; a failure is shrunk and printed, not saved (a real finding becomes a
/// named regression test, as `fuzz/README.md` says).
fn cases(cases: u32) -> RunConfig {
    RunConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..RunConfig::default()
    }
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..1000).prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        "[a-z]{1,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{0,8}", inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A name from `names`, or any other.
fn name(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(names).prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

// ---------------------------------------------------------------------------------------
// frame

/// The client frames shown in `docs/protocol.md`: valid starting points to mutate.
fn doc_frames() -> Vec<Value> {
    let doc = include_str!("../../docs/protocol.md");
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        match block.as_mut() {
            None if line.trim_start().starts_with("```json client") => block = Some(String::new()),
            None => {}
            Some(text) if line.trim_start().starts_with("```") => {
                let v: Value = serde_json::from_str(text).expect("a doc frame is JSON");
                out.push(v);
                block = None;
            }
            Some(text) => text.push_str(line),
        }
    }
    assert!(out.len() > 10, "the client frames of docs/protocol.md");
    out
}

/// A field name: one that frames use, or any other.
fn frame_key() -> impl Strategy<Value = String> {
    let mut keys: Vec<String> = doc_frames()
        .iter()
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    prop_oneof![4 => select(keys), 1 => ".{0,8}"]
}

/// A change to a frame.
#[derive(Debug, Clone)]
enum Edit {
    Set(String, Value),
    Remove(String),
    Kind(String),
}

/// A documented frame with a few edits, as text.
fn edited_frame() -> impl Strategy<Value = String> {
    let frames = doc_frames();
    let edit = prop_oneof![
        3 => (frame_key(), json()).prop_map(|(k, v)| Edit::Set(k, v)),
        1 => frame_key().prop_map(Edit::Remove),
        1 => prop_oneof![select(Command::KINDS).prop_map(str::to_owned), ".{0,8}"].prop_map(Edit::Kind),
    ];
    (select(frames), prop::collection::vec(edit, 0..3)).prop_map(|(mut frame, edits)| {
        for e in edits {
            if let Value::Object(m) = &mut frame {
                match e {
                    Edit::Set(k, v) => drop(m.insert(k, v)),
                    Edit::Remove(k) => drop(m.remove(&k)),
                    Edit::Kind(k) => drop(m.insert("type".into(), Value::from(k))),
                }
            }
        }
        frame.to_string()
    })
}

proptest! {
    #![proptest_config(cases(3000))]

    /// Documented frames, edited: every outcome is a frame or a typed refusal.
    #[test]
    fn frame_edited_doc_frames(text in edited_frame()) {
        fuzz_checks::frame::check(&text);
    }

    /// Any JSON value, and any text: the same.
    #[test]
    fn frame_any_text(text in prop_oneof![json().prop_map(|v| v.to_string()), any::<String>()]) {
        fuzz_checks::frame::check(&text);
    }

    /// Any bytes, read as the target reads them.
    #[test]
    fn frame_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        fuzz_checks::frame::check_bytes(&bytes);
    }
}

// ---------------------------------------------------------------------------------------
// jwt

fn time() -> impl Strategy<Value = Time> {
    prop_oneof![
        4 => (-100_000i64..100_000).prop_map(Time::FromNow),
        1 => any::<i64>().prop_map(Time::FromNow),
        1 => (-1e5f64..1e5).prop_map(Time::FractionFromNow),
        1 => json().prop_map(Time::Json),
    ]
}

fn hmac() -> impl Strategy<Value = Hmac> {
    select(&Hmac::ALL[..])
}

fn signing() -> impl Strategy<Value = Signing> {
    prop_oneof![
        4 => hmac().prop_map(Signing::Secret),
        2 => (prop::collection::vec(any::<u8>(), 0..40), hmac()).prop_map(|(k, h)| Signing::OtherKey(k, h)),
        1 => Just(Signing::Unsigned),
        1 => "[A-Za-z0-9_-]{0,90}".prop_map(Signing::Raw),
    ]
}

fn token_case() -> impl Strategy<Value = TokenCase> {
    let sub = prop_oneof![4 => "[a-z][a-z0-9_]{0,11}".prop_map(Value::from), 1 => json()];
    let display = prop_oneof![2 => ".{0,10}".prop_map(Value::from), 1 => json()];
    (
        proptest::option::weighted(
            0.95,
            prop_oneof![3 => select(jwt::ALGS).prop_map(str::to_owned), 1 => ".{0,6}"],
        ),
        prop::collection::vec(
            (
                name(&["typ", "kid", "cty", "jku", "x5t", "crit", "alg"]),
                json(),
            ),
            0..2,
        ),
        proptest::option::weighted(0.9, sub),
        proptest::option::weighted(0.9, time()),
        proptest::option::of(time()),
        proptest::option::of(display),
        prop::collection::vec((name(jwt::CLAIM_NAMES), json()), 0..3),
        signing(),
    )
        .prop_map(
            |(alg, header, sub, exp, nbf, name, claims, signing)| TokenCase {
                alg,
                header,
                sub,
                exp,
                nbf,
                name,
                claims,
                signing,
            },
        )
}

/// Cases that must be accepted.
fn valid_case() -> impl Strategy<Value = TokenCase> {
    (
        "[a-z][a-z0-9_]{0,11}",
        60i64..1_000_000,
        proptest::option::of(-1_000_000i64..=-60),
        proptest::option::of(".{0,10}"),
        prop::collection::vec((select(&["scope", "x"][..]), json()), 0..2),
        // `iat` and `jti` are read (for revocation lists): well-formed when present.
        proptest::option::of(0u64..4_000_000_000),
        proptest::option::of("[A-Za-z0-9-]{1,20}"),
    )
        .prop_map(|(sub, exp, nbf, name, mut claims, iat, jti)| {
            claims.sort_by(|a, b| a.0.cmp(b.0));
            claims.dedup_by(|a, b| a.0 == b.0);
            let mut claims: Vec<(&str, Value)> = claims;
            claims.extend(iat.map(|t| ("iat", Value::from(t))));
            claims.extend(jti.map(|j| ("jti", Value::from(j))));
            TokenCase {
                alg: Some("HS256".into()),
                header: Vec::new(),
                sub: Some(Value::from(sub)),
                exp: Some(Time::FromNow(exp)),
                nbf: nbf.map(Time::FromNow),
                name: name.map(Value::from),
                claims: claims.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                signing: Signing::Secret(Hmac::Hs256),
            }
        })
}

/// A valid token with one character replaced.
fn tampered_token() -> impl Strategy<Value = String> {
    (valid_case(), any::<usize>(), any::<char>()).prop_map(|(case, at, c)| {
        let token = case.token(fuzz_checks::now());
        let mut chars: Vec<char> = token.chars().collect();
        let at = at % chars.len();
        chars[at] = c;
        chars.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(cases(2000))]

    /// Tokens made of random headers and claims, signed well, badly or not at all.
    #[test]
    fn jwt_built_tokens(case in token_case()) {
        thread_local!(static AUTH: jwt::Harness = jwt::Harness::new());
        AUTH.with(|h| h.check_case(&case));
    }

    /// Plainly valid tokens are accepted (so the property above is not vacuous).
    #[test]
    fn jwt_valid_tokens(case in valid_case()) {
        prop_assert!(case.plainly_valid(), "{case:?}");
        thread_local!(static AUTH: jwt::Harness = jwt::Harness::new());
        AUTH.with(|h| h.check_case(&case));
    }

    /// Any text, and valid tokens with one character changed.
    #[test]
    fn jwt_any_text(token in prop_oneof![any::<String>(), "[A-Za-z0-9_.-]{0,120}", tampered_token()]) {
        thread_local!(static AUTH: jwt::Harness = jwt::Harness::new());
        AUTH.with(|h| h.check_token(&token));
    }
}

// ---------------------------------------------------------------------------------------
// http

fn param(raw: bool) -> BoxedStrategy<Param> {
    let mut options = vec![
        (4, any::<usize>().prop_map(Param::Known).boxed()),
        (1, any::<u128>().prop_map(Param::Uuid).boxed()),
        (
            1,
            prop_oneof![0u64..20, any::<u64>()]
                .prop_map(Param::Number)
                .boxed(),
        ),
        (
            2,
            prop_oneof![
                select(&["general", "bob", "alice", "true", "request", "online"][..])
                    .prop_map(str::to_owned),
                ".{0,12}".prop_map(|s: String| s)
            ]
            .prop_map(Param::Text)
            .boxed(),
        ),
    ];
    if raw {
        options.push((1, ".{0,12}".prop_map(Param::Raw).boxed()));
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

/// A body field's value: what the fields usually hold, or any JSON.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        2 => "[a-z]{1,8}".prop_map(Value::from),
        1 => (0u64..10).prop_map(Value::from),
        1 => select(&["public", "private"][..]).prop_map(Value::from),
        2 => json(),
    ]
}

fn body() -> impl Strategy<Value = BodyChoice> {
    prop_oneof![
        2 => Just(BodyChoice::Empty),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(BodyChoice::Bytes),
        1 => prop::collection::vec(any::<u8>(), 900..1100).prop_map(BodyChoice::Bytes),
        4 => prop::collection::vec((name(http::FIELD_NAMES), field_value()), 0..4).prop_map(BodyChoice::Fields),
    ]
}

/// A step; `any_route`: any method and any path under the API, else the documented
/// method of a documented route with its parameters percent-encoded.
fn step(any_route: bool) -> impl Strategy<Value = Step> {
    let caller = (0usize..2, proptest::option::weighted(0.2, any::<bool>()))
        .prop_map(|(user, admin_key)| Caller { user, admin_key });
    let method = if any_route {
        prop_oneof![
            6 => Just(MethodChoice::Documented),
            2 => any::<usize>().prop_map(MethodChoice::Named),
            1 => "[A-Z]{1,8}".prop_map(MethodChoice::Other),
        ]
        .boxed()
    } else {
        Just(MethodChoice::Documented).boxed()
    };
    let route = (
        any::<usize>(),
        prop::collection::vec(param(any_route), 0..3),
    )
        .prop_map(|(i, params)| Target::Route(i, params));
    let target = if any_route {
        prop_oneof![8 => route, 1 => ".{0,16}".prop_map(Target::UnderApi)].boxed()
    } else {
        route.boxed()
    };
    let query = prop::collection::vec((name(http::QUERY_NAMES), param(any_route)), 0..2);
    let content_type = proptest::option::of(name(http::CONTENT_TYPES));
    (caller, method, target, query, body(), content_type).prop_map(
        |(caller, method, target, query, body, content_type)| Step {
            caller,
            method,
            target,
            query,
            body,
            content_type,
        },
    )
}

proptest! {
    #![proptest_config(cases(1500))]

    /// Sequences of documented requests with arbitrary parameters, queries, bodies and
    /// content types: documented statuses, JSON errors.
    #[test]
    fn http_documented_routes(steps in prop::collection::vec(step(false), 1..6)) {
        thread_local!(static API: http::Harness = http::Harness::new());
        API.with(|h| h.check(&steps));
    }

    /// The same for any method on any path under the API.
    #[test]
    fn http_any_request(steps in prop::collection::vec(step(true), 1..6)) {
        thread_local!(static API: http::Harness = http::Harness::new());
        API.with(|h| h.check(&steps));
    }
}

/// One request as Bob, with no body.
fn bare(method: MethodChoice, target: Target) -> Step {
    Step {
        caller: Caller {
            user: 1,
            admin_key: None,
        },
        method,
        target,
        query: Vec::new(),
        body: BodyChoice::Empty,
        content_type: None,
    }
}

/// `fuzz/artifacts/http/crash-0d3ca80477eac704b9ba6c15269b4cbbad1fd57c`: a method the route
/// does not serve answers 405 with an empty body (axum's default, past the API's fallback).
#[test]
fn http_a_method_a_route_does_not_serve_gets_a_json_error() {
    let step = bare(
        MethodChoice::Other("PATCH".into()),
        Target::UnderApi("/health".into()),
    );
    http::Harness::new().check(&[step]);
}

/// `/api/v1/` is under the API but reaches no fallback: 404 with an empty body.
#[test]
fn http_the_api_root_with_a_slash_gets_a_json_error() {
    let step = bare(MethodChoice::Documented, Target::UnderApi("/".into()));
    http::Harness::new().check(&[step]);
}

/// `DELETE /api/v1/friends/{user}` for the user `online` meets `GET /friends/online`
/// first: 405 with an empty body, and that friendship cannot be removed over HTTP.
#[test]
fn http_a_user_named_online_can_be_unfriended() {
    let step = bare(
        MethodChoice::Other("DELETE".into()),
        Target::UnderApi("/friends/online".into()),
    );
    http::Harness::new().check(&[step]);
}
