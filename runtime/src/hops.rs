//! In-process hops run on the caller's task.
//!
//! A guest's outgoing request to a container of this process (a sidecar at
//! `localhost`, another pod, a Service endpoint) is a future that runs the callee's
//! instance. wasi-http awaits the response in a task of its own; if that task also ran
//! the callee, every hop would hand the request to another worker thread and the
//! answer back again, and on a small node those two wake-ups cost more than the callee
//! itself (they were half of a sidecar hop's latency). So the hop is queued on the
//! caller's [`Hops`] instead, and the [`Driven`] future that runs the caller's guest
//! polls it whenever the guest waits: caller and callee take turns on one thread, as
//! the two ends of a loopback socket would on one core, and wasi-http's task is only
//! handed the finished response.
//!
//! A hop queued when no driver is polling (before the guest first ran, or after it
//! ended) runs in a task of its own, so it never waits on a driver that is gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

/// One hop: the callee's side of a request, run to the end of its response.
pub type Hop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The hops one store's guest has started and its driver has not yet taken.
#[derive(Clone, Default)]
pub struct Hops(Arc<Mutex<Inbox>>);

#[derive(Default)]
struct Inbox {
    queued: Vec<Hop>,
    /// The driver's task, while a driver runs the guest.
    driver: Option<Waker>,
    /// The driver is inside its poll: it takes what is queued before it returns.
    polling: bool,
}

impl Hops {
    /// Runs `hop` on the driver's task, or in a task of its own when no driver runs.
    pub fn start(&self, hop: Hop) {
        let mut inbox = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &inbox.driver {
            Some(driver) => {
                if !inbox.polling {
                    driver.wake_by_ref();
                }
                inbox.queued.push(hop);
            }
            None => {
                drop(inbox);
                detach(hop);
            }
        }
    }

    fn enter(&self, waker: &Waker) {
        let mut inbox = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut inbox.driver {
            Some(w) => w.clone_from(waker),
            None => inbox.driver = Some(waker.clone()),
        }
        inbox.polling = true;
    }

    /// The driver is done polling its guest: takes the hops the guest queued meanwhile.
    /// (The hops it then polls queue on their own stores, never on this one.)
    fn leave(&self) -> Vec<Hop> {
        let mut inbox = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inbox.polling = false;
        std::mem::take(&mut inbox.queued)
    }

    /// No driver any more: later hops get tasks of their own; returns those queued.
    fn close(&self) -> Vec<Hop> {
        let mut inbox = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        inbox.driver = None;
        inbox.polling = false;
        std::mem::take(&mut inbox.queued)
    }
}

/// Runs `future` in a task of its own; outside a runtime (one shutting down drops its
/// tasks' futures) there is nothing left to run it, and it is dropped.
pub fn detach<F: Future<Output = ()> + Send + 'static>(future: F) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(future);
    }
}

/// A guest's run and the hops it starts, polled together; resolves with the guest's
/// output when the guest is done. Hops still running then go on in tasks of their own
/// (a callee still streaming a body the caller did not wait for).
pub struct Driven<F: Future> {
    guest: Pin<Box<F>>,
    hops: Hops,
    running: Vec<Hop>,
}

impl<F: Future> Driven<F> {
    pub fn new(guest: F, hops: Hops) -> Self {
        Self {
            guest: Box::pin(guest),
            hops,
            running: Vec::new(),
        }
    }
}

impl<F: Future> Future for Driven<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.hops.enter(cx.waker());
        let guest = this.guest.as_mut().poll(cx);
        this.running.extend(this.hops.leave());
        this.running.retain_mut(|hop| hop.as_mut().poll(cx).is_pending());
        match guest {
            Poll::Ready(out) => {
                for hop in this.running.drain(..).chain(this.hops.close()) {
                    detach(hop);
                }
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: Future> Drop for Driven<F> {
    fn drop(&mut self) {
        // Dropped before the guest ended (its request was cancelled): the hops it
        // started are cancelled with it, as a process's sockets close when it dies.
        self.hops.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::oneshot;

    /// A guest that starts a hop and waits for its answer: the driver runs the hop in
    /// the guest's own task, not in one of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_driver_runs_the_hops_its_guest_starts_in_its_own_task() {
        let hops = Hops::default();
        let started = hops.clone();
        let guest = async move {
            let (tx, rx) = oneshot::channel();
            started.start(Box::pin(async move {
                tokio::task::yield_now().await;
                let _ = tx.send(tokio::task::try_id());
            }));
            (tokio::task::try_id(), rx.await.expect("the hop answered"))
        };
        let (guest_task, hop_task) = tokio::spawn(Driven::new(guest, hops)).await.expect("driver");
        assert!(guest_task.is_some());
        assert_eq!(hop_task, guest_task);
    }

    /// A hop started while the driver is not inside its poll wakes the driver.
    #[tokio::test(flavor = "current_thread")]
    async fn a_hop_started_between_polls_wakes_the_driver() {
        let hops = Hops::default();
        let from_outside = hops.clone();
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<u8>();
        let guest = async move { done_rx.await.expect("answer") };
        let outside = tokio::spawn(async move {
            go_rx.await.expect("go");
            from_outside.start(Box::pin(async move {
                let _ = done_tx.send(7);
            }));
        });
        let mut driven = Driven::new(guest, hops);
        assert!(futures_poll_once(&mut driven).await.is_pending());
        go_tx.send(()).expect("send");
        assert_eq!(driven.await, 7);
        outside.await.expect("outside task");
    }

    /// Hops left when the guest ends run on in tasks of their own, and a hop started
    /// after that does too.
    #[tokio::test(flavor = "current_thread")]
    async fn hops_outlive_their_guest_in_tasks_of_their_own() {
        let hops = Hops::default();
        let started = hops.clone();
        let finished = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let f = finished.clone();
        let guest = async move {
            started.start(Box::pin(async move {
                let _ = release_rx.await;
                f.fetch_add(1, Ordering::SeqCst);
            }));
        };
        Driven::new(guest, hops.clone()).await;
        assert_eq!(finished.load(Ordering::SeqCst), 0);
        release_tx.send(()).expect("release");
        let (late_tx, late_rx) = oneshot::channel();
        hops.start(Box::pin(async move {
            let _ = late_tx.send(());
        }));
        late_rx.await.expect("the late hop ran");
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while finished.load(Ordering::SeqCst) == 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the left hop finished");
    }

    async fn futures_poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
    }
}
