//! `sysevent`: update events and deferrals (`SystemEventNotifications`,
//! `SoftwareUpdateDeferral`).
//!
//! The first `next-event` asks the broker for a subscription ([`Access::Events`]): one
//! descriptor, the receiving end of a `SOCK_SEQPACKET` socket on which the supervisor sends one
//! [`SysEvent`] per packet — the state of every pending update at once, then each change. The
//! worker keeps it for the rest of the run and waits on it with `ppoll` (the worker has one
//! thread, so blocking the app's call is what the app asked for). `defer-update` and
//! `resume-update` are one broker request each. Whether the app may do any of it is the
//! broker's answer (`not-granted`), from the manifest.

use std::os::fd::AsFd;

use rustix::event::PollFlags;
use warden_ipc::Channel;
use warden_ipc::broker::{self, Access, ResourceRequest, SysEvent};

use crate::bindings::warden::device::sysevent::{self, UpdateEvent, UpdateKind, UpdateStatus};
use crate::bindings::warden::device::types::Error;
use crate::devices::Devices;
use crate::error::{invalid, io};
use crate::linux::{deadline_in, wait_for};

/// Longest `next-event` wait.
pub(crate) const MAX_WAIT_MS: u32 = 60_000;

/// The app's subscription to update events, made by its first `next-event`.
#[derive(Debug, Default)]
pub(crate) struct SysEvents {
    /// The receiving end of the supervisor's events socket.
    channel: Option<Channel>,
}

fn kind_of(kind: UpdateKind) -> broker::UpdateKind {
    match kind {
        UpdateKind::App => broker::UpdateKind::App,
        UpdateKind::Os => broker::UpdateKind::Os,
    }
}

fn event_of(event: SysEvent) -> UpdateEvent {
    UpdateEvent {
        kind: match event.update {
            broker::UpdateKind::App => UpdateKind::App,
            broker::UpdateKind::Os => UpdateKind::Os,
        },
        status: match event.status {
            broker::UpdateStatus::Pending => UpdateStatus::Pending,
            broker::UpdateStatus::Deferred => UpdateStatus::Deferred,
            broker::UpdateStatus::Installing => UpdateStatus::Installing,
            broker::UpdateStatus::Complete => UpdateStatus::Complete,
            broker::UpdateStatus::Abandoned => UpdateStatus::Abandoned,
        },
        component_id: event.component_id,
        version: event.version,
        seconds_to_install: event.seconds_to_install,
        max_deferral_minutes: event.max_deferral_minutes,
    }
}

impl Devices {
    /// The events socket, subscribing on first use.
    fn events(&mut self) -> Result<&Channel, Error> {
        if self.sysevents.channel.is_none() {
            let (grant, fds) = self.ask(ResourceRequest::Events)?;
            if grant.access != Access::Events {
                return Err(io(format!(
                    "the capability broker answered a subscription to update events with {:?}",
                    grant.access
                )));
            }
            let count = fds.len();
            let [fd] = <[_; 1]>::try_from(fds).map_err(|_| {
                io(format!(
                    "update events granted with {count} descriptors, one expected"
                ))
            })?;
            self.sysevents.channel = Some(Channel::from_fd(fd));
        }
        self.sysevents
            .channel
            .as_ref()
            .ok_or_else(|| io("no update events socket"))
    }
}

impl sysevent::Host for Devices {
    fn next_event(&mut self, timeout_ms: u32) -> Result<Option<UpdateEvent>, Error> {
        if timeout_ms > MAX_WAIT_MS {
            return Err(invalid(format!(
                "a wait of {timeout_ms} ms for an update event (at most {MAX_WAIT_MS})"
            )));
        }
        let deadline = deadline_in(timeout_ms);
        let channel = self.events()?;
        let received = match wait_for(channel.as_fd(), PollFlags::IN, Some(deadline)) {
            Ok(None) => return Ok(None),
            Ok(Some(_)) => channel.recv::<SysEvent>(),
            Err(e) => return Err(io(format!("waiting for update events: {e}"))),
        };
        match received {
            // Descriptors never come with an event; any that did close here.
            Ok((event, _)) => Ok(Some(event_of(event))),
            Err(e) => {
                // The next call subscribes again.
                self.sysevents.channel = None;
                Err(io(format!("the update events socket: {e}")))
            }
        }
    }

    fn defer_update(&mut self, kind: UpdateKind, minutes: u32) -> Result<u32, Error> {
        let (grant, _) = self.ask(ResourceRequest::DeferUpdate {
            update: kind_of(kind),
            minutes,
        })?;
        match grant.access {
            Access::Deferred { minutes } => Ok(minutes),
            other => Err(io(format!(
                "the capability broker answered a deferral with {other:?}"
            ))),
        }
    }

