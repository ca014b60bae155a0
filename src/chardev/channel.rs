//! A link whose far end is a task on any thread: the web console's clients.
//!
//! A console's links live on the chardev's thread, and sockets belong to
//! the thread whose reactor polls them; a web client is served on its own
//! connection's thread. [`channel`] makes the pair: the [`ChannelLink`]
//! (`Send`, handed to the chardev, which uses it as a [`Link`] like any
//! accepted connection: history, queue, overflow and writer rules apply
//! unchanged) and the [`ChannelEnd`] its server task keeps.
//!
//! Both directions are bounded: the far end takes at most [`TO_FAR`] bytes
//! from the console before the console's own per-client queue (and its
//! overflow rule) holds the rest, and queues at most [`FROM_FAR`] bytes of
//! input before it stops reading its peer.
use super::transport::Link;
use bytes::Bytes;
use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use tokio::io::ReadBuf;

/// Bytes the far end may hold unsent before the console's writes wait.
pub const TO_FAR: usize = 64 << 10;

/// Input bytes queued from the far end before it stops reading its peer.
pub const FROM_FAR: usize = 64 << 10;

#[derive(Debug, Default)]
struct Shared {
    to_far: VecDeque<Bytes>,
    to_far_bytes: usize,
    from_far: VecDeque<Bytes>,
    from_far_bytes: usize,
    /// The chardev's task (it reads, writes and watches for a hang-up).
    near: Option<Waker>,
    /// The far end's task.
    far: Option<Waker>,
    /// The far end is gone (its peer hung up): the link reads the end.
    far_gone: bool,
    /// The chardev let the link go (dropped or cut off).
    near_gone: bool,
}

fn lock(s: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn wake(w: &mut Option<Waker>) {
    if let Some(w) = w.take() {
        w.wake();
    }
}

/// A new link and its far end.
pub fn channel() -> (ChannelLink, ChannelEnd) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (ChannelLink { shared: shared.clone() }, ChannelEnd { shared })
}

/// The chardev's side (see the module docs).
#[derive(Debug)]
pub struct ChannelLink {
    shared: Arc<Mutex<Shared>>,
}

impl Link for ChannelLink {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut g = lock(&self.shared);
        let mut got = false;
        while buf.remaining() > 0 {
            let Some(mut front) = g.from_far.pop_front() else { break };
            let n = front.len().min(buf.remaining());
            buf.put_slice(&front.split_to(n));
            g.from_far_bytes -= n;
            got = true;
            if !front.is_empty() {
                g.from_far.push_front(front);
            }
        }
        if got {
            wake(&mut g.far);
            return Poll::Ready(Ok(()));
        }
        if g.far_gone {
            return Poll::Ready(Ok(()));
        }
        g.near = Some(cx.waker().clone());
        Poll::Pending
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let mut g = lock(&self.shared);
        if g.far_gone {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = TO_FAR.saturating_sub(g.to_far_bytes);
        if room == 0 {
            g.near = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = room.min(data.len());
        g.to_far.push_back(Bytes::copy_from_slice(&data[..n]));
        g.to_far_bytes += n;
        wake(&mut g.far);
        Poll::Ready(Ok(n))
    }

    fn poll_hangup(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = lock(&self.shared);
        if g.far_gone {
            return Poll::Ready(());
        }
        g.near = Some(cx.waker().clone());
        Poll::Pending
    }

    fn shutdown(&mut self) {
        let mut g = lock(&self.shared);
        g.near_gone = true;
        wake(&mut g.far);
    }
}

impl Drop for ChannelLink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The far end's side (see the module docs).
#[derive(Debug)]
pub struct ChannelEnd {
    shared: Arc<Mutex<Shared>>,
}

impl ChannelEnd {
    /// Output for the far end: every chunk queued now (`None` once the
    /// chardev let the link go and nothing is left).
    pub fn poll_output(&self, cx: &mut Context<'_>) -> Poll<Option<Vec<Bytes>>> {
        let mut g = lock(&self.shared);
        if !g.to_far.is_empty() {
            let out: Vec<Bytes> = g.to_far.drain(..).collect();
            g.to_far_bytes = 0;
            wake(&mut g.near);
            return Poll::Ready(Some(out));
        }
        if g.near_gone {
            return Poll::Ready(None);
        }
        g.far = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ready once there is room for input (false: the chardev let go).
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut g = lock(&self.shared);
        if g.near_gone {
            return Poll::Ready(false);
        }
        if g.from_far_bytes < FROM_FAR {
            return Poll::Ready(true);
        }
        g.far = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Input from the far end for the chardev.
    pub fn input(&self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        let mut g = lock(&self.shared);
        g.from_far_bytes += data.len();
        g.from_far.push_back(data);
        wake(&mut g.near);
    }
}

impl Drop for ChannelEnd {
    fn drop(&mut self) {
        let mut g = lock(&self.shared);
        g.far_gone = true;
        wake(&mut g.near);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    #[test]
    fn bytes_go_both_ways_and_the_ends_see_each_other_go() {
        let (mut link, end) = channel();
        assert_eq!(link.poll_write(&mut cx(), b"out").map(|r| r.unwrap()), Poll::Ready(3));
        match end.poll_output(&mut cx()) {
            Poll::Ready(Some(v)) => assert_eq!(v, vec![Bytes::from_static(b"out")]),
            other => panic!("{other:?}"),
        }
        end.input(Bytes::from_static(b"typed"));
        let mut b = [0u8; 3];
        let mut rb = ReadBuf::new(&mut b);
        assert!(link.poll_read(&mut cx(), &mut rb).is_ready());
        assert_eq!(rb.filled(), b"typ");
        let mut rb = ReadBuf::new(&mut b);
        assert!(link.poll_read(&mut cx(), &mut rb).is_ready());
        assert_eq!(rb.filled(), b"ed");
        assert!(link.poll_hangup(&mut cx()).is_pending());
        drop(end);
        assert!(link.poll_hangup(&mut cx()).is_ready());
        let mut rb = ReadBuf::new(&mut b);
        assert!(matches!(link.poll_read(&mut cx(), &mut rb), Poll::Ready(Ok(()))));
        assert!(rb.filled().is_empty(), "the end of input");
        assert!(link.poll_write(&mut cx(), b"x").is_ready());
    }

    #[test]
    fn output_is_bounded_and_input_backs_up() {
        let (mut link, end) = channel();
        let big = vec![0u8; TO_FAR + 10];
        assert_eq!(
            link.poll_write(&mut cx(), &big).map(|r| r.unwrap()),
            Poll::Ready(TO_FAR)
        );
        assert!(link.poll_write(&mut cx(), b"x").is_pending());
        assert!(matches!(end.poll_output(&mut cx()), Poll::Ready(Some(_))));
        assert!(link.poll_write(&mut cx(), b"x").is_ready());
        end.input(Bytes::from(vec![0u8; FROM_FAR]));
        assert!(end.poll_room(&mut cx()).is_pending());
        link.shutdown();
        assert_eq!(end.poll_room(&mut cx()), Poll::Ready(false));
        match end.poll_output(&mut cx()) {
            Poll::Ready(Some(v)) => assert_eq!(v, vec![Bytes::from_static(b"x")], "what was queued still goes"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(end.poll_output(&mut cx()), Poll::Ready(None)), "then the end");
    }
}
