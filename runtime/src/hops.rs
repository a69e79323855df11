//! In-process hops run on the caller's task.
//!
//! A guest's outgoing request to a container of this process (a sidecar at
//! `localhost`, another pod, a Service endpoint) is a future that runs the callee's
//! instance. Run in a task of its own, every hop would hand the request to another
//! worker thread and the answer back again, and on a small node those wake-ups cost
//! more than the callee itself. So the hop is queued on the caller's [`Hops`] instead,
//! and the [`Driven`] future that runs the caller's guest polls it whenever the guest
//! waits: caller and callee take turns on one thread, as the two ends of a loopback
//! socket would on one core. The guest waits for the answer on a channel
//! (`hop_http`), and the wakes the two give each other stay inside the driver
//! ([`QuietWaker`]), so a hop costs tokio's scheduler nothing.
//!
//! A hop queued when no driver is polling (before the guest first ran, or after it
//! ended) runs in a task of its own, so it never waits on a driver that is gone.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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
///
/// Caller and callee wake each other from inside the driver's poll: the callee sets its
/// response or reads the body the caller waits to write, the caller writes the body the
/// callee waits for. Both are polled with a [`QuietWaker`] whose window is the other's
/// turn, so such a wake only has the driver poll the woken side in this same poll.
pub struct Driven<F: Future> {
    guest: Pin<Box<F>>,
    hops: Hops,
    running: Vec<Hop>,
    /// The guest's waker, quiet while the hops are polled.
    guest_wakes: QuietWaker,
    /// The hops' waker, quiet while the guest is polled (every running hop is polled
    /// after the guest anyway).
    hop_wakes: QuietWaker,
}

impl<F: Future> Driven<F> {
    pub fn new(guest: F, hops: Hops) -> Self {
        Self {
            guest: Box::pin(guest),
            hops,
            running: Vec::new(),
            guest_wakes: QuietWaker::new(),
            hop_wakes: QuietWaker::new(),
        }
    }
}

/// How many times one poll goes back to the guest for wakes its hops gave it, before it
/// hands the next turn to tokio (so a ping-pong between a guest and its hop cannot keep
/// a worker from its other tasks).
const TURNS_PER_POLL: usize = 32;

