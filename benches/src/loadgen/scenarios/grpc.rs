//! The fan-out in the gRPC dialect: every member holds one `chat.ChatService/Connect`
//! stream (a tonic client, HTTP/2, a connection of its own), joins its room and sends
//! and receives through frames. The pacer, the counters, the latency histogram and the
//! loss and seq checks are the WebSocket fan-out's.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_transport_grpc::proto::{
    self, chat_service_client::ChatServiceClient, client_frame::Command, event, reply,
    server_frame::Frame,
};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Streaming;

use super::{
    account_losses, errors, missing_by_seq, owed_deliveries, percentiles, room_of, run_prefix,
    server, settle, spawn_pacer, token, user_of, SETTLE_LIMIT,
};
use crate::loadgen::client::{phase, Exit, Shared, Tracker, SETUP_TIMEOUT};
use crate::loadgen::procfs::cpu_percent;
use crate::loadgen::proto::Stamp;
use crate::loadgen::tls::TlsTrust;
use crate::loadgen::{Options, Outcome};

/// One member: its stream's two halves and what it holds.
struct Member {
    id: u32,
    room: usize,
    conversation: String,
    out: mpsc::Sender<proto::ClientFrame>,
    frames: Streaming<proto::ServerFrame>,
    tracker: Tracker,
    written: u32,
}

/// The endpoint every member connects to (`https` with `--tls-ca FILE`, the server
/// name `localhost`).
fn endpoint(opts: &Options) -> Result<Endpoint, String> {
    let scheme = if opts.tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{}", opts.addr))
        .map_err(|e| format!("endpoint: {e}"))?
        .tcp_nodelay(true)
        .connect_timeout(SETUP_TIMEOUT);
    match &opts.tls {
        None => {}
        Some(TlsTrust::CaFile(path)) => {
            let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
            ep = ep
                .tls_config(
                    ClientTlsConfig::new()
                        .ca_certificate(Certificate::from_pem(pem))
                        .domain_name("localhost"),
                )
                .map_err(|e| format!("TLS: {e}"))?;
        }
        Some(TlsTrust::AnyCert) => {
            return Err("the grpc dialect needs --tls-ca FILE (a CA), not any".into())
        }
    }
    Ok(ep)
}

/// Reads frames until one matches; an error frame or the end of the stream fails.
async fn expect(
    frames: &mut Streaming<proto::ServerFrame>,
    want: impl Fn(&Frame) -> bool,
) -> Result<Frame, String> {
    let deadline = tokio::time::Instant::now() + SETUP_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, frames.next())
            .await
            .map_err(|_| "timed out waiting for the server".to_owned())?;
        match next {
            Some(Ok(proto::ServerFrame {
                frame: Some(frame), ..
            })) => {
                if want(&frame) {
                    return Ok(frame);
                }
                if let Frame::Error(e) = frame {
                    return Err(format!("error frame: {e:?}"));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(status)) => return Err(format!("stream ended: {status}")),
            None => return Err("stream ended".into()),
        }
    }
}

/// Connects member `id`, opens its stream (the `hello` arrived) and joins its room.
async fn open_member(
    ep: Endpoint,
    secret: String,
    prefix: String,
    id: u32,
    members: usize,
) -> Result<Member, String> {
    let room = id as usize / members;
    let tok = token(&secret, &user_of(&prefix, id));
    let fut = async {
        let channel = ep.connect().await.map_err(|e| format!("connect: {e}"))?;
        let (out, rx) = mpsc::channel::<proto::ClientFrame>(256);
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {tok}")
                .parse()
                .map_err(|_| "token metadata".to_owned())?,
        );
        let mut frames = ChatServiceClient::new(channel)
            .connect(req)
            .await
            .map_err(|s| format!("Connect: {s}"))?
            .into_inner();
        expect(&mut frames, |f| matches!(f, Frame::Hello(_))).await?;
        out.send(proto::ClientFrame {
            request_id: "join".into(),
            command: Some(Command::Join(proto::JoinRequest {
                room: room_of(&prefix, room),
                create: true,
            })),
        })
        .await
        .map_err(|_| "send join: stream closed".to_owned())?;
        let joined = expect(&mut frames, |f| {
            matches!(
                f,
                Frame::Reply(proto::Reply {
                    reply: Some(reply::Reply::Room(_))
                })
            )
        })
        .await?;
        let conversation = match joined {
            Frame::Reply(proto::Reply {
                reply:
                    Some(reply::Reply::Room(proto::RoomReply {
                        conversation: Some(c),
                        ..
                    })),
            }) => c.id,
            _ => return Err("join: no conversation in the reply".into()),
        };
        Ok(Member {
            id,
            room,
            conversation,
            out,
            frames,
            tracker: Tracker::default(),
            written: 0,
        })
    };
    tokio::time::timeout(SETUP_TIMEOUT, fut)
        .await
        .map_err(|_| "connect timed out".to_owned())?
}

