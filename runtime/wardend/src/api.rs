//! The control API's resources, modelled on Azure Sphere's device REST API and snapd:
//!
//! | method and path | does |
//! |---|---|
//! | `GET /status` | supervisor and device status |
//! | `GET /apps` | every installed app |
//! | `GET /apps/{id}` | one app |
//! | `POST /apps/{id}/start`, `POST /apps/{id}/stop` | start (also out of quarantine), stop |
//! | `DELETE /apps/{id}?storage=keep\|wipe` | uninstall; what happens to storage must be said |
//! | `GET /apps/{id}/logs?after=N&wait_ms=M` | log lines after sequence number N; with `wait_ms`, waits up to M ms (at most 30 s) for one |
//! | `GET /apps/{id}/quota` | `MutableStorage` quota and use (`statvfs` of the app's file system), and whether the quota is enforced |
//! | `POST /images` | sideload: the body is a `.wpkg` |
//! | `GET /reports?app=ID&limit=N` | failure reports, newest first |
//! | `POST /updates?notice_s=N` | stage an update: the body is a `.wpkg`, verified now, installed after the notice ([`crate::updates`]) |
//! | `GET /updates`, `GET /updates/{id}` | pending updates, deferrals, the latest outcomes |
//! | `DELETE /updates/{id}` | cancel a pending update |
//! | `/sim/...` | the simulated board, when the board file has one ([`crate::sim_api`]) |
//!
//! Every error is a JSON `{"error": "..."}` with a 4xx status naming what was wrong; a 5xx
//! only for the device's own faults.

use std::io::Read;
use std::time::Duration;

use serde_json::json;
use warden_policy::ids::Guid;

use crate::http::{Request, Response};
use crate::install::InstallError;
use crate::supervisor::{OpError, Supervisor};

/// Largest sideloaded package.
pub const MAX_IMAGE_BYTES: u64 = 512 * 1024 * 1024;
/// Longest a log reader may wait for a new line.
const MAX_LOG_WAIT_MS: u64 = 30_000;
/// Most reports returned at once.
const MAX_REPORTS: usize = 256;

/// Answers one request, on a device without a simulated board.
pub fn route(sup: &Supervisor, req: &mut Request<'_>) -> Response {
    route_with(sup, None, None, req)
}

/// Answers one request; `sim` serves `/sim/...`, `updates` `/updates/...`.
pub fn route_with(
    sup: &Supervisor,
    sim: Option<&crate::sim_api::Simulated>,
    updates: Option<&crate::updates::Updates>,
    req: &mut Request<'_>,
) -> Response {
    let path = req.path.trim_end_matches('/').to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method.clone();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["status"]) => status(sup),
        ("GET", ["apps"]) => Response::json(200, &sup.apps()),
        ("POST", ["images"]) => sideload(sup, req),
        ("GET", ["reports"]) => reports(sup, req),
        (_, ["sim", rest @ ..]) => crate::sim_api::route(sup, sim, req, rest),
        (_, ["updates", rest @ ..]) => match updates {
            Some(updates) => updates.route(sup, req, rest),
            None => Response::error(404, "this supervisor stages no updates"),
        },
        (_, ["apps", id, rest @ ..]) => match id.parse::<Guid>() {
            Err(e) => Response::error(400, &e.to_string()),
            Ok(guid) => app_route(sup, req, &method, &guid.to_string(), rest),
        },
        (_, ["status" | "apps" | "images" | "reports"]) => {
            Response::error(405, &format!("{method} is not allowed on {path}"))
        }
        _ => Response::error(404, &format!("no resource at {path}")),
    }
}

