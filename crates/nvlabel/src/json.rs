//! JSON in the shape of `ndctl read-labels -j` / `-u`.
//!
//! Facts from ndctl `ndctl/dimm.c` (`dump_index_json`, `dump_label_json`) and
//! `util/json.c`: index entries carry signature, major, minor,
//! `labelsize = 1 << (7 + labelsize byte)`, seq and nslot as 32-bit ints;
//! labels carry uuid (`uuid_unparse` of the raw bytes), name, slot, position,
//! nlabel, flags, isetcookie, lbasize, dpa, rawsize and, for 256-byte labels,
//! type_guid and abstraction_guid (raw bytes through `uuid_unparse`, so the
//! first three groups appear byte-swapped). With `-j` every number is a JSON
//! number; with `-u` flags/isetcookie/dpa become `"%#llx"` strings and rawsize
//! a human size string from 5000 KiB up. ndctl prints an array of DIMMs,
//! except that one DIMM is printed as a bare object when ndctl's stdout is a
//! terminal (see [`to_ndctl_string`]).

use serde::Serialize;
use serde_json::Value;

use crate::guid::format_uuid;
use crate::raw::raw_view;

/// Number formatting, as selected by ndctl's `-j` or `-u`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonStyle {
    /// `-j`: plain numbers.
    Plain,
    /// `-u`: hex strings and human sizes.
    Human,
}

/// One DIMM in `read-labels -j` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadLabelsJson {
    /// Device name (`nmemN`).
    pub dev: String,
    /// The two index headers.
    pub index: Vec<IndexJson>,
    /// Labels whose slot field matches their position.
    pub label: Vec<LabelJson>,
}

/// One index header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexJson {
    /// Signature up to its NUL.
    pub signature: String,
    /// Major version.
    pub major: i32,
    /// Minor version.
    pub minor: i32,
    /// `1 << (7 + labelsize)`.
    pub labelsize: i32,
    /// Sequence number.
    pub seq: i32,
    /// Slot count.
    pub nslot: i32,
}

/// One label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelJson {
    /// Namespace UUID.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Slot.
    pub slot: i32,
    /// Position.
    pub position: i32,
    /// nlabel.
    pub nlabel: i32,
    /// Flags (number, or hex string in human style).
    pub flags: Value,
    /// Cookie (number, or hex string in human style).
    pub isetcookie: Value,
    /// Sector size.
    pub lbasize: u64,
    /// DPA (number, or hex string in human style).
    pub dpa: Value,
    /// Size (number, or size string in human style).
    pub rawsize: Value,
    /// v1.2 type GUID as ndctl prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_guid: Option<String>,
    /// v1.2 abstraction GUID as ndctl prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abstraction_guid: Option<String>,
}

/// Why no JSON could be produced (ndctl fails in the same situation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The area cannot hold index blocks for the label size ndctl guesses.
    #[error("label area of {0} bytes is too small to hold an index (minimum 1024 bytes)")]
    TooSmall(usize),
}

/// C `printf("%#llx")`: `0x` prefix except for zero.
fn c_hex(v: u64) -> String {
    if v == 0 {
        "0".to_string()
    } else {
        format!("{v:#x}")
    }
}

/// ndctl's `display_size` (adapted from mdadm): plain number below 5000 KiB,
/// else `"X.XX MiB (Y.YY MB)"` / GiB / TiB with its integer rounding.
pub fn human_size(bytes: u64) -> Value {
    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    const G: u64 = 1 << 30;
    const T: u64 = 1 << 40;
    if bytes < 5000 * K {
        return Value::from(bytes);
    }
    let (iec, unit) = if bytes < 2 * G {
        (bytes.wrapping_mul(200) / M, "MiB")
    } else if bytes < 2 * T {
        (bytes.wrapping_mul(200) / G, "GiB")
    } else {
        (bytes.wrapping_mul(200) / T, "TiB")
    };
    let c = (iec.wrapping_add(1) / 2) as i64;
    let (jedec, junit) = if bytes < 2 * G {
        (bytes / (1_000_000 / 200), "MB")
    } else if bytes < 2 * T {
        (bytes / (1_000_000_000 / 200), "GB")
    } else {
        (bytes / (1_000_000_000_000 / 200), "TB")
    };
    let d = (jedec.wrapping_add(1) / 2) as i64;
    Value::from(format!(
        "{}.{:02} {unit} ({}.{:02} {junit})",
        c / 100,
        c % 100,
        d / 100,
        d % 100
    ))
}