impl Member {
    fn now_ns(shared: &Shared) -> u64 {
        u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Counts a frame as the WebSocket client counts its text frames.
    fn on_frame(&mut self, shared: &Shared, frame: Frame) {
        match frame {
            Frame::Event(proto::Event {
                event:
                    Some(event::Event::Message(proto::MessageEvent {
                        message: Some(m), ..
                    })),
            }) => {
                let Some(stamp) = Stamp::parse(&m.body) else {
                    return;
                };
                shared.deliveries.fetch_add(1, Ordering::Relaxed);
                shared.room_delivered[self.room].fetch_add(1, Ordering::Relaxed);
                if shared.recording.load(Ordering::Relaxed) {
                    let us = Self::now_ns(shared).saturating_sub(stamp.sent_ns) / 1000;
                    let mut h = shared.hist.lock().unwrap_or_else(|p| p.into_inner());
                    h.saturating_record(us.max(1));
                }
                self.tracker.on_seq(m.seq);
            }
            Frame::Reply(proto::Reply {
                reply:
                    Some(reply::Reply::Sent(proto::SentReply {
                        message: Some(m), ..
                    })),
            }) => {
                shared.acks.fetch_add(1, Ordering::Relaxed);
                shared.room_acked[self.room].fetch_add(1, Ordering::Relaxed);
                self.tracker.on_seq(m.seq);
                shared.room_seq[self.room].fetch_max(m.seq, Ordering::Relaxed);
            }
            Frame::Error(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                let mut first = shared.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(format!("{e:?}").chars().take(200).collect());
                }
            }
            _ => {}
        }
    }

    fn next_message(&mut self, shared: &Shared) -> proto::ClientFrame {
        let stamp = Stamp {
            sent_ns: Self::now_ns(shared),
            sender: self.id,
            n: self.written,
        };
        self.written += 1;
        proto::ClientFrame {
            request_id: String::new(),
            command: Some(Command::Send(proto::SendRequest {
                conversation: self.conversation.clone(),
                body: stamp.body(),
                client_id: None,
                ..Default::default()
            })),
        }
    }

    /// Reads and counts what arrives, and sends a message for every tick on `sends`,
    /// until the phase says stop.
    async fn pump(
        &mut self,
        shared: &Shared,
        sends: &mut mpsc::Receiver<()>,
        phase: &mut watch::Receiver<u8>,
    ) -> Exit {
        let mut sends_open = true;
        loop {
            if *phase.borrow_and_update() >= phase::STOP {
                return Exit::Phase;
            }
            tokio::select! {
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Exit::Phase;
                    }
                }
                tick = sends.recv(), if sends_open => {
                    if tick.is_some() {
                        let frame = self.next_message(shared);
                        if self.out.send(frame).await.is_err() {
                            return Exit::Error;
                        }
                        shared.sent.fetch_add(1, Ordering::Relaxed);
                        shared.room_sent[self.room].fetch_add(1, Ordering::Relaxed);
                    } else {
                        sends_open = false;
                    }
                }
                next = self.frames.next() => match next {
                    Some(Ok(proto::ServerFrame { frame: Some(frame), .. })) => {
                        self.on_frame(shared, frame);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        shared.server_closed.fetch_add(1, Ordering::Relaxed);
                        return Exit::ServerClosed;
                    }
                },
            }
        }
    }
}

