//! The argon2 thread pool: at most a fixed number of password hashes at a time, each in a
//! work area allocated once, on threads of lower CPU priority.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// At most `permits` argon2 computations at a time; a caller waits at most `wait` for a turn.
///
/// The hashes run on `permits` threads of their own, each with one argon2 work area
/// allocated once (19 MiB with the default parameters), at a lower CPU priority (nice +10):
/// - memory: allocating per verification made glibc keep a freed 19 MiB area per blocking
///   thread that ever hashed, so a login storm grew control by hundreds of MB although only
///   two hashes ran at a time; now argon2 holds exactly `permits` areas;
/// - CPU: a login storm keeps the hash threads busy, and the token endpoint, which every
///   service depends on, must still be answered at once; the kernel now prefers it.
#[derive(Debug, Clone)]
pub struct HashGate {
    permits: Arc<tokio::sync::Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    wait: Duration,
}

type Job = Box<dyn FnOnce(&mut [argon2::Block]) + Send>;

/// No turn was free within the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// The hash threads are gone (they never exit while the gate lives; a panic in a hash would).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password-hash threads stopped")]
pub struct GateStopped;

/// Blocks of one argon2 work area: enough for the default parameters, which every hash
/// Bulwark writes uses.
fn work_area() -> Box<[argon2::Block]> {
    vec![argon2::Block::default(); argon2::Params::default().block_count()].into_boxed_slice()
}

/// Ten nice levels below the process (capped at 19) for the calling thread. Relative, so a
/// process started with `nice` keeps its hashes below its token endpoint, and never raised
/// above it even with CAP_SYS_NICE. Best effort: if the kernel refuses, hashes run at the
/// process's priority.
fn lower_priority() {
    let tid = rustix::thread::gettid();
    let base = rustix::process::getpriority_process(None).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), (base + 10).min(19)) {
        tracing::debug!(error = %e, "could not lower the priority of a password-hash thread");
    }
}

impl HashGate {
    pub fn new(permits: usize, wait: Duration) -> Self {
        let permits = permits.max(1);
        // Every job holds a permit, so at most `permits` are ever queued or running: the
        // channel never blocks a sender.
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(permits);
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..permits {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut area = work_area();
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        match job {
                            // A panicking hash (e.g. the OS random source failing while a
                            // new password is hashed) fails its caller only; the thread
                            // stays, so the gate never runs out of threads. The area is safe
                            // to reuse: argon2 writes every block before reading any.
                            Ok(job) => {
                                let run = std::panic::AssertUnwindSafe(|| job(&mut area));
                                if std::panic::catch_unwind(run).is_err() {
                                    tracing::error!("a password-hash job panicked");
                                }
                            }
                            Err(_) => return, // the gate was dropped
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-hash thread");
            }
        }
        HashGate {
            permits: Arc::new(tokio::sync::Semaphore::new(permits)),
            jobs,
            wait,
        }
    }

    /// Run `f` (argon2 work, given a work area) on a hash thread once a permit is free. The
    /// permit moves into the job, so a caller that gives up (a dropped request) cannot free
    /// it while the hash still runs.
    pub async fn run<T, F>(&self, f: F) -> Result<Result<T, GateStopped>, Busy>
    where
        F: FnOnce(&mut [argon2::Block]) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(p)) => p,
                // Timed out, or closed (never: we never close it): either way no turn.
                _ => {
                    return Err(Busy {
                        retry_after: self.wait.max(Duration::from_secs(1)),
                    });
                }
            };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |area| {
            let out = f(area);
            // Freed before the answer, so a caller that sees its result sees the turn free.
            drop(permit);
            let _ = done.send(out);
        });
        if self.jobs.try_send(job).is_err() {
            return Ok(Err(GateStopped));
        }
        Ok(result.await.map_err(|_| GateStopped))
    }

    /// Free permits; for tests.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_gate_refuses_when_no_permit_frees_up_in_time() {
        let gate = HashGate::new(1, Duration::from_millis(50));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let busy = gate.clone();
        let holder = tokio::spawn(async move {
            busy.run(move |_| {
                let _ = started_tx.send(());
                let _ = wait.recv();
            })
            .await
        });
        started.await.unwrap();
        assert_eq!(gate.available(), 0);
        let refused = gate.run(|_| ()).await.unwrap_err();
        assert!(refused.retry_after >= Duration::from_secs(1));
        release.send(()).unwrap();
        holder.await.unwrap().unwrap().unwrap();
        assert!(gate.run(|_| 7).await.unwrap().unwrap() == 7);
    }

    #[tokio::test]
    async fn a_dropped_caller_keeps_the_permit_until_the_hash_ends() {
        let gate = HashGate::new(1, Duration::from_millis(20));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let g = gate.clone();
        let caller = tokio::spawn(async move {
            let _ = g
                .run(move |_| {
                    let _ = started_tx.send(());
                    let _ = wait.recv();
                })
                .await;
        });
        started.await.unwrap();
        caller.abort();
        let _ = caller.await;
        // The request is gone but its hash still runs: no second one may start.
        assert!(gate.run(|_| ()).await.is_err());
        release.send(()).unwrap();
        for _ in 0..100 {
            if gate.available() == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the permit was not returned");
    }

    #[tokio::test]
    async fn every_turn_reuses_one_of_the_preallocated_work_areas() {
        let gate = HashGate::new(2, Duration::from_secs(5));
        let blocks = argon2::Params::default().block_count();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..8 {
            let (len, at) = gate
                .run(|area| (area.len(), area.as_ptr() as usize))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(len, blocks);
            seen.insert(at);
        }
        // Only the two areas allocated at start are ever handed out.
        assert!(!seen.is_empty() && seen.len() <= 2, "{} areas", seen.len());
        assert_eq!(gate.available(), 2);
    }

    #[tokio::test]
    async fn hashes_run_on_their_own_lower_priority_threads() {
        let gate = HashGate::new(1, Duration::from_secs(5));
        let (name, nice) = gate
            .run(|_| {
                let name = std::thread::current().name().map(str::to_owned);
                let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
                (name, nice)
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(name.as_deref(), Some("argon2-0"));
        let base = rustix::process::getpriority_process(None).unwrap();
        assert_eq!(nice.unwrap(), (base + 10).min(19));
    }

    #[tokio::test]
    async fn a_panicking_hash_fails_its_caller_only() {
        let gate = HashGate::new(1, Duration::from_secs(5));
        let r = gate.run(|_| -> u8 { panic!("boom") }).await.unwrap();
        assert_eq!(r, Err(GateStopped));
        // The one thread is still there.
        assert_eq!(gate.run(|_| 7).await.unwrap(), Ok(7));
        assert_eq!(gate.available(), 1);
    }
}
