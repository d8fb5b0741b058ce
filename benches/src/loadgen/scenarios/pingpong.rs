//! Direct ping-pong: the round trip between two clients.

use std::time::Instant;

use super::{room_of, run_prefix, server, token, user_of};
use crate::loadgen::client::{connect, expect, join, new_histogram, send_text, Shared};
use crate::loadgen::procfs::cpu_percent;
use crate::loadgen::proto::{Incoming, Proto, Stamp};
use crate::loadgen::{Options, Outcome};

/// Direct ping-pong: two clients bounce a message back and forth (ours: in a direct
/// conversation between friends; the peers: a room of two). Reports the round trip.
///
/// # Errors
/// When the setup fails or a round trip times out.
pub async fn pingpong(opts: &Options, name: &str) -> Result<Outcome, String> {
    if opts.proto == Proto::ChatProto {
        return Err("the binary dialect (--proto chat-proto) runs `fanout` and `idle`; this scenario speaks JSON".into());
    }
    let prefix = run_prefix(name);
    let (ua, ub) = (user_of(&prefix, 0), user_of(&prefix, 1));
    let proto = opts.proto;
    let mut a = connect(proto, &opts.addr, &token(&opts.secret, &ua)).await?;
    let mut b = connect(proto, &opts.addr, &token(&opts.secret, &ub)).await?;
    let handle = match proto {
        Proto::Chat => {
            send_text(
                &mut a,
                format!(r#"{{"id":"f","type":"friend_request","user":"{ub}"}}"#),
            )
            .await?;
            expect(&mut a, proto, |i| matches!(i, Incoming::Reply)).await?;
            send_text(
                &mut b,
                format!(r#"{{"id":"f","type":"friend_accept","user":"{ua}"}}"#),
            )
            .await?;
            expect(&mut b, proto, |i| matches!(i, Incoming::Reply)).await?;
            send_text(
                &mut a,
                format!(r#"{{"id":"join","type":"open_direct","user":"{ub}"}}"#),
            )
            .await?;
            match expect(&mut a, proto, |i| matches!(i, Incoming::Joined(_))).await? {
                Incoming::Joined(id) => id,
                _ => return Err("open_direct answered something else".into()),
            }
        }
        _ => {
            let room = room_of(&prefix, 0);
            join(&mut a, proto, &room).await?;
            join(&mut b, proto, &room).await?
        }
    };
    let shared = Shared::new(1);
    let mut hist = new_histogram();
    let start = Instant::now();
    let mut trips = 0u64;
    let mut n = 0u32;
    let s0 = server(opts);
    while trips < opts.round_trips as u64 && start.elapsed() < opts.duration {
        let t = Instant::now();
        for leg in 0..2 {
            let (from, to) = if leg == 0 {
                (&mut a, &mut b)
            } else {
                (&mut b, &mut a)
            };
            let stamp = Stamp {
                sent_ns: shared.epoch.elapsed().as_nanos() as u64,
                sender: 0,
                n,
            };
            n += 1;
            send_text(from, proto.send_frame(&handle, &stamp.body())).await?;
            expect(to, proto, |i| matches!(i, Incoming::Delivery { .. })).await?;
        }
        hist.saturating_record((t.elapsed().as_micros() as u64).max(1));
        trips += 1;
    }
    let s1 = server(opts);
    let _ = a.close(None).await;
    let _ = b.close(None).await;
    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{trips} round trips (A → B → A), one at a time{}",
        if proto == Proto::Chat {
            ", in a direct conversation between friends"
        } else {
            ", in a room of two"
        }
    );
    o.connections = 2;
    o.deliveries_per_s = Some(trips as f64 * 2.0 / start.elapsed().as_secs_f64());
    o.p50_ms = Some(hist.value_at_quantile(0.5) as f64 / 1000.0);
    o.p99_ms = Some(hist.value_at_quantile(0.99) as f64 / 1000.0);
    o.p999_ms = Some(hist.value_at_quantile(0.999) as f64 / 1000.0);
    o.samples = hist.len();
    o.notes
        .push("latency is the round trip: two deliveries".into());
    if let (Some(x), Some(y)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&x, &y));
        o.server_rss_kib = Some(y.rss_kib);
    }
    Ok(o)
}
