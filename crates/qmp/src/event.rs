//! Asynchronous events: `{"event": ..., "data": ..., "timestamp": {...}}`.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::json::{Json, Number, object};

/// When an event happened, relative to the Unix epoch (QEMU: both -1 if the clock failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    /// Seconds.
    pub seconds: i64,
    /// Microseconds within the second.
    pub microseconds: i64,
}

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                microseconds: i64::from(d.subsec_micros()),
            },
            Err(_) => Timestamp {
                seconds: -1,
                microseconds: -1,
            },
        }
    }
}

/// `ShutdownCause`, the `reason` of `SHUTDOWN` and `RESET`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownCause {
    /// No particular reason.
    None,
    /// An error prevents further use of the guest.
    HostError,
    /// The `quit` command.
    HostQmpQuit,
    /// The `system_reset` command.
    HostQmpSystemReset,
    /// A signal such as SIGTERM.
    HostSignal,
    /// A UI event.
    HostUi,
    /// The guest shut itself down (ACPI S5, etc.).
    GuestShutdown,
    /// The guest reset itself.
    GuestReset,
    /// The guest panicked.
    GuestPanic,
    /// A partial reset.
    SubsystemReset,
    /// A snapshot load.
    SnapshotLoad,
}

/// An asynchronous event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Event name, e.g. "POWERDOWN".
    pub name: String,
    /// Event data; `None` omits the member (as QEMU does for events without data).
    pub data: Option<serde_json::Value>,
    /// When it happened.
    pub timestamp: Timestamp,
}

impl Event {
    /// An event happening now.
    pub fn new(name: impl Into<String>, data: Option<serde_json::Value>) -> Self {
        Event {
            name: name.into(),
            data,
            timestamp: Timestamp::now(),
        }
    }

    /// `POWERDOWN`: `system_powerdown` sent the ACPI power button event.
    pub fn powerdown() -> Self {
        Self::new("POWERDOWN", None)
    }

    /// `STOP`: the VM was paused.
    pub fn stop() -> Self {
        Self::new("STOP", None)
    }

    /// `RESUME`: the VM runs again.
    pub fn resume() -> Self {
        Self::new("RESUME", None)
    }

    /// `SHUTDOWN` with `guest` (did the guest initiate it) and `reason`.
    pub fn shutdown(guest: bool, reason: ShutdownCause) -> Self {
        Self::new(
            "SHUTDOWN",
            Some(serde_json::json!({ "guest": guest, "reason": reason })),
        )
    }

    /// `RESET` with `guest` and `reason`.
    pub fn reset(guest: bool, reason: ShutdownCause) -> Self {
        Self::new(
            "RESET",
            Some(serde_json::json!({ "guest": guest, "reason": reason })),
        )
    }

    /// `DEVICE_DELETED`: `device` is the id (if any), `path` the QOM path.
    pub fn device_deleted(device: Option<&str>, path: &str) -> Self {
        let mut data = serde_json::Map::new();
        if let Some(d) = device {
            data.insert("device".into(), d.into());
        }
        data.insert("path".into(), path.into());
        Self::new("DEVICE_DELETED", Some(serde_json::Value::Object(data)))
    }

    /// `ACPI_DEVICE_OST`: the guest's `_OST` report (e.g. after an NVDIMM hotplug).
    pub fn acpi_device_ost(info: AcpiOstInfo) -> Self {
        let info = serde_json::to_value(info).unwrap_or(serde_json::Value::Null);
        Self::new("ACPI_DEVICE_OST", Some(serde_json::json!({ "info": info })))
    }

    /// The wire form, members in the order event, data, timestamp.
    pub fn to_json(&self) -> Json {
        let mut m = vec![("event".to_string(), Json::String(self.name.clone()))];
        if let Some(d) = &self.data {
            m.push(("data".to_string(), Json::from(d)));
        }
        m.push((
            "timestamp".to_string(),
            object([
                ("seconds", Json::Number(Number::Int(self.timestamp.seconds))),
                (
                    "microseconds",
                    Json::Number(Number::Int(self.timestamp.microseconds)),
                ),
            ]),
        ));
        Json::Object(m)
    }
}

/// `ACPIOSTInfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcpiOstInfo {
    /// Device id, if the device has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Slot id.
    pub slot: String,
    /// "DIMM" or "CPU".
    #[serde(rename = "slot-type")]
    pub slot_type: String,
    /// ACPI `_OST` source event code.
    pub source: i64,
    /// ACPI `_OST` status code.
    pub status: i64,
}
