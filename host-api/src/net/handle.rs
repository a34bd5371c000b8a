//! Handles of this host's socket objects under wasmtime-wasi's resource types.
//!
//! wasmtime-wasi's generated `Host` traits take and return `Resource<wasmtime_wasi::p2::TcpSocket>`
//! and the like, and those types can only be built inside wasmtime-wasi. This host keeps its
//! own objects in the same `ResourceTable` and hands out their handles under wasmtime-wasi's
//! types. A handle is only a table index (its `rep`); the table checks the stored object's
//! type on every access, so a handle is never taken for an object of another kind (a wrong
//! one traps, as it does in wasmtime-wasi).

use wasmtime::component::Resource;

/// The same table entry under another resource type, owned if `handle` is owned (a handle
/// returned to the guest, or dropped by it), borrowed otherwise (a method's `self`).
pub(super) fn retype<To: 'static, From: 'static>(handle: &Resource<From>) -> Resource<To> {
    if handle.owned() {
        Resource::new_own(handle.rep())
    } else {
        Resource::new_borrow(handle.rep())
    }
}
