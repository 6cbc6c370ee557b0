//! The channel that carries a TCP socket's in-order segments from its host to its `ReadHalf` (rtsim
//! patch).
//!
//! 0.7.2 used a bounded `tokio::sync::mpsc` channel per socket: a semaphore permit, a slot in a linked
//! list of 32-slot blocks and an atomic waker per segment, built for many senders on many threads. A
//! socket has one sender (its host's `StreamSocket`) and one receiver, so this is a `VecDeque` behind a
//! `Mutex` (the stream must stay `Send`; the lock is never contended in a simulation).
//!
//! It behaves as the mpsc channel did, observably: `try_reserve` fails `Closed` once the receiver is
//! gone (checked before `Full`) and `Full` with `capacity` segments queued; the receiver's waker is
//! stored only when a poll finds the queue empty and is taken by the next send or by the sender's
//! drop; `poll_recv` takes one unit of tokio's cooperative budget as mpsc's does, so tasks yield at
//! the same polls; a dropped receiver drops what was queued.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use crate::host::SequencedSegment;

/// Why [`SegmentSender::try_reserve`] failed (as `tokio::sync::mpsc::error::TrySendError<()>`).
#[derive(Debug)]
pub(crate) enum TrySendError {
    Full,
    Closed,
}

struct State {
    queue: VecDeque<SequencedSegment>,
    capacity: usize,
    /// The receiver's waker, stored by a poll that found nothing.
    rx_waker: Option<Waker>,
    /// The sender has been dropped: once the queue is empty the receiver sees the end.
    tx_closed: bool,
    /// The receiver has been dropped: sends fail.
    rx_closed: bool,
}

/// The sending end (one per socket, held by the host).
pub(crate) struct SegmentSender {
    state: Arc<Mutex<State>>,
}

/// The receiving end (held by the stream's `ReadHalf`).
pub(crate) struct SegmentReceiver {
    state: Arc<Mutex<State>>,
}

/// Room for one segment, reserved by [`SegmentSender::try_reserve`].
pub(crate) struct Permit<'a> {
    state: MutexGuard<'a, State>,
}

/// A channel for up to `capacity` queued segments.
pub(crate) fn channel(capacity: usize) -> (SegmentSender, SegmentReceiver) {
    let state = Arc::new(Mutex::new(State {
        queue: VecDeque::new(),
        capacity,
        rx_waker: None,
        tx_closed: false,
        rx_closed: false,
    }));
    (
        SegmentSender {
            state: state.clone(),
        },
        SegmentReceiver { state },
    )
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding the lock; a poisoned one still holds consistent state.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SegmentSender {
    pub(crate) fn try_reserve(&self) -> Result<Permit<'_>, TrySendError> {
        let state = lock(&self.state);
        if state.rx_closed {
            return Err(TrySendError::Closed);
        }
        if state.queue.len() >= state.capacity {
            return Err(TrySendError::Full);
        }
        Ok(Permit { state })
    }
}

impl Permit<'_> {
    /// Queues the segment and wakes the receiver if it is waiting.
    pub(crate) fn send(mut self, segment: SequencedSegment) {
        self.state.queue.push_back(segment);
        let waker = self.state.rx_waker.take();
        drop(self);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for SegmentSender {
    fn drop(&mut self) {
        let waker = {
            let mut state = lock(&self.state);
            state.tx_closed = true;
            state.rx_waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl SegmentReceiver {
    /// The next segment; `None` once the sender is gone and everything queued has been read.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<SequencedSegment>> {
        let coop = ready!(tokio::task::coop::poll_proceed(cx));
        let mut state = lock(&self.state);
        if let Some(segment) = state.queue.pop_front() {
            coop.made_progress();
            return Poll::Ready(Some(segment));
        }
        if state.tx_closed {
            coop.made_progress();
            return Poll::Ready(None);
        }
        match &state.rx_waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => state.rx_waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next segment if one is queued (no budget, no waker).
    pub(crate) fn try_recv(&mut self) -> Option<SequencedSegment> {
        lock(&self.state).queue.pop_front()
    }
}

impl Drop for SegmentReceiver {
    fn drop(&mut self) {
        let queued = {
            let mut state = lock(&self.state);
            state.rx_closed = true;
            std::mem::take(&mut state.queue)
        };
        drop(queued);
    }
}