fn app_route(
    sup: &Supervisor,
    req: &mut Request<'_>,
    method: &str,
    id: &str,
    rest: &[&str],
) -> Response {
    let result = match (method, rest) {
        ("GET", []) => sup.app(id).map(|a| Response::json(200, &a)),
        ("POST", ["start"]) => sup.start(id).map(|a| Response::json(200, &a)),
        ("POST", ["stop"]) => sup.stop(id).map(|a| Response::json(200, &a)),
        ("DELETE", []) => {
            let wipe = match req.query("storage") {
                Some("keep") => false,
                Some("wipe") => true,
                _ => {
                    return Response::error(
                        400,
                        "say what happens to the app's storage: ?storage=keep or ?storage=wipe",
                    );
                }
            };
            sup.uninstall(id, wipe)
                .map(|()| Response::json(200, &json!({ "uninstalled": id, "storage_wiped": wipe })))
        }
        ("GET", ["logs"]) => {
            let after = match req.query("after").map(str::parse::<u64>) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return Response::error(400, "`after` must be a number"),
            };
            let wait = match req.query("wait_ms").map(str::parse::<u64>) {
                None => 0,
                Some(Ok(n)) => n.min(MAX_LOG_WAIT_MS),
                Some(Err(_)) => return Response::error(400, "`wait_ms` must be a number"),
            };
            sup.logs(id, after, Duration::from_millis(wait))
                .map(|(lines, dropped)| {
                    Response::json(200, &json!({ "lines": lines, "dropped_bytes": dropped }))
                })
        }
        ("GET", ["quota"]) => sup.quota(id).map(|q| match q {
            Some(usage) => Response::json(200, &usage),
            None => Response::json(200, &json!({ "storage": null })),
        }),
        (_, [] | ["start" | "stop" | "logs" | "quota"]) => {
            return Response::error(405, &format!("{method} is not allowed here"));
        }
        _ => return Response::error(404, "no such app resource"),
    };
    result.unwrap_or_else(|e| op_error(&e))
}

fn op_error(e: &OpError) -> Response {
    let status = match e {
        OpError::NotInstalled(_) => 404,
        OpError::AlreadyRunning(_) => 409,
        OpError::NotRunnable { .. } => 409,
        OpError::Install(InstallError::State(_)) | OpError::State(_) | OpError::Storage(_) => 500,
        OpError::Install(_) => 422,
    };
    Response::error(status, &e.to_string())
}

fn status(sup: &Supervisor) -> Response {
    let apps = sup.apps();
    let running = apps
        .iter()
        .filter(|a| matches!(a.status, crate::supervisor::Status::Running { .. }))
        .count();
    Response::json(
        200,
        &json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": sup.uptime().as_secs(),
            "board": sup.device().board.name,
            "device_id": sup.device().device_id,
            "development_unlocked": sup.device().unlock.is_some(),
            "apps": apps.len(),
            "running": running,
            "storage": sup.storage_status(),
            "seccomp": seccomp_profiles(),
        }),
    )
}

/// The seccomp allow-lists this build's workers install: syscall names per profile.
fn seccomp_profiles() -> serde_json::Value {
    use warden_ipc::SeccompProfile as P;
    let mut out = serde_json::Map::new();
    for (name, profile) in [
        ("worker", P::Worker),
        ("worker_storage", P::WorkerStorage),
        ("worker_devices", P::WorkerDevices),
        ("worker_storage_devices", P::WorkerStorageDevices),
        ("compiler", P::Compiler),
    ] {
        let value = match warden_sandbox::profile_syscalls(profile) {
            Ok(calls) => json!(calls),
            Err(e) => json!({ "error": e.to_string() }),
        };
        out.insert(name.to_owned(), value);
    }
    serde_json::Value::Object(out)
}

fn sideload(sup: &Supervisor, req: &mut Request<'_>) -> Response {
    let body = match req.body(MAX_IMAGE_BYTES) {
        Ok(body) => body,
        Err(response) => return response,
    };
    // The whole body is read by the streaming verifier; a short body is a truncated package.
    match sup.install(body.take(MAX_IMAGE_BYTES)) {
        Ok(installed) => Response::json(201, &installed),
        Err(e) => op_error(&e),
    }
}

fn reports(sup: &Supervisor, req: &Request<'_>) -> Response {
    let limit = match req.query("limit").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) => n.min(MAX_REPORTS),
        Some(Err(_)) => return Response::error(400, "`limit` must be a number"),
    };
    let app = match req.query("app").map(str::parse::<Guid>) {
        None => None,
        Some(Ok(g)) => Some(g.to_string()),
        Some(Err(e)) => return Response::error(400, &e.to_string()),
    };
    Response::json(200, &sup.reports().list(app.as_deref(), limit))
}
