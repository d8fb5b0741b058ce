//! A connection's bounded outbound queue.
//!
//! Like a bounded tokio `mpsc` of `Bytes`, but it allocates nothing until a frame is
//! queued and gives back a burst's memory once drained: an idle connection costs a few
//! words here instead of a pre-allocated block of slots (invariant 7 at 10,000 idle
//! connections).

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The queue holds `capacity` frames.
    Full,
    /// The writer is gone.
    Closed,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// No more frames will be queued (the connection is ending).
    senders_done: bool,
    /// The writer stopped reading.
    receiver_gone: bool,
}

/// The queue shared by the engine's fan-out, the reader's replies and the writer.
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
                // The writer was told when the queue stopped being empty, and it drains
                // everything before it waits again: no need to wake it per frame.
                return Ok(());
            }
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next queued frame, if any.
    pub(crate) fn try_recv(&self) -> Option<Bytes> {
        let mut st = self.state.lock();
        let frame = st.frames.pop_front();
        if st.frames.is_empty() && st.frames.capacity() > KEEP_CAPACITY {
            st.frames = VecDeque::new();
        }
        frame
    }

    /// Waits for the next frame; `None` once senders are done and the queue is empty.
    pub(crate) async fn recv(&self) -> Option<Bytes> {
        loop {
            {
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
    }

    /// Drops every queued frame (a close that does not deliver the backlog); returns how
    /// many there were.
    pub(crate) fn discard(&self) -> usize {
        let mut st = self.state.lock();
        let n = st.frames.len();
        st.frames = VecDeque::new();
        n
    }

    /// No more frames will be queued; the writer drains what is there and stops.
    pub(crate) fn finish(&self) {
        self.state.lock().senders_done = true;
        self.ready.notify_one();
    }

    /// The writer stopped: later frames are refused as closed.
    pub(crate) fn receiver_gone(&self) {
        let mut st = self.state.lock();
        st.receiver_gone = true;
        st.frames.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_ordered_and_closable() {
        let q = Outbox::new(2);
        assert_eq!(q.try_send(Bytes::from_static(b"a")), Ok(()));
        assert_eq!(q.try_send(Bytes::from_static(b"b")), Ok(()));
        assert_eq!(q.try_send(Bytes::from_static(b"c")), Err(Refused::Full));
        assert_eq!(q.recv().await.as_deref(), Some(&b"a"[..]));
        assert_eq!(q.try_recv().as_deref(), Some(&b"b"[..]));
        assert_eq!(q.try_recv(), None);
        q.try_send(Bytes::from_static(b"d")).expect("room again");
        q.finish();
        assert_eq!(q.try_send(Bytes::from_static(b"e")), Err(Refused::Closed));
        assert_eq!(
            q.recv().await.as_deref(),
            Some(&b"d"[..]),
            "drained after finish"
        );
        assert_eq!(q.recv().await, None);
        let q = Outbox::new(4);
        q.try_send(Bytes::from_static(b"old")).expect("queued");
        assert_eq!(q.discard(), 1);
        assert_eq!(q.try_recv(), None, "discarded");
        q.try_send(Bytes::from_static(b"new")).expect("still open");
        q.receiver_gone();
        assert_eq!(q.try_send(Bytes::from_static(b"x")), Err(Refused::Closed));
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_for_a_frame() {
        let q = std::sync::Arc::new(Outbox::new(8));
        let writer = {
            let q = q.clone();
            tokio::spawn(async move { q.recv().await })
        };
        tokio::task::yield_now().await;
        q.try_send(Bytes::from_static(b"late")).expect("queued");
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), writer).await;
        assert_eq!(
            got.expect("woken").expect("task").as_deref(),
            Some(&b"late"[..])
        );
    }

    #[test]
    fn a_drained_burst_gives_its_memory_back() {
        let q = Outbox::new(1000);
        for _ in 0..500 {
            q.try_send(Bytes::from_static(b"x")).expect("queued");
        }
        while q.try_recv().is_some() {}
        assert!(q.state.lock().frames.capacity() <= KEEP_CAPACITY);
    }
}
