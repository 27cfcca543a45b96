//! The backfill listing at scale: the real [`Lister`], with the real aws-sdk-s3 client built as
//! `AwsClients` builds it, against a synthetic ListObjectsV2 server holding a million keys
//! (`logferry_testkit::ListingServer`; `moto_server` cannot hold that many in reasonable time).
//!
//! The requirement: listing uses start-after pagination and keeps flat state, so a
//! million-object prefix grows neither memory nor the checkpoint beyond a few MiB. Memory is
//! measured by a counting global allocator in this test binary: live heap bytes of the whole
//! process (the lister, the SDK client, and the in-process server's answers too), and their
//! peak. Kept keys alone would be ~40 MiB for a million keys of ~40 bytes.
//!
//! The tests of this binary run one at a time (they share the allocator's counters).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use logferry_source_sqs::{AwsClients, Checkpoint, Lister};
use logferry_testkit::ListingServer;

/// Live heap bytes of the process and their peak since the last [`reset_peak`].
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// Forwards to the system allocator and counts live bytes.
struct CountingAllocator;

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    LIVE.fetch_sub(bytes, Ordering::Relaxed);
}

// A global allocator is unsafe by definition; this one only forwards to `System` and counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and the caller guarantees `new_size` is valid.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Starts a new peak at the current live bytes, and returns them.
fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// One test at a time in this binary: the allocator's counters are the whole process's.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const BUCKET: &str = "archive";
const PREFIX: &str = "logs/";
const OBJECTS: u64 = 1_000_000;

/// Peak live heap above the level before the listing, at most: flat, whatever the key count.
const HEAP_BOUND: usize = 8 << 20;

/// Size of the checkpoint file, at most.
const CHECKPOINT_BOUND: u64 = 4096;

/// How often `Backfill::run` writes the checkpoint while it advances (its
/// `CHECKPOINT_INTERVAL`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// Pages of the listing of every key after which the early heap peak is recorded and a new
/// peak started.
const EARLY_PAGES: u64 = 50;

