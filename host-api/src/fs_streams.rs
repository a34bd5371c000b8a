//! `wasi:filesystem` file streams (`read-via-stream`, `write-via-stream`, `append-via-stream`)
//! served on the worker's own thread.
//!
//! wasmtime-wasi 48 does a stream's reads and writes on tokio's blocking pool
//! (`spawn_blocking`) whatever `allow_blocking_current_thread` says; its first use starts a
//! thread. In the sandbox that is `clone3` and `rt_sigaction`, which the worker's seccomp
//! filter kills: any app reading a file through a stream (Python's `open().read()`, wasi-libc's
//! `fread`) died of SIGSYS. A storage file is a local file on the app's own file system, so
//! the reads and writes here are plain `pread`/`pwrite` on the calling thread, like the
//! positioned `descriptor.read`/`write` wasmtime-wasi already does there. The descriptor is
//! wasmtime-wasi's; only the stream differs.

use std::os::unix::fs::FileExt as _;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, InputStream, OutputStream, Pollable, StreamError, StreamResult,
};

/// The largest read one stream call does (wasmtime-wasi's own limit).
const MAX_READ: usize = 64 * 1024;
/// How much a write may carry (`check-write`).
const WRITE_CAPACITY: usize = 64 * 1024;

/// The `wasi:filesystem/types` instance these methods belong to.
const INSTANCE: &str = "wasi:filesystem/types@0.2.12";

/// Replaces wasmtime-wasi's three stream constructors of `wasi:filesystem/types` in `linker`
/// (which must already have them) with ones whose streams do their I/O on the calling thread.
pub fn add_to_linker<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let defined = define(linker);
    linker.allow_shadowing(false);
    defined
}

fn define<T: WasiView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let mut types = linker.instance(INSTANCE)?;
    types.func_wrap(
        "[method]descriptor.read-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            let table = store.data_mut().ctx().table;
            let file = match table.get(&fd)? {
                Descriptor::File(f) => Arc::clone(&f.file),
                // A directory is `is-directory` (POSIX EISDIR on read), as wasmtime-wasi says.
                Descriptor::Dir(_) => return Ok((Err(ErrorCode::IsDirectory),)),
            };
            let stream: DynInputStream = Box::new(FileReader {
                file,
                position: offset,
            });
            Ok((Ok(table.push(stream)?),))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            push_writer(store.data_mut().ctx().table, &fd, Some(offset))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            push_writer(store.data_mut().ctx().table, &fd, None)
        },
    )?;
    Ok(())
}

/// A writer at `position` (or appending, with `None`) to the file behind `fd`, in `table`; or
/// the error wasmtime-wasi gives for a descriptor that may not be written.
fn push_writer(
    table: &mut ResourceTable,
    fd: &Resource<Descriptor>,
    position: Option<u64>,
) -> wasmtime::Result<(Result<Resource<DynOutputStream>, ErrorCode>,)> {
    let file = match table.get(fd)? {
        Descriptor::File(f) if f.perms.write_not_permitted() => {
            return Ok((Err(ErrorCode::NotPermitted),));
        }
        Descriptor::File(f) => Arc::clone(&f.file),
        Descriptor::Dir(_) => return Ok((Err(ErrorCode::BadDescriptor),)),
    };
    let stream: DynOutputStream = Box::new(FileWriter { file, position });
    Ok((Ok(table.push(stream)?),))
}

/// An error of the last read or write, as wasmtime-wasi reports it: the `io::Error` itself,
/// which `filesystem-error-code` turns back into an `error-code` (`ENOSPC` → `insufficient-space`
/// when the quota is reached).
fn failed(e: std::io::Error) -> StreamError {
    StreamError::LastOperationFailed(e.into())
}

/// A file read from `position` on, on the calling thread.
struct FileReader {
    file: Arc<std::fs::File>,
    position: u64,
}

impl InputStream for FileReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = BytesMut::zeroed(size.min(MAX_READ));
        loop {
            match self.file.read_at(&mut buf, self.position) {
                Ok(0) => return Err(StreamError::Closed),
                Ok(n) => {
                    buf.truncate(n);
                    self.position += n as u64;
                    return Ok(buf.freeze());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(e)),
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileReader {
    /// A local file is always ready: a read returns data, the end, or an error at once.
    async fn ready(&mut self) {}
}

/// A file written at `position` on (or, with `None`, appended to), on the calling thread.
struct FileWriter {
    file: Arc<std::fs::File>,
    position: Option<u64>,
}

impl OutputStream for FileWriter {
    fn write(&mut self, buf: Bytes) -> StreamResult<()> {
        if buf.len() > WRITE_CAPACITY {
            return Err(StreamError::Trap(wasmtime::format_err!(
                "write of {} bytes exceeds the {WRITE_CAPACITY} that check-write allowed",
                buf.len()
            )));
        }
        // Appending: at the end as it is now. The app's storage is its own file system, and
        // the app is one thread, so nothing writes between this and the write below.
        let mut position = match self.position {
            Some(p) => p,
            None => self.file.metadata().map_err(failed)?.len(),
        };
        let mut rest = &buf[..];
        while !rest.is_empty() {
            match self.file.write_at(rest, position) {
                Ok(0) => return Err(failed(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    rest = &rest[n..];
                    position += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(failed(e)),
            }
        }
        if self.position.is_some() {
            self.position = Some(position);
        }
        Ok(())
    }

    /// Written data are already the kernel's; durability is `descriptor.sync`'s (fsync).
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for FileWriter {
    async fn ready(&mut self) {}
}
