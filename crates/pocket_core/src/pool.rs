//! Splitting a kernel's independent outputs between the calling thread and helper threads.
//!
//! The threads build (`+atomics`, one shared memory) runs the model on one instance and parks *helpers* (other
//! instances of the same module over the same memory, each in its own worker) in [`helper_run`]. A kernel hands
//! [`parallel_ranges`] the number of its independent output blocks (e.g. GEMM panels) and a closure over a range of
//! them. The blocks are cut into chunks that every thread claims until none are left, so:
//! - each output is computed by the same code whichever thread takes it: results are bit-identical to one thread;
//! - a helper that is slow to wake costs nothing: the caller claims the chunks it has not;
//! - the caller never blocks (a browser's main thread may not), it only spins while a helper finishes a chunk.
//!
//! Outside the threads build, and until a helper has started, everything runs inline on the caller.
//!
//! Protocol: the publisher writes the job (closure, item count, chunk count), then `CLAIM = seq << 32 | 0`. A
//! chunk is claimed by a compare-and-swap of `CLAIM` from `(seq, i)` to `(seq, i + 1)`. A successful swap proves the
//! job was still open, so the job fields read before it were this job's, and the closure (on the publisher's stack)
//! lives until the claimant counts the chunk in `DONE`: the publisher returns only when `DONE` equals the chunk count.

use std::ops::Range;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize};

/// A job's body: called with disjoint ranges of item indices that together cover `0..n`.
pub type Task<'a> = &'a (dyn Fn(Range<usize>) + Sync);

/// Chunks per participating thread: more than one, so a thread that is slowed down takes fewer.
const CHUNKS_PER_THREAD: usize = 4;
/// The least work (multiply-adds, or bytes for memory-bound kernels) worth a chunk of its own.
const MIN_CHUNK_WORK: usize = 1 << 16;
/// Idle polls of `WAKE` before a helper sleeps (~1–3 ms: longer than the gaps between the kernels of a frame, so a
/// busy model never waits for a helper to wake).
const SPIN: u32 = 1 << 21;

/// `seq << 32 | next unclaimed chunk` of the current job.
static CLAIM: AtomicU64 = AtomicU64::new(0);
static CHUNKS: AtomicUsize = AtomicUsize::new(0);
static ITEMS: AtomicUsize = AtomicUsize::new(0);
/// Address of the current job's [`Task`] (a fat reference on the publisher's stack).
static TASK: AtomicUsize = AtomicUsize::new(0);
/// Chunks of the current job finished.
static DONE: AtomicUsize = AtomicUsize::new(0);
/// Held while a job is open: one publisher at a time, and a job started inside a job runs inline.
static PUBLISHING: AtomicBool = AtomicBool::new(false);
/// Bumped on every publish; helpers sleep on it.
static WAKE: AtomicI32 = AtomicI32::new(0);
static SLEEPING: AtomicU32 = AtomicU32::new(0);
static HELPERS: AtomicU32 = AtomicU32::new(0);
/// Chunks run by helpers (a diagnostic: proves in tests that helpers take part).
static HELPER_CHUNKS: AtomicU64 = AtomicU64::new(0);
/// Set from JS when a helper instance traps; the caller then stops instead of waiting forever.
static FAILED: AtomicI32 = AtomicI32::new(0);
/// Set by [`quit`]: helpers leave [`helper_run`].
static QUIT: AtomicBool = AtomicBool::new(false);
/// Cleared by [`set_enabled`]: jobs run on the caller alone while the helpers stay parked.
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Helpers parked in [`helper_run`].
pub fn helpers() -> u32 {
    HELPERS.load(SeqCst)
}

/// Chunks helpers have run since the instance started.
pub fn helper_chunks() -> u64 {
    HELPER_CHUNKS.load(SeqCst)
}

/// The flag JS sets (to non-zero, with `Atomics.store`) when a helper instance has trapped.
pub fn failed_flag() -> *const AtomicI32 {
    &FAILED
}

/// Whether jobs published from now on are shared with the helpers (default: yes). An instance whose other kernels
/// run while another thread keeps the other core busy (the two-worker mode's FlowLM worker) enables its helpers only
/// around the work that has the machine to itself (prefill). Disabled, helpers do not spin between jobs: they sleep
/// until the next job, so they take no core from other threads.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, SeqCst);
}

