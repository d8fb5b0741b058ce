//! Hostile input over the WebSocket, one row per attack: what the server answers (an
//! error code, or a close code), and after every row that the connection still works (or,
//! when the row closed it, that a new one does) and that nothing stored changed.
//!
//! The attacker, mallory, owns one room (`den`). After each row she sends one message
//! there and it must be acknowledged with the next seq: so no row stored anything in her
//! room, and the engine's count of messages grows by exactly one per check. Alice owns a
//! public room, a private room and a direct conversation with bob, none of which mallory
//! is in; their history, members and lists, as alice and bob read them, must stay
//! byte-identical through the whole table, and bob, connected throughout, must hear
//! nothing. Every command on the private room or the direct conversation must be
//! answered, byte for byte, as the same command on a random id that does not exist.

mod common;

use bytes::Bytes;
use chat_core::model::Limits;
use chat_core::Command;
use chat_transport_ws::Config;
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

/// What the attacker sends.
enum Attack {
    /// One text frame.
    Text(String),
    /// One binary frame.
    Binary(Vec<u8>),
    /// Raw frames, sent as they are (fragments, bad UTF-8, bad opcodes).
    Frames(Vec<Frame>),
    /// A ping with this payload.
    Ping(Vec<u8>),
}

/// What the server must answer.
enum Expect {
    /// An error frame with this code and this request id (`null` when none could be
    /// read); the connection stays open.
    Error(&'static str, Value),
    /// A reply frame of this kind, for which `check` holds; the connection stays open.
    Reply(&'static str, fn(&Value) -> bool),
    /// The server closes the connection with this code.
    Close(u16),
    /// The conversation (or room name) `secret` is hidden from the attacker: the answer
    /// is byte-identical to the answer to the same frame naming `stand_in`, which does not
    /// exist, once each is written as `<hidden>`; an error with this code (`None`: a
    /// reply).
    LikeMissing {
        secret: String,
        stand_in: String,
        code: Option<&'static str>,
    },
}

struct Row {
    name: String,
    attack: Attack,
    expect: Expect,
}

fn row(name: impl Into<String>, attack: Attack, expect: Expect) -> Row {
    Row {
        name: name.into(),
        attack,
        expect,
    }
}

fn text(v: Value) -> Attack {
    Attack::Text(v.to_string())
}

fn invalid(id: Value) -> Expect {
    Expect::Error("invalid", id)
}

/// The conversations of the table.
struct Ids {
    /// Alice's public room (bob is a member).
    lobby: String,
    /// Alice's private room (bob is a member).
    vault: String,
    /// Alice and bob.
    direct: String,
    /// Mallory's own room.
    den: String,
}

async fn exec(server: &Server, user: &str, command: Value) -> Value {
    let parsed: Command = serde_json::from_value(command.clone())
        .unwrap_or_else(|e| panic!("{command} is no command: {e}"));
    let reply = server
        .engine
        .execute_as(&uid(user), parsed)
        .await
        .unwrap_or_else(|e| panic!("setup {command}: {e}"));
    serde_json::to_value(reply).expect("reply")
}

async fn setup(server: &Server) -> Ids {
    let id = |reply: Value| {
        reply["conversation"]["id"]
            .as_str()
            .expect("conversation id")
            .to_owned()
    };
    let lobby = id(exec(
        server,
        "alice",
        json!({"type":"create_room","name":"lobby"}),
    )
    .await);
    let vault = id(exec(
        server,
        "alice",
        json!({"type":"create_room","name":"vault","visibility":"private"}),
    )
    .await);
    exec(server, "bob", json!({"type":"join","room":lobby})).await;
    exec(
        server,
        "alice",
        json!({"type":"invite","conversation":vault,"user":"bob"}),
    )
    .await;
    exec(
        server,
        "alice",
        json!({"type":"friend_request","user":"bob"}),
    )
    .await;
    exec(
        server,
        "bob",
        json!({"type":"friend_accept","user":"alice"}),
    )
    .await;
    let direct = id(exec(server, "alice", json!({"type":"open_direct","user":"bob"})).await);
    for (n, conv) in [&lobby, &vault, &direct].into_iter().enumerate() {
        for (who, body) in [("alice", "one"), ("bob", "two"), ("alice", "three")] {
            exec(
                server,
                who,
                json!({"type":"send","conversation":conv,"body":body,"client_id":format!("{who}-{body}-{n}")}),
            )
            .await;
        }
        exec(
            server,
            "bob",
            json!({"type":"mark_read","conversation":conv,"seq":1}),
        )
        .await;
    }
    let den = id(exec(
        server,
        "mallory",
        json!({"type":"create_room","name":"den"}),
    )
    .await);
    Ids {
        lobby,
        vault,
        direct,
        den,
    }
}

/// Everything mallory must not change, as alice and bob read it, serialized.
async fn protected(server: &Server, ids: &Ids) -> Vec<u8> {
    let mut reads = Vec::new();
    for conv in [&ids.lobby, &ids.vault, &ids.direct] {
        reads.push((
            "alice",
            json!({"type":"history","conversation":conv,"limit":100}),
        ));
        reads.push(("alice", json!({"type":"members","conversation":conv})));
    }
    for user in ["alice", "bob"] {
        reads.push((user, json!({"type":"list_conversations"})));
        reads.push((user, json!({"type":"list_friends"})));
    }
    let mut out = Vec::new();
    for (user, read) in reads {
        let reply = exec(server, user, read).await;
        out.extend(serde_json::to_vec(&reply).expect("encode"));
        out.push(b'\n');
    }
    out
}

/// A text frame holding `payload` as it is, valid UTF-8 or not.
fn text_frame(payload: Vec<u8>, fin: bool) -> Frame {
    Frame::message(payload, OpCode::Data(Data::Text), fin)
}

fn rows(ids: &Ids) -> Vec<Row> {
    let den = ids.den.as_str();
    let send = |body: &str| json!({"id":"a-send","type":"send","conversation":den,"body":body});
    let null = Value::Null;
    let mut rows = vec![
        // --- WebSocket framing
        row(
            "a frame over max_frame_bytes",
            text(send(&"x".repeat(65_536))),
            Expect::Close(1009),
        ),
        row(
            "a message over max_frame_bytes in two fragments",
            Attack::Frames(vec![
                text_frame(
                    format!(
                        r#"{{"type":"send","conversation":"{den}","body":"{}"#,
                        "x".repeat(40_000)
                    )
                    .into_bytes(),
                    false,
                ),
                Frame::message(
                    format!(r#"{}"}}"#, "x".repeat(40_000)).into_bytes(),
                    OpCode::Data(Data::Continue),
                    true,
                ),
            ]),
            Expect::Close(1009),
        ),
        row(
            "a text frame that is not UTF-8 (a send)",
            Attack::Frames(vec![text_frame(
                [
                    format!(r#"{{"type":"send","conversation":"{den}","body":""#).as_bytes(),
                    &[0xc3, 0x28, 0xff][..],
                    br#""}"#,
                ]
                .concat(),
                true,
            )]),
            Expect::Close(1007),
        ),
        row(
            "a ping over 125 bytes",
            Attack::Ping(vec![b'p'; 200]),
            Expect::Close(1002),
        ),
        row(
            "a continuation frame with nothing to continue",
            Attack::Frames(vec![Frame::message(
                &b"{}"[..],
                OpCode::Data(Data::Continue),
                true,
            )]),
            Expect::Close(1002),
        ),
        row(
            "a reserved opcode",
            Attack::Frames(vec![Frame::message(
                &b"{}"[..],
                OpCode::Data(Data::Reserved(3)),
                true,
            )]),
            Expect::Close(1002),
        ),
        row(
            "a binary frame holding a valid send",
            Attack::Binary(send("binary").to_string().into_bytes()),
            invalid(null.clone()),
        ),
        // --- not JSON, not an object
        row(
            "malformed JSON",
            Attack::Text(format!(
                r#"{{"id":"a1","type":"send","conversation":"{den}","#
            )),
            invalid(null.clone()),
        ),
        row(
            "an empty text frame",
            Attack::Text(String::new()),
            invalid(null.clone()),
        ),
        row(
            "JSON with trailing garbage",
            Attack::Text(r#"{"id":"a2","type":"unread_total"} {"#.into()),
            invalid(null.clone()),
        ),
        row(
            "an array of commands",
            Attack::Text(r#"[{"id":"a3","type":"unread_total"}]"#.into()),
            invalid(null.clone()),
        ),
        row(
            "a JSON string",
            Attack::Text(r#""unread_total""#.into()),
            invalid(null.clone()),
        ),
        row(
            "JSON null",
            Attack::Text("null".into()),
            invalid(null.clone()),
        ),
        row(
            "arrays nested 30,000 deep (past the parser's depth limit)",
            Attack::Text(format!(
                r#"{{"id":"a4","type":"send","conversation":"{den}","body":{}{}}}"#,
                "[".repeat(30_000),
                "]".repeat(30_000)
            )),
            invalid(null.clone()),
        ),
        row(
            "objects nested 10,000 deep",
            Attack::Text(format!(
                r#"{}1{}"#,
                r#"{"a":"#.repeat(10_000),
                "}".repeat(10_000)
            )),
            invalid(null.clone()),
        ),
        row(
            "arrays nested 100 deep where a string belongs",
            Attack::Text(format!(
                r#"{{"id":"a5","type":"send","conversation":"{den}","body":{}{}}}"#,
                "[".repeat(100),
                "]".repeat(100)
            )),
            invalid(json!("a5")),
        ),
        row(
            "a lone UTF-16 surrogate escape in a body",
            Attack::Text(format!(
                r#"{{"id":"a6","type":"send","conversation":"{den}","body":"\ud800"}}"#
            )),
            invalid(null.clone()),
        ),
        row(
            "a NUL character in a body",
            text(json!({"id":"a7","type":"send","conversation":den,"body":"a\u{0}b"})),
            invalid(json!("a7")),
        ),
        // --- commands: type and fields
        row("no type", text(json!({"id":"a8"})), invalid(json!("a8"))),
        row(
            "type null",
            text(json!({"id":"a9","type":null})),
            invalid(json!("a9")),
        ),
        row(
            "an unknown command type",
            text(json!({"id":"a10","type":"drop_tables"})),
            invalid(json!("a10")),
        ),
        row(
            "a command type in another case",
            text(json!({"id":"a11","type":"Send","conversation":den,"body":"x"})),
            invalid(json!("a11")),
        ),
        row(
            "a server frame's type (reply)",
            text(json!({"id":"a12","type":"reply","reply":{"type":"ok"}})),
            invalid(json!("a12")),
        ),
        row(
            "a send without a body",
            text(json!({"id":"a13","type":"send","conversation":den})),
            invalid(json!("a13")),
        ),
        row(
            "a send without a conversation",
            text(json!({"id":"a14","type":"send","body":"x"})),
            invalid(json!("a14")),
        ),
        row(
            "an edit without a seq",
            text(json!({"id":"a15","type":"edit","conversation":den,"body":"x"})),
            invalid(json!("a15")),
        ),
        row(
            "a resume without conversations",
            text(json!({"id":"a16","type":"resume"})),
            invalid(json!("a16")),
        ),
        row(
            "a refresh_token without a token",
            text(json!({"id":"a17","type":"refresh_token"})),
            invalid(json!("a17")),
        ),
        row(
            "a send naming its own sender",
            text(json!({"id":"a18","type":"send","conversation":den,"body":"x","sender":"alice"})),
            invalid(json!("a18")),
        ),
        row(
            "a send with an unknown field",
            text(json!({"id":"a19","type":"send","conversation":den,"body":"x","admin":true})),
            invalid(json!("a19")),
        ),
        row(
            "a command without fields, with an unknown one",
            text(json!({"id":"a20","type":"unread_total","all_users":true})),
            invalid(json!("a20")),
        ),
        row(
            "a body that is not a string",
            text(json!({"id":"a21","type":"send","conversation":den,"body":{"html":"<b>"}})),
            invalid(json!("a21")),
        ),
        // --- numbers
        row(
            "a seq beyond u64",
            Attack::Text(format!(
                r#"{{"id":"a22","type":"edit","conversation":"{den}","seq":18446744073709551616,"body":"x"}}"#
            )),
            invalid(json!("a22")),
        ),
        row(
            "a negative seq",
            text(json!({"id":"a23","type":"delete","conversation":den,"seq":-1})),
            invalid(json!("a23")),
        ),
        row(
            "a fractional seq",
            text(json!({"id":"a24","type":"delete","conversation":den,"seq":1.5})),
            invalid(json!("a24")),
        ),
        row(
            "a seq in exponent form",
            Attack::Text(format!(
                r#"{{"id":"a25","type":"delete","conversation":"{den}","seq":1e3}}"#
            )),
            invalid(json!("a25")),
        ),
        row(
            "a seq as a string",
            text(json!({"id":"a26","type":"delete","conversation":den,"seq":"1"})),
            invalid(json!("a26")),
        ),
        row(
            "a number beyond f64 (1e400)",
            Attack::Text(format!(
                r#"{{"id":"a27","type":"delete","conversation":"{den}","seq":1e400}}"#
            )),
            invalid(null.clone()),
        ),
        row(
            "a history limit beyond u32",
            text(json!({"id":"a28","type":"history","conversation":den,"limit":4_294_967_296u64})),
            invalid(json!("a28")),
        ),
        row(
            "a negative history limit",
            text(json!({"id":"a29","type":"history","conversation":den,"limit":-1})),
            invalid(json!("a29")),
        ),
        row(
            "a history limit of 0",
            text(json!({"id":"a30","type":"history","conversation":den,"limit":0})),
            invalid(json!("a30")),
        ),
        row(
            "a history limit over max_history_page",
            text(json!({"id":"a31","type":"history","conversation":den,"limit":101})),
            invalid(json!("a31")),
        ),
        row(
            "a members limit over max_list_page",
            text(json!({"id":"a32","type":"members","conversation":den,"limit":201})),
            invalid(json!("a32")),
        ),
        row(
            "history both before and after",
            text(json!({"id":"a33","type":"history","conversation":den,"before":5,"after":1})),
            invalid(json!("a33")),
        ),
        row(
            "mark_read at u64::MAX is clamped to the last seq",
            text(json!({"id":"a34","type":"mark_read","conversation":den,"seq":u64::MAX})),
            Expect::Reply("marks", |f| {
                let read = f["reply"]["read_seq"].as_u64();
                read.is_some()
                    && read < Some(1_000)
                    && f["reply"]["delivered_seq"] == f["reply"]["read_seq"]
            }),
        ),
        row(
            "a request id beyond i64",
            Attack::Text(r#"{"id":9223372036854775808,"type":"unread_total"}"#.into()),
            invalid(null.clone()),
        ),
        row(
            "a fractional request id",
            Attack::Text(r#"{"id":1.5,"type":"unread_total"}"#.into()),
            invalid(null.clone()),
        ),
        row(
            "a request id of 65 bytes",
            text(json!({"id":"i".repeat(65),"type":"unread_total"})),
            invalid(null.clone()),
        ),
        row(
            "a request id that is an object",
            text(json!({"id":{"$ne":null},"type":"unread_total"})),
            invalid(null.clone()),
        ),
        row(
            "a negative request id is echoed as it is",
            text(json!({"id":-7,"type":"unread_total"})),
            Expect::Reply("unread", |f| f["id"] == json!(-7)),
        ),
        // --- lengths and shapes of ids, names and bodies
        row(
            "a client_id of 65 bytes",
            text(
                json!({"id":"a35","type":"send","conversation":den,"body":"x","client_id":"c".repeat(65)}),
            ),
            invalid(json!("a35")),
        ),
        row(
            "an empty client_id",
            text(json!({"id":"a36","type":"send","conversation":den,"body":"x","client_id":""})),
            invalid(json!("a36")),
        ),
        row(
            "a client_id with a control character",
            text(
                json!({"id":"a37","type":"send","conversation":den,"body":"x","client_id":"c\u{7}"}),
            ),
            invalid(json!("a37")),
        ),
        row(
            "a body over max_body_bytes",
            text(send(&"x".repeat(4_097))),
            Expect::Error("too_large", json!("a-send")),
        ),
        row(
            "a blank body",
            text(send(" \n\t ")),
            invalid(json!("a-send")),
        ),
        row(
            "a user id of 129 bytes",
            text(json!({"id":"a38","type":"friend_request","user":"u".repeat(129)})),
            invalid(json!("a38")),
        ),
        row(
            "an empty user id",
            text(json!({"id":"a39","type":"friend_request","user":""})),
            invalid(json!("a39")),
        ),
        row(
            "a user id with surrounding spaces",
            text(json!({"id":"a40","type":"block","user":" alice "})),
            invalid(json!("a40")),
        ),
        row(
            "a user id with a control character",
            text(json!({"id":"a41","type":"open_direct","user":"bob\n"})),
            invalid(json!("a41")),
        ),
        row(
            "an invite of a 129-byte user id",
            text(json!({"id":"a42","type":"invite","conversation":den,"user":"u".repeat(129)})),
            invalid(json!("a42")),
        ),
        row(
            "members after a 129-byte user id",
            text(json!({"id":"a43","type":"members","conversation":den,"after":"u".repeat(129)})),
            invalid(json!("a43")),
        ),
        row(
            "a room name of 65 bytes",
            text(json!({"id":"a44","type":"create_room","name":"r".repeat(65)})),
            invalid(json!("a44")),
        ),
        row(
            "a join that would create a room named with 65 bytes",
            text(json!({"id":"a45","type":"join","room":"r".repeat(65),"create":true})),
            invalid(json!("a45")),
        ),
        row(
            "a room name shaped like an id",
            text(
                json!({"id":"a46","type":"create_room","name":"0190f0c0-0000-7000-8000-000000000001"}),
            ),
            invalid(json!("a46")),
        ),
        row(
            "a room name with a path",
            text(json!({"id":"a47","type":"create_room","name":"../admin"})),
            invalid(json!("a47")),
        ),
        row(
            "a conversation that is not an id",
            text(json!({"id":"a48","type":"history","conversation":"lobby"})),
            invalid(json!("a48")),
        ),
        row(
            "a conversation id of 60,000 bytes",
            text(json!({"id":"a49","type":"history","conversation":"0".repeat(60_000)})),
            invalid(json!("a49")),
        ),
        row(
            "a resume of max_resume_conversations + 1",
            text(json!({"id":"a50","type":"resume","conversations":
                (0..=Limits::default().max_resume_conversations)
                    .map(|_| json!({"conversation":den,"last_seq":0})).collect::<Vec<_>>()})),
            invalid(json!("a50")),
        ),
        row(
            "a resume point with an unknown field",
            text(json!({"id":"a50b","type":"resume","conversations":
                [{"conversation":den,"last_seq":0,"evil":1}]})),
            invalid(json!("a50b")),
        ),
        row(
            "a refresh_token that is not a token",
            text(json!({"id":"a51","type":"refresh_token","token":"not.a.token"})),
            Expect::Error("unauthenticated", json!("a51")),
        ),
        row(
            "a refresh_token of another user",
            text(json!({"id":"a52","type":"refresh_token","token":token("alice")})),
            Expect::Error("forbidden", json!("a52")),
        ),
    ];

    // --- every command on a conversation mallory is not in
    let on = |conv: &str| -> Vec<(&'static str, Value)> {
        vec![
            ("leave", json!({"type":"leave","conversation":conv})),
            (
                "invite",
                json!({"type":"invite","conversation":conv,"user":"mallory"}),
            ),
            (
                "send",
                json!({"type":"send","conversation":conv,"body":"pwned","client_id":"x"}),
            ),
            (
                "edit",
                json!({"type":"edit","conversation":conv,"seq":1,"body":"pwned"}),
            ),
            (
                "delete",
                json!({"type":"delete","conversation":conv,"seq":1}),
            ),
            ("history", json!({"type":"history","conversation":conv})),
            (
                "mark_delivered",
                json!({"type":"mark_delivered","conversation":conv,"seq":3}),
            ),
            (
                "mark_read",
                json!({"type":"mark_read","conversation":conv,"seq":3}),
            ),
            (
                "typing",
                json!({"type":"typing","conversation":conv,"typing":true}),
            ),
            ("members", json!({"type":"members","conversation":conv})),
        ]
    };
    for (kind, mut command) in on(&ids.lobby) {
        command["id"] = json!("p");
        rows.push(row(
            format!("{kind} on a public room mallory is not in"),
            text(command),
            Expect::Error("forbidden", json!("p")),
        ));
    }
    rows.push(row(
        "resume on a public room mallory is not in",
        text(json!({"id":"p","type":"resume","conversations":[{"conversation":ids.lobby,"last_seq":0}]})),
        Expect::Reply("resumed", |f| {
            f["reply"]["conversations"][0]["outcome"] == "not_found"
                && f["reply"]["conversations"][0]["messages"] == json!([])
        }),
    ));
    for (what, conv) in [
        ("a private room", &ids.vault),
        ("a direct conversation", &ids.direct),
    ] {
        let hidden = |code| Expect::LikeMissing {
            secret: conv.clone(),
            stand_in: uuid::Uuid::new_v4().to_string(),
            code,
        };
        let mut commands = on(conv);
        commands.push(("join", json!({"type":"join","room":conv})));
        commands.push((
            "join (create)",
            json!({"type":"join","room":conv,"create":true}),
        ));
        for (kind, mut command) in commands {
            command["id"] = json!("h");
            rows.push(row(
                format!("{kind} on {what} mallory is not in"),
                text(command),
                hidden(Some("not_found")),
            ));
        }
        rows.push(row(
            format!("resume on {what} mallory is not in"),
            text(json!({"id":"h","type":"resume","conversations":[{"conversation":conv,"last_seq":0}]})),
            hidden(None),
        ));
    }
    rows.push(row(
        "join of a private room by name",
        text(json!({"id":"h","type":"join","room":"vault"})),
        Expect::LikeMissing {
            secret: "vault".into(),
            stand_in: format!("nowhere-{}", uuid::Uuid::new_v4().simple()),
            code: Some("not_found"),
        },
    ));
    rows
}

async fn attack(c: &mut Client, attack: &Attack) {
    // A close row may see the server close before every frame went out.
    let _ = match attack {
        Attack::Text(t) => c.ws.send(Message::text(t.clone())).await,
        Attack::Binary(b) => c.ws.send(Message::binary(b.clone())).await,
        Attack::Ping(p) => c.ws.send(Message::Ping(Bytes::from(p.clone()))).await,
        Attack::Frames(frames) => {
            let mut sent = Ok(());
            for f in frames {
                sent = c.ws.send(Message::Frame(f.clone())).await;
                if sent.is_err() {
                    break;
                }
            }
            sent
        }
    };
}

/// The raw text of the next reply or error frame.
async fn raw_answer(c: &mut Client, row: &str) -> String {
    assert!(
        c.pending.is_empty(),
        "{row}: unread frames: {:?}",
        c.pending
    );
    loop {
        let msg = tokio::time::timeout(WAIT, c.ws.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("frame");
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                if v["type"] == "reply" || v["type"] == "error" {
                    return t.as_str().to_owned();
                }
                panic!("{row}: the attacker got an event: {t}");
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("{row}: unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_gets_its_documented_answer_and_changes_nothing() {
    let mut limits = Limits::default();
    // Each row sends two or three frames at once: the command rate and the flood cap
    // have their own tests (ws.rs, close_codes.rs) and would only cut the table short.
    limits.commands_per_second = 0;
    let config = Config::default().flood_limit(100_000, std::time::Duration::from_secs(1));
    assert_eq!(
        config.max_message_bytes, 65_536,
        "the frame rows are sized for the default max_frame_bytes"
    );
    let server = Server::with(config, limits).await;
    let ids = setup(&server).await;
    let before = protected(&server, &ids).await;
    let sent_before = server.engine.stats().messages_sent;
    let mut bob = server.connect("bob").await;
    let mut mallory = server.connect("mallory").await;

    let table = rows(&ids);
    let mut checks = 0u64;
    let mut closes = 0;
    for row in &table {
        let name = &row.name;
        attack(&mut mallory, &row.attack).await;
        match &row.expect {
            Expect::Error(code, id) => {
                let f: Value =
                    serde_json::from_str(&raw_answer(&mut mallory, name).await).expect("json");
                assert_eq!(f["type"], "error", "{name}: {f}");
                assert_eq!(f["code"], *code, "{name}: {f}");
                assert_eq!(&f["id"], id, "{name}: {f}");
                assert!(
                    f["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{name}: {f}"
                );
            }
            Expect::Reply(kind, check) => {
                let f: Value =
                    serde_json::from_str(&raw_answer(&mut mallory, name).await).expect("json");
                assert_eq!(f["type"], "reply", "{name}: {f}");
                assert_eq!(f["reply"]["type"], *kind, "{name}: {f}");
                assert!(check(&f), "{name}: {f}");
            }
            Expect::Close(code) => {
                assert_eq!(read_close(&mut mallory.ws).await, Some(*code), "{name}");
                closes += 1;
                mallory = server.connect("mallory").await;
            }
            Expect::LikeMissing {
                secret,
                stand_in,
                code,
            } => {
                let hidden = raw_answer(&mut mallory, name).await;
                let Attack::Text(t) = &row.attack else {
                    panic!("{name}: a hidden row is a text frame")
                };
                assert!(t.contains(secret.as_str()), "{name}");
                attack(
                    &mut mallory,
                    &Attack::Text(t.replace(secret.as_str(), stand_in)),
                )
                .await;
                let missing = raw_answer(&mut mallory, name).await;
                assert_ne!(
                    hidden, missing,
                    "{name}: the two frames name different things"
                );
                let hidden = hidden.replace(secret.as_str(), "<hidden>");
                let missing = missing.replace(stand_in.as_str(), "<hidden>");
                assert_eq!(
                    hidden, missing,
                    "{name}: the answer tells the hidden conversation from a missing one"
                );
                let f: Value = serde_json::from_str(&hidden).expect("json");
                match code {
                    Some(code) => {
                        assert_eq!(f["type"], "error", "{name}: {f}");
                        assert_eq!(f["code"], *code, "{name}: {f}");
                    }
                    None => assert_eq!(f["type"], "reply", "{name}: {f}"),
                }
            }
        }

        // The connection (or the new one) works, and nothing was stored by the row.
        checks += 1;
        let sent = mallory
            .ok(json!({"type":"send","conversation":ids.den,"body":format!("check {checks}"),"client_id":format!("check-{checks}")}))
            .await;
        assert_eq!(sent["type"], "sent", "{name}: {sent}");
        assert_eq!(sent["duplicate"], false, "{name}: {sent}");
        assert_eq!(
            sent["message"]["seq"], checks,
            "{name}: only the checks are stored in mallory's room"
        );
        assert_eq!(
            server.engine.stats().messages_sent,
            sent_before + checks,
            "{name}: one message stored per check, none by the row"
        );
        assert!(
            protected(&server, &ids).await == before,
            "{name}: what mallory may not change changed"
        );
    }
    assert!(table.len() > 90, "{} rows", table.len());
    assert_eq!(closes, 6, "the framing rows close");

    // Bob, in every conversation mallory attacked, heard of none of it: his own request's
    // answer is the first frame he gets.
    let unread = bob.ok(json!({"type":"unread_total"})).await;
    assert_eq!(unread["type"], "unread");
    assert!(bob.pending.is_empty(), "bob heard: {:?}", bob.pending);
}