/// S3 clients for the server, built the way the ingester builds them.
async fn clients(server: &ListingServer) -> AwsClients {
    common::clients_at(server.endpoint()).await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Heap peaks of the listings, above the live bytes before them: over their first
/// [`EARLY_PAGES`] pages (with the client's first-request set-up), then over the rest.
#[derive(Clone, Copy, Debug, Default)]
struct HeapUse {
    early: usize,
    late: usize,
}

/// What the listing of every key saw.
struct FullListing {
    listed: u64,
    pages: u64,
    last_listed: String,
    last_key: Option<String>,
    checkpoint_writes: u32,
    largest_checkpoint: u64,
    heap: HeapUse,
    time: Duration,
}

/// Lists every key, checking each against the previous one and against its index (keeping
/// nothing else), and writes the checkpoint as `Backfill::run` does.
async fn list_everything(
    server: Arc<ListingServer>,
    s3: aws_sdk_s3::Client,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
    baseline: usize,
) -> FullListing {
    let started = Instant::now();
    let checkpoint_size = || std::fs::metadata(&checkpoint_path).unwrap().len();
    let mut lister = Lister::new(Some(s3), BUCKET, PREFIX);
    let mut previous = String::new();
    let mut listed = 0u64;
    let mut pages = 0u64;
    let mut written_at = Instant::now();
    let mut checkpoint_writes = 0;
    let mut largest_checkpoint = 0;
    let mut heap = HeapUse::default();
    while let Some(page) = lister.next_page().await.unwrap() {
        pages += 1;
        for object in page {
            let key = &object.object.key;
            assert!(
                *key > previous,
                "`{key}` listed after `{previous}` (object {listed})"
            );
            assert_eq!(
                server.index_of(key),
                Some(listed),
                "object {listed}: `{key}`"
            );
            assert_eq!(object.last_modified, Some(server.last_modified(listed)));
            assert_eq!(object.object.size, Some(server.size(listed)));
            assert_eq!(object.object.bucket, BUCKET);
            previous.clone_from(key);
            listed += 1;
        }
        // As `Backfill::run`: every object listed so far is done (none is read here), and the
        // checkpoint moves to the last of them once a second.
        if written_at.elapsed() >= CHECKPOINT_INTERVAL {
            checkpoint.store(&previous).unwrap();
            largest_checkpoint = largest_checkpoint.max(checkpoint_size());
            checkpoint_writes += 1;
            written_at = Instant::now();
        }
        if pages == EARLY_PAGES {
            heap.early = peak() - baseline;
            reset_peak();
        }
    }
    heap.late = peak().saturating_sub(baseline);
    // A listing read to its end moves the checkpoint to the lister's last key.
    let last_key = lister.last_key().map(str::to_string);
    if let Some(key) = &last_key {
        checkpoint.store(key).unwrap();
        largest_checkpoint = largest_checkpoint.max(checkpoint_size());
        checkpoint_writes += 1;
    }
    FullListing {
        listed,
        pages,
        last_listed: previous,
        last_key,
        checkpoint_writes,
        largest_checkpoint,
        heap,
        time: started.elapsed(),
    }
}

/// What the listing of a LastModified window saw.
struct WindowListing {
    kept: u64,
    pages: u64,
    last_key: Option<String>,
    time: Duration,
}

/// Lists the objects modified in `[last_modified(from), last_modified(to))`, checking that
/// they are exactly the objects `from..to`, in order.
async fn list_window(
    server: Arc<ListingServer>,
    s3: aws_sdk_s3::Client,
    from: u64,
    to: u64,
) -> WindowListing {
    let started = Instant::now();
    let mut lister = Lister::new(Some(s3), BUCKET, PREFIX).modified_between(
        Some(server.last_modified(from)),
        Some(server.last_modified(to)),
    );
    let mut expected = from;
    let mut pages = 0;
    while let Some(page) = lister.next_page().await.unwrap() {
        pages += 1;
        assert!(!page.is_empty());
        for object in page {
            let key = &object.object.key;
            assert_eq!(server.index_of(key), Some(expected), "`{key}`");
            expected += 1;
        }
    }
    WindowListing {
        kept: expected - from,
        pages,
        last_key: lister.last_key().map(str::to_string),
        time: started.elapsed(),
    }
}

/// Two listings of a million keys run side by side (on two runtime threads; the server has a
/// thread of its own): every key, and a LastModified window. Live heap is measured for both
/// together.
#[test]
fn a_million_key_listing_keeps_memory_and_checkpoint_flat() {
    let _serial = serial();
    let server = Arc::new(
        ListingServer::builder()
            .bucket(BUCKET)
            .prefix(PREFIX)
            .objects(OBJECTS)
            .start()
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let checkpoint_path = dir.path().join("backfill.checkpoint");
    let checkpoint = Checkpoint::new(&checkpoint_path, BUCKET, PREFIX);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let clients = runtime.block_on(clients(&server));
    let (from, to) = (OBJECTS / 4, OBJECTS * 3 / 4);

    let started = Instant::now();
    let baseline = reset_peak();
    let (full, window) = runtime.block_on(async {
        let full = tokio::spawn(list_everything(
            Arc::clone(&server),
            clients.s3.clone(),
            checkpoint.clone(),
            checkpoint_path.clone(),
            baseline,
        ));
        let window = tokio::spawn(list_window(
            Arc::clone(&server),
            clients.s3.clone(),
            from,
            to,
        ));
        (full.await.unwrap(), window.await.unwrap())
    });
    let time = started.elapsed();
    let live_growth = LIVE.load(Ordering::Relaxed) as f64 - baseline as f64;

    // Every key, exactly once, in order.
    assert_eq!(full.listed, OBJECTS);
    assert_eq!(full.pages, OBJECTS / 1000);
    assert_eq!(full.last_listed, server.key(OBJECTS - 1));
    assert_eq!(full.last_key.as_deref(), Some(full.last_listed.as_str()));
    // The window: exactly the objects from..to (checked one by one), although the lister
    // paged through every key to find them.
    assert_eq!(window.kept, to - from, "objects kept by the window");
    assert_eq!(window.last_key, full.last_key);
    let stats = server.stats();
    assert_eq!(stats.pages, 2 * OBJECTS / 1000, "{stats:?}");
    assert_eq!(stats.keys_returned, 2 * OBJECTS, "{stats:?}");
    assert_eq!(stats.largest_page, 1000, "{stats:?}");
    assert_eq!(stats.errors, 0, "{stats:?}");
    assert_eq!(
        stats.continuation_requests, 0,
        "start-after pagination: {stats:?}"
    );
    assert_eq!(
        stats.largest_start_after,
        Some(server.key(OBJECTS - 1001)),
        "the last page starts after the last key of the one before"
    );

    // Resuming: after the final checkpoint nothing is left; after a middle key, the next one.
    assert_eq!(checkpoint.load().unwrap(), full.last_key);
    let mut resumed = Lister::new(Some(clients.s3.clone()), BUCKET, PREFIX)
        .start_after(checkpoint.load().unwrap());
    assert!(runtime.block_on(resumed.next_page()).unwrap().is_none());
    let mut resumed = Lister::new(Some(clients.s3.clone()), BUCKET, PREFIX)
        .start_after(Some(server.key(OBJECTS / 2 - 1)));
    let page = runtime.block_on(resumed.next_page()).unwrap().unwrap();
    assert_eq!(page[0].object.key, server.key(OBJECTS / 2));

    println!(
        "{OBJECTS} keys listed twice side by side in {time:.1?}: every key in {:.1?} \
         ({} pages), the window of {} objects in {:.1?} ({} pages)",
        full.time, full.pages, window.kept, window.time, window.pages
    );
    println!(
        "live heap before {:.2} MiB; peak growth {:.2} MiB over the first {EARLY_PAGES} pages, \
         {:.2} MiB after; live growth at the end {:.3} MiB; checkpoint at most {} bytes \
         over {} writes",
        mib(baseline),
        mib(full.heap.early),
        mib(full.heap.late),
        live_growth / (1024.0 * 1024.0),
        full.largest_checkpoint,
        full.checkpoint_writes,
    );
    assert!(
        full.largest_checkpoint <= CHECKPOINT_BOUND,
        "checkpoint of {} bytes",
        full.largest_checkpoint
    );
    let heap = full.heap;
    assert!(
        heap.early.max(heap.late) < HEAP_BOUND,
        "live heap grew by {:.2} MiB while listing {OBJECTS} keys twice",
        mib(heap.early.max(heap.late))
    );
    // Flat: the peak over the rest of the listing is no higher than over its start.
    assert!(
        heap.late <= heap.early + (1 << 20),
        "live heap peak rose from {:.2} MiB to {:.2} MiB as the listing went on",
        mib(heap.early),
        mib(heap.late)
    );
}

/// S3 documents that a truncated page may hold fewer keys than `max-keys`; only
/// `IsTruncated` says the listing is over.
#[test]
fn pages_shorter_than_max_keys_do_not_end_the_listing() {
    let _serial = serial();
    let server = ListingServer::builder()
        .bucket(BUCKET)
        .prefix(PREFIX)
        .objects(10_000)
        .page_limit(999)
        .start()
        .unwrap();
    let runtime = runtime();
    let clients = runtime.block_on(clients(&server));
    let (keys, _) = list_keys(&runtime, &clients.s3, None);
    assert_eq!(keys.len(), 10_000, "{:?}", server.stats());
    assert!(
        keys.iter()
            .enumerate()
            .all(|(i, k)| *k == server.key(i as u64))
    );
    assert_eq!(server.stats().pages, 11);
}

/// Every key a whole listing gives (after `start`, a checkpoint's key, if any), in order, and
/// the lister's last key.
fn list_keys(
    runtime: &tokio::runtime::Runtime,
    s3: &aws_sdk_s3::Client,
    start: Option<String>,
) -> (Vec<String>, Option<String>) {
    let mut lister = Lister::new(Some(s3.clone()), BUCKET, PREFIX).start_after(start);
    let mut keys = Vec::new();
    while let Some(page) = runtime.block_on(lister.next_page()).unwrap() {
        keys.extend(page.into_iter().map(|o| o.object.key));
    }
    (keys, lister.last_key().map(str::to_string))
}

/// S3 can answer a truncated page with no keys at all (a prefix full of delete markers);
/// the listing goes on with that page's continuation token (and by `start-after` otherwise),
/// and a resumed listing still starts after its checkpoint's key.
#[test]
fn empty_truncated_pages_do_not_end_the_listing() {
    let _serial = serial();
    let server = ListingServer::builder()
        .bucket(BUCKET)
        .prefix(PREFIX)
        .objects(5_000)
        .empty_pages_every(3)
        .start()
        .unwrap();
    let runtime = runtime();
    let clients = runtime.block_on(clients(&server));
    let (keys, last) = list_keys(&runtime, &clients.s3, None);
    let expected: Vec<String> = (0..5_000).map(|i| server.key(i)).collect();
    assert_eq!(keys.len(), 5_000, "{:?}", server.stats());
    assert_eq!(keys, expected);
    assert_eq!(last.as_deref(), Some(server.key(4_999).as_str()));
    let stats = server.stats();
    // 5 pages of 1,000 keys and an empty page as every third page; only the page after an
    // empty one is asked for by token.
    assert_eq!(stats.pages, 7, "{stats:?}");
    assert_eq!(stats.continuation_requests, 2, "{stats:?}");
    assert_eq!(
        stats.largest_start_after,
        Some(server.key(3_999)),
        "{stats:?}"
    );

    // Resumed from a checkpoint: `start-after` its key.
    server.reset_stats();
    let (keys, _) = list_keys(&runtime, &clients.s3, Some(server.key(1_499)));
    assert_eq!(keys, expected[1_500..]);
    // Pages 1500.., 2500.., (empty), by token 3500.., after 4499: 4500..
    assert_eq!(server.stats().largest_start_after, Some(server.key(4_499)));
}