    fn resume_update(&mut self, kind: UpdateKind) -> Result<(), Error> {
        let (grant, _) = self.ask(ResourceRequest::ResumeUpdate {
            update: kind_of(kind),
        })?;
        match grant.access {
            Access::Accepted => Ok(()),
            other => Err(io(format!(
                "the capability broker answered a resumption with {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::fd::OwnedFd;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use warden_ipc::broker::{Denial, Grant};

    use super::*;
    use crate::bindings::warden::device::sysevent::Host;
    use crate::opener::Opener;

    /// Answers like the broker of an app with both capabilities; keeps the supervisor's end of
    /// each events socket and every request it saw.
    #[derive(Default, Clone)]
    struct FakeBroker {
        supervisor_ends: Arc<Mutex<Vec<Channel>>>,
        asked: Arc<Mutex<Vec<ResourceRequest>>>,
    }

    impl Opener for FakeBroker {
        fn open(&mut self, request: ResourceRequest) -> Result<(Grant, Vec<OwnedFd>), Denial> {
            self.asked.lock().unwrap().push(request.clone());
            let (access, fds) = match request {
                ResourceRequest::Events => {
                    let (ours, theirs) = Channel::pair().unwrap();
                    self.supervisor_ends.lock().unwrap().push(ours);
                    (Access::Events, vec![theirs.into_fd()])
                }
                ResourceRequest::DeferUpdate { minutes, .. } => (
                    Access::Deferred {
                        minutes: minutes.min(60),
                    },
                    vec![],
                ),
                ResourceRequest::ResumeUpdate { .. } => (Access::Accepted, vec![]),
                _ => return Err(Denial::NotGranted("no".into())),
            };
            Ok((
                Grant {
                    peripheral: request.capability().to_owned(),
                    access,
                },
                fds,
            ))
        }
    }

    fn devices(broker: &FakeBroker) -> Devices {
        Devices::new(Box::new(broker.clone()), Box::new(std::io::sink()))
    }

    fn event(status: broker::UpdateStatus) -> SysEvent {
        SysEvent {
            update: broker::UpdateKind::App,
            status,
            component_id: Some("6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b".into()),
            version: 7,
            seconds_to_install: 12,
            max_deferral_minutes: 10_020,
        }
    }

    #[test]
    fn the_first_wait_subscribes_and_events_arrive_in_order() {
        let fake = FakeBroker::default();
        let mut d = devices(&fake);
        let started = Instant::now();
        assert!(d.next_event(50).unwrap().is_none(), "nothing sent yet");
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(*fake.asked.lock().unwrap(), [ResourceRequest::Events]);
        let ends = fake.supervisor_ends.lock().unwrap();
        ends[0]
            .send(&event(broker::UpdateStatus::Pending), &[])
            .unwrap();
        ends[0]
            .send(&event(broker::UpdateStatus::Installing), &[])
            .unwrap();
        drop(ends);
        let first = d.next_event(1000).unwrap().unwrap();
        assert!(matches!(first.status, UpdateStatus::Pending));
        assert!(matches!(first.kind, UpdateKind::App));
        assert_eq!(first.version, 7);
        assert_eq!(first.seconds_to_install, 12);
        assert_eq!(first.max_deferral_minutes, 10_020);
        assert_eq!(
            first.component_id.as_deref(),
            Some("6a0c1f8e-3b2d-4e5f-9a7b-1c2d3e4f5a6b")
        );
        let second = d.next_event(1000).unwrap().unwrap();
        assert!(matches!(second.status, UpdateStatus::Installing));
        assert_eq!(fake.asked.lock().unwrap().len(), 1, "one subscription");
    }

    #[test]
    fn a_long_wait_is_refused_and_a_broken_socket_is_an_io_error() {
        let fake = FakeBroker::default();
        let mut d = devices(&fake);
        assert!(matches!(
            d.next_event(MAX_WAIT_MS + 1),
            Err(Error::InvalidArgument(_))
        ));
        assert!(
            fake.asked.lock().unwrap().is_empty(),
            "refused in the worker"
        );
        assert!(d.next_event(0).unwrap().is_none());
        fake.supervisor_ends.lock().unwrap().clear();
        assert!(matches!(d.next_event(1000), Err(Error::Io(_))));
        // The next call subscribes anew.
        assert!(d.next_event(0).unwrap().is_none());
        assert_eq!(fake.asked.lock().unwrap().len(), 2);
    }

    #[test]
    fn defer_and_resume_are_asked_of_the_broker() {
        let fake = FakeBroker::default();
        let mut d = devices(&fake);
        assert_eq!(d.defer_update(UpdateKind::Os, 90).unwrap(), 60);
        d.resume_update(UpdateKind::App).unwrap();
        assert!(matches!(
            d.defer_update(UpdateKind::App, 0),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(
            *fake.asked.lock().unwrap(),
            [
                ResourceRequest::DeferUpdate {
                    update: broker::UpdateKind::Os,
                    minutes: 90
                },
                ResourceRequest::ResumeUpdate {
                    update: broker::UpdateKind::App
                }
            ]
        );
    }
}
