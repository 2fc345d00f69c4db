//! [`Coalesced`]: questions to a busy answerer (the source's polling thread, asked for its
//! partitions' state by every readiness probe) that never pile up. Callers take turns; a caller
//! reuses an answer that came after it asked; a question that timed out is awaited again rather
//! than asked twice. So however many callers come, at most one question is in flight.

use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Mutex};

/// Answers of type `T`, asked one question at a time.
pub(super) struct Coalesced<T> {
    state: Mutex<State<T>>,
    timeout: Duration,
}

struct State<T> {
    /// The last answer, and when it came.
    last: Option<(Instant, T)>,
    /// A question not answered yet (it timed out for its caller).
    unanswered: Option<oneshot::Receiver<T>>,
}

impl<T: Clone> Coalesced<T> {
    /// Questions waited for `timeout` each.
    pub(super) fn new(timeout: Duration) -> Self {
        Coalesced {
            state: Mutex::new(State {
                last: None,
                unanswered: None,
            }),
            timeout,
        }
    }

    /// An answer given after this call began, asking (with `ask`, which returns where the
    /// answer will come, or none when there is nobody to ask) only when no question is in
    /// flight; none when no answer came within the timeout or the answerer went away.
    pub(super) async fn get(
        &self,
        ask: impl FnOnce() -> Option<oneshot::Receiver<T>>,
    ) -> Option<T> {
        let asked = Instant::now();
        let mut state = self.state.lock().await;
        if let Some((at, answer)) = &state.last {
            if *at >= asked {
                return Some(answer.clone());
            }
        }
        let mut answer = match state.unanswered.take() {
            Some(unanswered) => unanswered,
            None => ask()?,
        };
        match tokio::time::timeout(self.timeout, &mut answer).await {
            Ok(Ok(answer)) => {
                state.last = Some((Instant::now(), answer.clone()));
                Some(answer)
            }
            Ok(Err(_)) => None, // the answerer went away with the question
            Err(_) => {
                state.unanswered = Some(answer);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// 1,000 callers of a silent answerer (a polling thread busy in a rebalance): one question
    /// is asked; once it is answered, the callers waiting get that answer and ask nothing more.
    #[tokio::test(flavor = "current_thread")]
    async fn a_thousand_callers_ask_one_question() {
        let coalesced = Arc::new(Coalesced::<u32>::new(Duration::from_millis(100)));
        let asked = Arc::new(AtomicUsize::new(0));
        let (reply, answer) = oneshot::channel();
        let mut answer = Some(answer);
        // The first caller asks, and times out: the question stays in flight.
        let first = coalesced
            .get(|| {
                asked.fetch_add(1, Ordering::Relaxed);
                answer.take()
            })
            .await;
        assert_eq!(first, None);
        let mut callers = Vec::new();
        for _ in 0..1_000 {
            let (coalesced, asked) = (Arc::clone(&coalesced), Arc::clone(&asked));
            callers.push(tokio::spawn(async move {
                coalesced
                    .get(|| {
                        asked.fetch_add(1, Ordering::Relaxed);
                        None
                    })
                    .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        reply.send(7).expect("a caller still waits for it");
        let answers: Vec<Option<u32>> = futures_util::future::join_all(callers)
            .await
            .into_iter()
            .map(|joined| joined.expect("a caller"))
            .collect();
        assert_eq!(
            asked.load(Ordering::Relaxed),
            1,
            "one question for 1,001 callers"
        );
        assert!(answers.contains(&Some(7)));
        assert!(
            answers
                .iter()
                .all(|answer| matches!(answer, None | Some(7))),
            "nobody asked again"
        );
    }
}
