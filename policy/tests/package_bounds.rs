//! Memory stays bounded whatever a package claims: a huge `header_len` is refused before any
//! buffer is allocated or another byte read, and payloads stream in fixed-size chunks.
//!
//! This binary installs a global allocator that records the largest single allocation, so these
//! claims are measured rather than assumed. It holds one test so no other test's allocations
//! run concurrently with the measurement.

// Helpers outside `#[test]` functions are not covered by clippy's test exemption; a failing
// helper should panic the test that called it.
#![allow(clippy::unwrap_used)]

mod package_fixtures;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

use package_fixtures::{Keys, app_header, raw_package, sha256_hex, wasm_module};
use warden_policy::package::{self, Discard, Limits, MAGIC, MAX_HEADER_LEN, PackageError};
use warden_policy::trust::VerifyContext;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

struct Tracking;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the only addition is an atomic counter update.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as `GlobalAlloc::alloc`, passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as `GlobalAlloc::alloc_zeroed`, passed through.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as `GlobalAlloc::realloc`, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as `GlobalAlloc::dealloc`, passed through.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.store(0, Ordering::SeqCst);
    let out = f();
    (out, LARGEST.load(Ordering::SeqCst))
}

fn prefix(header_len: u32) -> Vec<u8> {
    let mut p = MAGIC.to_vec();
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&[1, 0]);
    p.extend_from_slice(&header_len.to_le_bytes());
    p
}

#[test]
fn memory_is_bounded_whatever_the_package_claims() {
    let keys = Keys::new();
    let trust = keys.trust();
    let ctx = VerifyContext::locked(0);
    let limits = Limits::default();

    // 1. A header length over the bound: refused after the 16-byte prefix, with no large
    //    allocation, even though the input would supply bytes forever.
    for claimed in [MAX_HEADER_LEN + 1, u32::MAX] {
        let mut input = Counting {
            inner: io::Cursor::new(prefix(claimed)).chain(io::repeat(b' ')),
            read: 0,
        };
        let (result, largest) = largest_allocation_during(|| {
            package::verify(&mut input, &trust, &ctx, &limits, &mut Discard)
        });
        assert!(
            matches!(result, Err(PackageError::HeaderLength { len, max }) if len == claimed && max == MAX_HEADER_LEN),
            "{claimed}: {:?}",
            result.err()
        );
        assert_eq!(input.read, 16, "read past the prefix");
        assert!(
            largest < 4096,
            "allocated {largest} bytes for a refused header"
        );
    }

    // 2. The largest allowed header is read, and no more than it is allocated.
    let mut input = prefix(MAX_HEADER_LEN);
    input.extend(std::iter::repeat_n(b' ', MAX_HEADER_LEN as usize + 96));
    let (result, largest) = largest_allocation_during(|| {
        package::verify(&input[..], &trust, &ctx, &limits, &mut Discard)
    });
    assert!(
        matches!(result, Err(PackageError::Signer(_))),
        "{:?}",
        result.err()
    );
    assert!(
        largest <= MAX_HEADER_LEN as usize + 4096,
        "allocated {largest} bytes"
    );

    // 3. A correctly signed header claiming a large payload: the payload streams through one
    //    chunk-sized buffer, whatever its size.
    let entry = wasm_module(b"x");
    let size: u64 = 8 << 20;
    let mut h = app_header(&entry);
    h["payloads"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "big.bin", "role": "resource", "size": size, "sha256": sha256_hex(b"")}));
    let signed = raw_package(1, &h.to_string(), &keys.app, &entry);
    let mut input = io::Cursor::new(signed).chain(io::repeat(0).take(size));
    let (result, largest) = largest_allocation_during(|| {
        package::verify(&mut input, &trust, &ctx, &limits, &mut Discard)
    });
    assert!(
        matches!(result, Err(PackageError::PayloadDigest { ref name, .. }) if name == "big.bin"),
        "{:?}",
        result.err()
    );
    assert!(
        largest <= package::CHUNK_LEN + 4096,
        "allocated {largest} bytes while streaming an {size}-byte payload"
    );
}
