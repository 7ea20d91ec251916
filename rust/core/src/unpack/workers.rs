//! A small pool of threads that run numbered jobs for the applying thread.
//!
//! Each job goes to the lane its submitter chose (the applier keeps a directory's files on one
//! lane: creates in one directory serialize on its lock in the kernel anyway). Results come back
//! on one channel, tagged with the job's number, in whatever order they finish. After
//! `stop_after(n)`, jobs numbered above `n` are not run (their result is `None`): the first
//! failure in entry order stops what follows it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Threads running jobs of type `J` into results of type `R`.
pub struct Pool<J: Send + 'static, R: Send + 'static> {
    lanes: Vec<SyncSender<(u64, J)>>,
    results: Receiver<(u64, Option<R>)>,
    threads: Vec<JoinHandle<()>>,
    stop_after: Arc<AtomicU64>,
}

impl<J: Send + 'static, R: Send + 'static> Pool<J, R> {
    /// Starts `threads` threads (at least one), each taking up to `depth` queued jobs.
    pub fn new(threads: usize, depth: usize, run: fn(J) -> R) -> std::io::Result<Self> {
        let (result_tx, results) = mpsc::channel();
        let stop_after = Arc::new(AtomicU64::new(u64::MAX));
        let mut pool = Pool {
            lanes: Vec::new(),
            results,
            threads: Vec::new(),
            stop_after: Arc::clone(&stop_after),
        };
        for index in 0..threads.max(1) {
            let (tx, rx) = mpsc::sync_channel::<(u64, J)>(depth);
            let result_tx = result_tx.clone();
            let stop_after = Arc::clone(&stop_after);
            let thread = std::thread::Builder::new()
                .name(format!("ocistore-write-{index}"))
                .spawn(move || {
                    for (number, job) in rx {
                        let result =
                            (number <= stop_after.load(Ordering::Acquire)).then(|| run(job));
                        if result_tx.send((number, result)).is_err() {
                            break;
                        }
                    }
                })?;
            pool.lanes.push(tx);
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// Queues job `number` on `lane` (modulo the lane count). The caller bounds what is queued.
    pub fn submit(&self, lane: usize, number: u64, job: J) {
        let sent = self.lanes[lane % self.lanes.len()].send((number, job));
        // A lane's thread only ends when its channel closes, or it panicked: say so loudly.
        sent.expect("unpack writer thread is gone");
    }

    /// The next finished job, waiting for one. A thread that panicked (a bug) would leave its
    /// job unfinished forever: that panics here rather than hang.
    pub fn recv(&self) -> (u64, Option<R>) {
        loop {
            match self.results.recv_timeout(Duration::from_millis(200)) {
                Ok(done) => return done,
                Err(RecvTimeoutError::Timeout)
                    if !self.threads.iter().any(JoinHandle::is_finished) => {}
                Err(_) => panic!("an unpack writer thread panicked"),
            }
        }
    }

    /// A finished job, if one is ready.
    pub fn try_recv(&self) -> Option<(u64, Option<R>)> {
        self.results.try_recv().ok()
    }

    /// Jobs numbered above `number` are not run any more.
    pub fn stop_after(&self, number: u64) {
        self.stop_after.fetch_min(number, Ordering::AcqRel);
    }
}

impl<J: Send + 'static, R: Send + 'static> Drop for Pool<J, R> {
    /// Skips whatever is still queued, closes the lanes and waits for the threads.
    fn drop(&mut self) {
        self.stop_after(0);
        self.lanes.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_job_and_skips_those_after_a_stop() {
        let pool: Pool<u64, u64> = Pool::new(2, 4, |n| n * 10).unwrap();
        for number in 1..=6 {
            pool.submit(number as usize, number, number);
        }
        let mut done: Vec<_> = (0..6).map(|_| pool.recv()).collect();
        done.sort();
        let expected: Vec<_> = (1..=6).map(|n| (n, Some(n * 10))).collect();
        assert_eq!(done, expected);
        pool.stop_after(7);
        pool.submit(0, 7, 7);
        pool.submit(1, 8, 8);
        let mut done = vec![pool.recv(), pool.recv()];
        done.sort();
        assert_eq!(done, vec![(7, Some(70)), (8, None)]);
        assert!(pool.try_recv().is_none());
    }

    #[test]
    fn a_thread_that_panicked_is_reported_not_waited_for() {
        let pool: Pool<u64, u64> =
            Pool::new(1, 4, |n| if n == 2 { panic!("bug") } else { n }).unwrap();
        pool.submit(0, 1, 1);
        assert_eq!(pool.recv(), (1, Some(1)));
        pool.submit(0, 2, 2);
        let waited = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pool.recv()));
        assert!(waited.is_err());
    }
}
