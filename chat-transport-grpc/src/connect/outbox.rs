//! A `Connect` stream's bounded outbound queue, which also knows how long its frames
//! have waited for the client.
//!
//! The same design as the WebSocket's: memory is taken only while frames wait, and the
//! queue can be emptied from any side (a close that does not deliver the backlog).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds `capacity` frames.
    Full,
    /// The stream is ending or gone.
    Closed,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// No more frames will be queued.
    senders_done: bool,
    /// The response stream is gone.
    receiver_gone: bool,
    /// Since when frames have waited without the client taking one.
    waiting_since: Option<Instant>,
}

/// The queue shared by the engine's fan-out, the replies and the response stream.
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
}

/// A drained queue keeps at most this much room; a larger one is given back.
const KEEP_CAPACITY: usize = 16;

impl Outbox {
    pub(crate) fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues a frame without waiting.
    pub(crate) fn try_send(&self, frame: Bytes) -> Result<(), Refused> {
        {
            let mut st = self.state.lock();
            if st.receiver_gone || st.senders_done {
                return Err(Refused::Closed);
            }
            if st.frames.len() >= self.capacity {
                return Err(Refused::Full);
            }
            st.frames.push_back(frame);
            if st.frames.len() > 1 {
                return Ok(());
            }
            st.waiting_since = Some(Instant::now());
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next queued frame, if any.
    pub(crate) fn try_recv(&self) -> Option<Bytes> {
        let mut st = self.state.lock();
        let frame = st.frames.pop_front();
        if st.frames.is_empty() {
            st.waiting_since = None;
            if st.frames.capacity() > KEEP_CAPACITY {
                st.frames = VecDeque::new();
            }
        } else if frame.is_some() {
            st.waiting_since = Some(Instant::now());
        }
        frame
    }

    /// Waits for the next frame; `None` once senders are done and the queue is empty.
    pub(crate) async fn recv(&self) -> Option<Bytes> {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(frame) = self.try_recv() {
                return Some(frame);
            }
            if self.state.lock().senders_done {
                return None;
            }
            notified.await;
        }
    }

    /// How long queued frames have waited for the client without it taking one.
    pub(crate) fn stalled_for(&self, now: Instant) -> Duration {
        self.state
            .lock()
            .waiting_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Drops every queued frame; returns how many there were.
    pub(crate) fn discard(&self) -> usize {
        let mut st = self.state.lock();
        let n = st.frames.len();
        st.frames = VecDeque::new();
        st.waiting_since = None;
        n
    }

    /// No more frames will be queued; the stream drains what is there and ends.
    pub(crate) fn finish(&self) {
        self.state.lock().senders_done = true;
        self.ready.notify_one();
    }

    /// The response stream is gone: later frames are refused as closed.
    pub(crate) fn receiver_gone(&self) {
        let mut st = self.state.lock();
        st.receiver_gone = true;
        st.frames = VecDeque::new();
        st.waiting_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bounded_ordered_and_it_knows_how_long_frames_waited() {
        let q = Outbox::new(2);
        assert_eq!(q.stalled_for(Instant::now()), Duration::ZERO);
        q.try_send(Bytes::from_static(b"a")).expect("room");
        q.try_send(Bytes::from_static(b"b")).expect("room");
        assert_eq!(q.try_send(Bytes::from_static(b"c")), Err(Refused::Full));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(q.stalled_for(Instant::now()), Duration::from_secs(3));
        assert_eq!(q.recv().await.as_deref(), Some(&b"a"[..]));
        // Taking one is progress: the clock starts again for the rest.
        assert_eq!(q.stalled_for(Instant::now()), Duration::ZERO);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(q.stalled_for(Instant::now()), Duration::from_secs(1));
        assert_eq!(q.try_recv().as_deref(), Some(&b"b"[..]));
        assert_eq!(q.stalled_for(Instant::now()), Duration::ZERO, "empty");
        q.try_send(Bytes::from_static(b"d")).expect("room");
        q.finish();
        assert_eq!(q.try_send(Bytes::from_static(b"e")), Err(Refused::Closed));
        assert_eq!(q.recv().await.as_deref(), Some(&b"d"[..]), "drained");
        assert_eq!(q.recv().await, None);
    }

    #[test]
    fn discarding_and_a_gone_receiver_refuse_later_frames() {
        let q = Outbox::new(4);
        q.try_send(Bytes::from_static(b"old")).expect("room");
        assert_eq!(q.discard(), 1);
        assert_eq!(q.try_recv(), None);
        q.try_send(Bytes::from_static(b"new")).expect("still open");
        q.receiver_gone();
        assert_eq!(q.try_send(Bytes::from_static(b"x")), Err(Refused::Closed));
        assert_eq!(q.try_recv(), None);
    }
}