/// Runs `f` over `0..n`, split between this thread and the helpers when `work` (the whole call's multiply-adds or
/// bytes) is worth it. `f` must only write outputs that belong to the items of its range.
pub fn parallel_ranges(n: usize, work: usize, f: Task) {
    let threads = if QUIT.load(SeqCst) || !ENABLED.load(SeqCst) { 1 } else { helpers() as usize + 1 };
    let chunks = n.min(threads * CHUNKS_PER_THREAD).min(work / MIN_CHUNK_WORK);
    if threads == 1 || chunks < 2 || PUBLISHING.swap(true, SeqCst) {
        return f(0..n);
    }
    ITEMS.store(n, SeqCst);
    CHUNKS.store(chunks, SeqCst);
    TASK.store(&f as *const Task as usize, SeqCst);
    DONE.store(0, SeqCst);
    let seq = (CLAIM.load(SeqCst) >> 32).wrapping_add(1);
    CLAIM.store(seq << 32, SeqCst);
    WAKE.fetch_add(1, SeqCst);
    if SLEEPING.load(SeqCst) > 0 {
        wake_all(&WAKE);
    }
    while let Some((task, range)) = claim() {
        task(range);
        DONE.fetch_add(1, SeqCst);
    }
    while DONE.load(SeqCst) < chunks {
        if FAILED.load(SeqCst) != 0 {
            panic!("a helper thread of the wasm core stopped");
        }
        std::hint::spin_loop();
    }
    PUBLISHING.store(false, SeqCst);
}

/// Applies the element-wise `f` in place to `x`, in blocks of 1024 values split between threads like
/// [`parallel_ranges`] (`cost`: the work of one value, in multiply-add equivalents). `f` must treat each value alone
/// (a SIMD map), so the result does not depend on the split.
pub fn parallel_map(x: &mut [f32], cost: usize, f: &(dyn Fn(&mut [f32]) + Sync)) {
    const BLOCK: usize = 1024;
    let n = x.len();
    let out = SharedOut::new(x);
    parallel_ranges(n.div_ceil(BLOCK), n * cost, &|blocks| {
        let start = blocks.start * BLOCK;
        // SAFETY: these blocks belong to this chunk alone.
        f(unsafe { out.part(start, (blocks.end * BLOCK).min(n) - start) });
    });
}

/// Claims the next chunk of the open job, if any.
fn claim() -> Option<(Task<'static>, Range<usize>)> {
    loop {
        let c = CLAIM.load(SeqCst);
        let (i, chunks) = ((c & 0xffff_ffff) as usize, CHUNKS.load(SeqCst));
        if i >= chunks {
            return None;
        }
        let (n, task) = (ITEMS.load(SeqCst), TASK.load(SeqCst));
        if CLAIM.compare_exchange(c, c + 1, SeqCst, SeqCst).is_ok() {
            // SAFETY: the swap succeeded, so this job is open and its publisher (whose stack holds the task) waits
            // for this chunk's `DONE` before returning (module doc).
            let task = unsafe { *(task as *const Task<'static>) };
            return Some((task, i * n / chunks..(i + 1) * n / chunks));
        }
    }
}

/// Wakes every helper and makes it leave [`helper_run`] (its worker can then end: a thread asleep in a wait would
/// not). Jobs published afterwards run on the caller alone.
pub fn quit() {
    QUIT.store(true, SeqCst);
    WAKE.fetch_add(1, SeqCst);
    wake_all(&WAKE);
}

/// A helper's life: run chunks of every job published, spin a little between jobs, then sleep until the next; until
/// [`quit`].
pub fn helper_run() {
    HELPERS.fetch_add(1, SeqCst);
    let mut seen = WAKE.load(SeqCst);
    while !QUIT.load(SeqCst) {
        while let Some((task, range)) = claim() {
            task(range);
            HELPER_CHUNKS.fetch_add(1, SeqCst);
            DONE.fetch_add(1, SeqCst);
        }
        let mut spins = 0;
        loop {
            let w = WAKE.load(SeqCst);
            if w != seen {
                seen = w;
                break;
            }
            // While the pool is disabled no job comes soon: sleep at once rather than take a core from other threads.
            if spins < SPIN && ENABLED.load(SeqCst) {
                spins += 1;
                std::hint::spin_loop();
                continue;
            }
            SLEEPING.fetch_add(1, SeqCst);
            sleep_while(&WAKE, seen);
            SLEEPING.fetch_sub(1, SeqCst);
        }
    }
    HELPERS.fetch_sub(1, SeqCst);
}

/// Blocks while `word` holds `value` (or returns at once if it no longer does).
#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn sleep_while(word: &AtomicI32, value: i32) {
    // SAFETY: `word` is a live, aligned i32 in the shared memory.
    unsafe { core::arch::wasm32::memory_atomic_wait32(word.as_ptr(), value, -1) };
}

#[cfg(all(target_arch = "wasm32", target_feature = "atomics"))]
fn wake_all(word: &AtomicI32) {
    // SAFETY: as in `sleep_while`.
    unsafe { core::arch::wasm32::memory_atomic_notify(word.as_ptr(), u32::MAX) };
}

/// Host (tests) and builds without threads: no futex; a helper naps and polls.
#[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
fn sleep_while(word: &AtomicI32, value: i32) {
    #[cfg(not(target_arch = "wasm32"))]
    while word.load(SeqCst) == value {
        std::thread::sleep(std::time::Duration::from_micros(50));
    }
    #[cfg(target_arch = "wasm32")]
    let _ = (word, value); // unreachable: no helper can start without threads
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "atomics")))]
fn wake_all(_word: &AtomicI32) {}