impl<F: Future> Future for Driven<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.guest_wakes.set_task(cx.waker());
        this.hop_wakes.set_task(cx.waker());
        let guest_waker = this.guest_wakes.waker().clone();
        let hop_waker = this.hop_wakes.waker().clone();
        for _ in 0..TURNS_PER_POLL {
            this.hops.enter(cx.waker());
            let (guest, _) = this
                .hop_wakes
                .quiet(|| this.guest.as_mut().poll(&mut Context::from_waker(&guest_waker)));
            this.running.extend(this.hops.leave());
            if let Poll::Ready(out) = guest {
                for hop in this.running.drain(..).chain(this.hops.close()) {
                    detach(hop);
                }
                return Poll::Ready(out);
            }
            let running = &mut this.running;
            let ((), woken) = this.guest_wakes.quiet(|| {
                let mut hop_cx = Context::from_waker(&hop_waker);
                running.retain_mut(|hop| hop.as_mut().poll(&mut hop_cx).is_pending());
            });
            if !woken {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A waker for a future that its owner polls again itself after a known window of its
/// own poll: a wake that comes inside the window is only noted, and the owner acts on
/// the note; any other wake goes to the task.
///
/// Passed on to tokio, a wake of the task that is running is a yield: the task goes to
/// the back of the run queue, and an idle worker is woken (a system call, and on a
/// virtual machine an interrupt to another core) to take it. An in-process hop wakes
/// its caller that way from inside the caller's own task, so every hop would move the
/// caller to the other core and back. On a 2-core node, this and `hop_http` together
/// took a sidecar hop from 0.12 ms to 0.07 ms (`benches/sidecar_hop.rs`); either alone
/// gained nothing measurable.
pub(crate) struct QuietWaker {
    wakes: Arc<Wakes>,
    waker: Waker,
}

#[derive(Default)]
struct Wakes {
    /// The owner is inside its window.
    inside: AtomicBool,
    /// Woken inside the window.
    woken: AtomicBool,
    /// The waker of the task that polls the owner.
    task: Mutex<Option<Waker>>,
}

impl QuietWaker {
    pub(crate) fn new() -> Self {
        let wakes = Arc::new(Wakes::default());
        Self {
            waker: Waker::from(wakes.clone()),
            wakes,
        }
    }

    /// The waker to poll the quieted future with.
    pub(crate) fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Where wakes outside the window go: the waker of the owner's current poll.
    pub(crate) fn set_task(&self, waker: &Waker) {
        let mut task = self.wakes.task.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *task {
            Some(w) => w.clone_from(waker),
            None => *task = Some(waker.clone()),
        }
    }

    /// Runs the window; says whether the quieted future was woken inside it.
    pub(crate) fn quiet<R>(&self, window: impl FnOnce() -> R) -> (R, bool) {
        self.wakes.inside.store(true, Ordering::SeqCst);
        let out = window();
        self.wakes.inside.store(false, Ordering::SeqCst);
        (out, self.wakes.woken.swap(false, Ordering::SeqCst))
    }
}

impl std::task::Wake for Wakes {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.inside.load(Ordering::SeqCst) {
            self.woken.store(true, Ordering::SeqCst);
            // Still inside after the note: the owner reads it once the window is over
            // (it clears `inside` before it reads `woken`).
            if self.inside.load(Ordering::SeqCst) {
                return;
            }
        }
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(task) = task {
            task.wake();
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

    /// Counts the wakes of a task.
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll_counting<F: Future + Unpin>(f: &mut F, wakes: &Arc<Count>) -> Poll<F::Output> {
        Pin::new(f).poll(&mut Context::from_waker(&Waker::from(wakes.clone())))
    }

    /// A guest that starts a hop, streams it a request and waits for its answer is done
    /// in one poll of the driver, and its task is never woken: the wakes the two give
    /// each other stay inside the driver.
    #[test]
    fn a_guest_and_its_hop_take_turns_within_one_poll() {
        let hops = Hops::default();
        let started = hops.clone();
        let guest = async move {
            let (request_tx, mut request_rx) = tokio::sync::mpsc::channel::<u32>(1);
            let (answer_tx, answer_rx) = oneshot::channel();
            started.start(Box::pin(async move {
                let mut sum = 0;
                while let Some(n) = request_rx.recv().await {
                    sum += n;
                }
                let _ = answer_tx.send(sum);
            }));
            // The channel holds one number: each send waits for the hop to take the last.
            for n in 1..=4 {
                request_tx.send(n).await.expect("the hop reads");
            }
            drop(request_tx);
            answer_rx.await.expect("the hop answers")
        };
        let wakes = Arc::new(Count::default());
        let mut driven = Driven::new(guest, hops);
        assert_eq!(poll_counting(&mut driven, &wakes), Poll::Ready(10));
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0);
    }

    /// A guest that wakes itself (a yield at an epoch tick) still yields: the driver
    /// passes that wake on to its task and returns.
    #[test]
    fn a_guest_that_wakes_itself_yields_to_its_task() {
        let mut yielded = false;
        let guest = std::future::poll_fn(move |cx| {
            if yielded {
                return Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let wakes = Arc::new(Count::default());
        let mut driven = Driven::new(guest, Hops::default());
        assert!(poll_counting(&mut driven, &wakes).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        assert!(poll_counting(&mut driven, &wakes).is_ready());
    }

    /// A quiet waker notes a wake inside its window and passes any other to the task
    /// of the latest poll.
    #[test]
    fn a_quiet_waker_notes_wakes_inside_its_window_and_passes_on_the_rest() {
        let quiet = QuietWaker::new();
        let task = Arc::new(Count::default());
        quiet.set_task(&Waker::from(task.clone()));
        let ((), woken) = quiet.quiet(|| quiet.waker().wake_by_ref());
        assert!(woken);
        assert_eq!(task.0.load(Ordering::SeqCst), 0);
        let ((), woken) = quiet.quiet(|| {});
        assert!(!woken, "a note is read once");
        quiet.waker().wake_by_ref();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        let later = Arc::new(Count::default());
        quiet.set_task(&Waker::from(later.clone()));
        std::task::Wake::wake(quiet.wakes.clone());
        assert_eq!((task.0.load(Ordering::SeqCst), later.0.load(Ordering::SeqCst)), (1, 1));
    }

    async fn futures_poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *f).poll(cx))).await
    }
}