/// Fan-out over gRPC: R rooms × M members, every member sending at `rate` messages per
/// second (or the rate that offers `offered` deliveries per second).
///
/// # Errors
/// When the setup fails.
pub async fn grpc_fanout(opts: &Options, name: &str) -> Result<Outcome, String> {
    let (rooms, members) = (opts.rooms, opts.members.max(2));
    let n = rooms * members;
    let per_member = match opts.offered {
        Some(d) => d / (n as f64 * (members - 1) as f64),
        None => opts.rate,
    };
    let total_rate = per_member * n as f64;
    let prefix = run_prefix(name);
    let shared = Arc::new(Shared::new(rooms));
    let ep = endpoint(opts)?;

    // Setup: the first member of each room first (it creates the room), then the rest.
    let t0 = Instant::now();
    let firsts: Vec<u32> = (0..rooms).map(|r| (r * members) as u32).collect();
    let rest: Vec<u32> = (0..n as u32)
        .filter(|id| !(*id as usize).is_multiple_of(members))
        .collect();
    let mut all = Vec::with_capacity(n);
    for batch in [firsts, rest] {
        let got: Vec<Result<Member, String>> =
            futures::stream::iter(batch.into_iter().map(|id| {
                open_member(ep.clone(), opts.secret.clone(), prefix.clone(), id, members)
            }))
            .buffer_unordered(opts.setup_concurrency)
            .collect()
            .await;
        for m in got {
            all.push(m?);
        }
    }
    all.sort_by_key(|m| m.id);
    let setup = t0.elapsed();

    // Pumps, and the pacer spreading the rate over every member, interleaving rooms.
    let (phase_tx, phase_rx) = watch::channel(phase::RUN);
    let mut senders = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for mut m in all {
        let (tx, mut rx) = mpsc::channel::<()>(64);
        senders.push((m.id as usize % members, m.room, tx));
        let shared = shared.clone();
        let mut phase_rx = phase_rx.clone();
        tasks.push(tokio::spawn(async move {
            let exit = m.pump(&shared, &mut rx, &mut phase_rx).await;
            (m, exit)
        }));
    }
    senders.sort_by_key(|(m, r, _)| (*m, *r));
    let senders = senders.into_iter().map(|(_, _, tx)| tx).collect();
    let pacer_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pacer = spawn_pacer(
        senders,
        total_rate,
        pacer_stop.clone(),
        Arc::new(std::sync::atomic::AtomicU64::new(0)),
    );

    tokio::time::sleep(opts.warmup).await;
    let d0 = shared.deliveries.load(Ordering::Relaxed);
    let s0 = server(opts);
    shared.recording.store(true, Ordering::Relaxed);
    let mut peak_rss = s0.map(|s| s.rss_kib).unwrap_or(0);
    let window_start = Instant::now();
    while window_start.elapsed() < opts.duration {
        tokio::time::sleep(Duration::from_millis(250).min(opts.duration)).await;
        if let Some(s) = server(opts) {
            peak_rss = peak_rss.max(s.rss_kib);
        }
    }
    shared.recording.store(false, Ordering::Relaxed);
    let owed_at_close = owed_deliveries(&shared, members);
    let d1 = shared.deliveries.load(Ordering::Relaxed);
    let s1 = server(opts);
    let dt = window_start.elapsed().as_secs_f64();

    // Stop sending, let deliveries settle, stop the members.
    pacer_stop.store(true, Ordering::Relaxed);
    let skipped = pacer.await.unwrap_or(0);
    let settled = settle(&shared, SETTLE_LIMIT).await;
    let _ = phase_tx.send(phase::STOP);
    let mut done = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(r) = t.await {
            done.push(r);
        }
    }

    let mut o = Outcome::new(opts, name);
    o.params = format!(
        "{rooms} rooms × {members} members, {per_member:.3} msg/s each, 64-byte bodies, {:.0} s after {:.0} s warm-up, gRPC Connect streams{}",
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        if opts.tls.is_some() { " over TLS" } else { "" }
    );
    o.connections = n as u64;
    o.setup_s = Some(setup.as_secs_f64());
    o.offered_per_s = Some(total_rate * (members - 1) as f64);
    o.deliveries_per_s = Some((d1 - d0) as f64 / dt);
    o.messages_sent = shared.sent.load(Ordering::Relaxed);
    o.deliveries = shared.deliveries.load(Ordering::Relaxed);
    percentiles(&shared, &mut o);
    if let (Some(a), Some(b)) = (s0, s1) {
        o.server_cpu_pct = Some(cpu_percent(&a, &b));
        o.server_rss_kib = Some(b.rss_kib);
        o.server_peak_rss_kib = Some(peak_rss);
    }
    if skipped > 0 {
        o.notes.push(format!(
            "{skipped} sends skipped (a member's send queue was full: the server or the load generator could not keep up)"
        ));
    }
    errors(&shared, &mut o);
    o.queued_at_close = Some(owed_at_close.saturating_sub(d1));
    let by_seq = missing_by_seq(done.iter().map(|(m, _)| (&m.tracker, m.room)), &shared);
    account_losses(&shared, members, Some(by_seq), settled, &mut o);
    let gaps = done
        .iter()
        .filter(|(m, _)| {
            m.tracker.contiguous < shared.room_seq[m.room].load(Ordering::Relaxed)
                || !m.tracker.ahead.is_empty()
        })
        .count() as u64;
    o.gaps = Some(gaps);
    Ok(o)
}