/// Build the `read-labels -j` object for one area, as DIMM `dev`.
pub fn read_labels_json(
    area: &[u8],
    dev: &str,
    style: JsonStyle,
) -> Result<ReadLabelsJson, JsonError> {
    let view = raw_view(area).ok_or(JsonError::TooSmall(area.len()))?;
    let index = view
        .index
        .iter()
        .map(|h| {
            let mut sig = h.sig;
            sig[15] = 0;
            let end = sig.iter().position(|&b| b == 0).unwrap_or(sig.len());
            IndexJson {
                signature: String::from_utf8_lossy(&sig[..end]).into_owned(),
                major: i32::from(h.major),
                minor: i32::from(h.minor),
                // C `1 << (7 + labelsize)` on x86: the shift count is taken mod 32.
                labelsize: 1i32.wrapping_shl(7 + u32::from(h.labelsize)),
                seq: h.seq as i32,
                nslot: h.nslot as i32,
            }
        })
        .collect();
    let human = style == JsonStyle::Human;
    let hex = |v: u64| {
        if human {
            Value::from(c_hex(v))
        } else {
            Value::from(v)
        }
    };
    let label = view
        .labels
        .iter()
        .map(|(slot, l)| LabelJson {
            uuid: format_uuid(&l.uuid),
            name: l.name_str(),
            slot: *slot as i32,
            position: i32::from(l.position),
            nlabel: i32::from(l.nlabel),
            flags: hex(u64::from(l.flags)),
            isetcookie: hex(l.isetcookie),
            lbasize: l.lbasize,
            dpa: hex(l.dpa),
            rawsize: if human {
                human_size(l.rawsize)
            } else {
                Value::from(l.rawsize as i64)
            },
            type_guid: (view.label_size >= 256).then(|| format_uuid(&l.type_guid)),
            abstraction_guid: (view.label_size >= 256).then(|| format_uuid(&l.abstraction_guid)),
        })
        .collect();
    Ok(ReadLabelsJson {
        dev: dev.to_string(),
        index,
        label,
    })
}

/// json-c's `JSON_C_TO_STRING_PRETTY` layout: two-space indent, no space
/// after `:`, and `/` escaped as `\/`.
struct JsonCFormatter {
    inner: serde_json::ser::PrettyFormatter<'static>,
}

impl serde_json::ser::Formatter for JsonCFormatter {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_array(w)
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array(w)
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_array_value(w)
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.begin_object(w)
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object(w)
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.inner.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b":")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.inner.end_object_value(w)
    }
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut parts = fragment.split('/');
        if let Some(first) = parts.next() {
            w.write_all(first.as_bytes())?;
        }
        for p in parts {
            w.write_all(b"\\/")?;
            w.write_all(p.as_bytes())?;
        }
        Ok(())
    }
}

/// Render like ndctl prints it: json-c pretty, no trailing newline.
///
/// The layout follows ndctl's `dimm_action` (since v67): it passes
/// `UTIL_JSON_HUMAN` to `util_display_json_array` exactly when its stdout is a
/// terminal, and that prints a single DIMM as a bare object; otherwise (a pipe
/// or a file, what scripts see) it prints an array, even of one DIMM. `-u`
/// does not change the layout, only the number formats. So `terminal` must be
/// whether *our* stdout is a terminal. ndctl prints nothing for no DIMMs; so
/// does this.
pub fn to_ndctl_string(dimms: &[ReadLabelsJson], terminal: bool) -> String {
    let mut out = Vec::new();
    let fmt = JsonCFormatter {
        inner: serde_json::ser::PrettyFormatter::with_indent(b"  "),
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    let res = match dimms {
        [] => return String::new(),
        [one] if terminal => one.serialize(&mut ser),
        _ => dimms.serialize(&mut ser),
    };
    // Serialising these plain structs into a Vec cannot fail; fall back to
    // the empty string rather than panic if it ever did.
    if res.is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&out).into_owned()
}