/// An output buffer the chunks of one job write to: each chunk borrows only the parts that belong to its items.
pub struct SharedOut<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: chunks borrow disjoint parts (the contract of `part`), so sharing the pointer between threads is sound.
unsafe impl<T: Send> Sync for SharedOut<'_, T> {}

impl<'a, T> SharedOut<'a, T> {
    pub fn new(out: &'a mut [T]) -> Self {
        Self { ptr: out.as_mut_ptr(), len: out.len(), _borrow: std::marker::PhantomData }
    }

    /// `out[start..start + len]`.
    ///
    /// # Safety
    /// No other live borrow from this `SharedOut` may overlap the range (chunks of a job own disjoint outputs).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.len, "output part out of range");
        // SAFETY: in bounds (asserted), and not aliased (the caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }
}

/// Host tests: starts `n` helper threads once per test process (kernels' threaded paths then run in every test).
#[cfg(all(test, not(target_arch = "wasm32")))]
pub fn start_host_helpers(n: u32) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        for _ in 0..n {
            std::thread::spawn(|| helper_run());
        }
        while helpers() < n {
            std::thread::yield_now();
        }
    });
}

/// Host tests: runs `f` with every job inside it inline on this thread (the one-thread result to compare with).
#[cfg(all(test, not(target_arch = "wasm32")))]
pub fn run_inline<R>(f: impl FnOnce() -> R) -> R {
    while PUBLISHING.swap(true, SeqCst) {
        std::thread::yield_now();
    }
    let r = f();
    PUBLISHING.store(false, SeqCst);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Held by tests that need the helpers enabled, or that disable them.
    static ENABLED_LOCK: Mutex<()> = Mutex::new(());

    #[test]
    fn every_item_runs_once_and_helpers_take_part() {
        let _enabled = ENABLED_LOCK.lock().unwrap();
        start_host_helpers(2);
        for n in [1usize, 2, 3, 7, 64, 1000] {
            for _ in 0..50 {
                let seen = Mutex::new(vec![0u32; n]);
                parallel_ranges(n, usize::MAX, &|r| {
                    for i in r {
                        seen.lock().unwrap()[i] += 1;
                    }
                });
                assert!(seen.into_inner().unwrap().iter().all(|&c| c == 1), "n={n}");
            }
        }
        // Items that take a while, until a helper has taken one (by count: a helper may be slow to wake).
        let before = helper_chunks();
        for _ in 0..100_000 {
            parallel_ranges(64, usize::MAX, &|r| {
                for i in r {
                    std::hint::black_box((0..2000u64).fold(i as u64, |a, v| a.wrapping_mul(31).wrapping_add(v)));
                }
            });
            if helper_chunks() > before {
                return;
            }
        }
        panic!("no helper ran a chunk");
    }

    #[test]
    fn small_work_and_nested_jobs_run_inline() {
        start_host_helpers(2);
        let caller = std::thread::current().id();
        parallel_ranges(64, MIN_CHUNK_WORK, &|r| {
            assert_eq!(r, 0..64);
            assert_eq!(std::thread::current().id(), caller);
        });
        let total = AtomicUsize::new(0);
        parallel_ranges(8, usize::MAX, &|outer| {
            for _ in outer {
                parallel_ranges(4, usize::MAX, &|inner| {
                    total.fetch_add(inner.len(), SeqCst);
                });
            }
        });
        assert_eq!(total.load(SeqCst), 32);
    }

    #[test]
    fn disabled_helpers_leave_every_chunk_to_the_caller() {
        let _enabled = ENABLED_LOCK.lock().unwrap();
        start_host_helpers(2);
        let caller = std::thread::current().id();
        set_enabled(false);
        let before = helper_chunks();
        for _ in 0..200 {
            parallel_ranges(64, usize::MAX, &|r| {
                assert_eq!(std::thread::current().id(), caller);
                std::hint::black_box(r.len());
            });
        }
        set_enabled(true);
        assert_eq!(helper_chunks(), before);
    }
}
