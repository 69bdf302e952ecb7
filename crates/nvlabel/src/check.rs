//! Offline consistency check of a label area: every problem, not just the first.

use serde::Serialize;

use crate::cookie::InterleaveSetInfo;
use crate::guid::{PMEM_TYPE_GUID, format_uuid};
use crate::index::IndexProblem;
use crate::label::NSLABEL_FLAG_UPDATING;
use crate::layout::{LABEL_AREA_MIN_SIZE, LabelVersion};
use crate::parse::{LabelProblem, index_problems, parse};
use crate::raw::vote_label_size;

/// Extra facts that enable more checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Size of the DIMM's persistent-memory (DPA) space: labels must lie inside it.
    pub dimm_size: Option<u64>,
    /// NFIT identity of the DIMM: label cookies must match it.
    pub interleave_set: Option<InterleaveSetInfo>,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Valid but unusual; Linux accepts it.
    Warning,
    /// Linux rejects or ignores something, or data is at risk.
    Error,
}

/// One problem found by [`check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Area below the 1024-byte minimum.
    #[error("label area is {0} bytes; the minimum is 1024")]
    TooSmall(usize),
    /// All zero: never initialised.
    #[error(
        "label area is blank (all zero): no index blocks; initialise it with `pmctl label init`"
    )]
    Blank,
    /// No index block validates; the area holds something else.
    #[error("no valid index block: the area is damaged or holds data that is not labels")]
    NoValidIndex,
    /// An index block fails validation.
    #[error("index block {block}: {problem}")]
    Index {
        /// Block number.
        block: usize,
        /// What is wrong.
        problem: IndexProblem,
    },
    /// Both blocks valid with the same sequence number.
    #[error("both index blocks have sequence number {0}; block 1 is taken as current")]
    SameSeq(u32),
    /// Bitmap bits set beyond nslot (ndctl init-labels does this).
    #[error(
        "index block {block}: {count} bitmap bit(s) set at or beyond nslot (ndctl writes whole 64-bit words; harmless)"
    )]
    StrayBits {
        /// Block number.
        block: usize,
        /// Number of such bits.
        count: u32,
    },
    /// An in-use slot holds a label the kernel would skip.
    #[error("slot {slot}: {problem}")]
    Label {
        /// Slot number.
        slot: u32,
        /// What is wrong.
        problem: LabelProblem,
    },
    /// A label extends beyond the DIMM.
    #[error(
        "slot {slot}: extent dpa {dpa:#x} + rawsize {rawsize:#x} lies outside the {dimm_size:#x}-byte DIMM"
    )]
    OutOfRange {
        /// Slot number.
        slot: u32,
        /// Extent start.
        dpa: u64,
        /// Extent size.
        rawsize: u64,
        /// DIMM size.
        dimm_size: u64,
    },
    /// A label with rawsize 0.
    #[error("slot {slot}: rawsize is 0")]
    EmptyExtent {
        /// Slot number.
        slot: u32,
    },
    /// Two labels claim overlapping DPA ranges.
    #[error("slots {a} and {b}: DPA extents overlap")]
    Overlap {
        /// First slot.
        a: u32,
        /// Second slot.
        b: u32,
    },
    /// Cookie differs from the expected one: Linux will not show the namespace.
    #[error(
        "slot {slot}: isetcookie {found:#018x} does not match the region's {expected:#018x} (did the DIMM serial number or slot change?)"
    )]
    CookieMismatch {
        /// Slot number.
        slot: u32,
        /// Stored cookie.
        found: u64,
        /// Expected cookie.
        expected: u64,
    },
    /// v1.2 label carries the v1.1 cookie (accepted as Linux's alternate cookie).
    #[error(
        "slot {slot}: isetcookie is the v1.1 cookie in a v1.2 area (Linux accepts it as the alternate cookie)"
    )]
    AltCookie {
        /// Slot number.
        slot: u32,
    },
    /// v1.2 label whose type GUID is not the pmem GUID.
    #[error("slot {slot}: type_guid {found} is not the pmem SPA type; Linux skips the label")]
    TypeGuid {
        /// Slot number.
        slot: u32,
        /// GUID as ndctl prints it.
        found: String,
    },
    /// nlabel/position inconsistent.
    #[error("slot {slot}: position {position} / nlabel {nlabel} is inconsistent")]
    BadPosition {
        /// Slot number.
        slot: u32,
        /// Stored position.
        position: u16,
        /// Stored nlabel.
        nlabel: u16,
    },
    /// A label belongs to an interleave set (a pmvm vNVDIMM is never interleaved).
    #[error("slot {slot}: nlabel {nlabel} (a pmvm/QEMU vNVDIMM region has exactly one DIMM)")]
    Interleaved {
        /// Slot number.
        slot: u32,
        /// Stored nlabel.
        nlabel: u16,
    },
    /// A label still has the UPDATING flag (an interrupted namespace update).
    #[error("slot {slot}: UPDATING flag set (an update was interrupted)")]
    Updating {
        /// Slot number.
        slot: u32,
    },
}

impl Problem {
    /// Severity of this problem.
    pub fn severity(&self) -> Severity {
        match self {
            Problem::SameSeq(_)
            | Problem::StrayBits { .. }
            | Problem::AltCookie { .. }
            | Problem::Updating { .. } => Severity::Warning,
            Problem::Interleaved { .. } => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// Short stable identifier for scripts.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::TooSmall(_) => "area-too-small",
            Problem::Blank => "blank",
            Problem::NoValidIndex => "no-valid-index",
            Problem::Index { problem, .. } => match problem {
                IndexProblem::BadSignature => "index-signature",
                IndexProblem::LabelSizeMismatch { .. } => "index-labelsize",
                IndexProblem::BadChecksum { .. } => "index-checksum",
                IndexProblem::BadSeq(_) => "index-seq",
                IndexProblem::BadMyoff { .. } => "index-myoff",
                IndexProblem::BadOtheroff { .. } => "index-otheroff",
                IndexProblem::BadLabeloff { .. } => "index-labeloff",
                IndexProblem::BadMysize { .. } => "index-mysize",
                IndexProblem::BadNslot { .. } => "index-nslot",
                IndexProblem::AreaTooSmall { .. } => "area-too-small",
            },
            Problem::SameSeq(_) => "index-same-seq",
            Problem::StrayBits { .. } => "index-stray-bits",
            Problem::Label { problem, .. } => match problem {
                LabelProblem::SlotMismatch { .. } => "label-slot-mismatch",
                LabelProblem::Unaligned { .. } => "label-unaligned",
                LabelProblem::BadChecksum { .. } => "label-checksum",
            },
            Problem::OutOfRange { .. } => "label-out-of-range",
            Problem::EmptyExtent { .. } => "label-empty",
            Problem::Overlap { .. } => "label-overlap",
            Problem::CookieMismatch { .. } => "label-cookie",
            Problem::AltCookie { .. } => "label-alt-cookie",
            Problem::TypeGuid { .. } => "label-type-guid",
            Problem::BadPosition { .. } => "label-position",
            Problem::Interleaved { .. } => "label-interleaved",
            Problem::Updating { .. } => "label-updating",
        }
    }
}

/// Result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Label version in use, if an index validated.
    pub version: Option<LabelVersion>,
    /// Current index block, if any.
    pub current: Option<usize>,
    /// Slot count of the current index.
    pub nslot: Option<u32>,
    /// Number of valid in-use labels.
    pub active_labels: usize,
    /// Everything found, in discovery order.
    pub problems: Vec<Problem>,
}

impl Report {
    /// True when there is no error-severity problem.
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }

    /// Number of error-severity problems.
    pub fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity() == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.problems.len() - self.errors()
    }

    /// A serialisable summary (`{"ok","version","current","nslot","active_labels","errors","warnings","problems":[{"severity","code","message"}]}`).
    pub fn to_json(&self) -> ReportJson {
        ReportJson {
            ok: self.is_ok(),
            version: self.version.map(|v| v.to_string()),
            current: self.current,
            nslot: self.nslot,
            active_labels: self.active_labels,
            errors: self.errors(),
            warnings: self.warnings(),
            problems: self
                .problems
                .iter()
                .map(|p| ProblemJson {
                    severity: p.severity(),
                    code: p.code(),
                    message: p.to_string(),
                })
                .collect(),
        }
    }
}

/// JSON shape of a [`Report`].
#[derive(Debug, Clone, Serialize)]
pub struct ReportJson {
    /// No errors.
    pub ok: bool,
    /// "1.1" / "1.2".
    pub version: Option<String>,
    /// Current block.
    pub current: Option<usize>,
    /// Slot count.
    pub nslot: Option<u32>,
    /// Valid in-use labels.
    pub active_labels: usize,
    /// Error count.
    pub errors: usize,
    /// Warning count.
    pub warnings: usize,
    /// Findings.
    pub problems: Vec<ProblemJson>,
}

/// JSON shape of a [`Problem`].
#[derive(Debug, Clone, Serialize)]
pub struct ProblemJson {
    /// "error" / "warning".
    pub severity: Severity,
    /// [`Problem::code`].
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

/// Check `area` and list every problem.
pub fn check(area: &[u8], opts: &CheckOptions) -> Report {
    let mut r = Report::default();
    if area.len() < LABEL_AREA_MIN_SIZE {
        r.problems.push(Problem::TooSmall(area.len()));
        return r;
    }
    let parsed = match parse(area) {
        Ok(p) => p,
        Err(_) => {
            if area.iter().all(|&b| b == 0) {
                r.problems.push(Problem::Blank);
                return r;
            }
            r.problems.push(Problem::NoValidIndex);
            let ls = vote_label_size(area);
            for (block, probs) in index_problems(area, ls).into_iter().enumerate() {
                r.problems.extend(
                    probs
                        .into_iter()
                        .map(|problem| Problem::Index { block, problem }),
                );
            }
            return r;
        }
    };
    r.version = Some(parsed.version);
    r.current = Some(parsed.current);
    r.nslot = Some(parsed.current_index.header.nslot);
    r.active_labels = parsed.labels.len();
    let ls = parsed.geometry.label_size;
    for (block, probs) in index_problems(area, ls).into_iter().enumerate() {
        r.problems.extend(
            probs
                .into_iter()
                .map(|problem| Problem::Index { block, problem }),
        );
    }
    if let Some(other) = &parsed.other_index
        && other.header.seq & 3 == parsed.current_index.header.seq & 3
    {
        r.problems.push(Problem::SameSeq(other.header.seq & 3));
    }
    let mut blocks = vec![(parsed.current, &parsed.current_index)];
    if let Some(o) = &parsed.other_index {
        blocks.push((parsed.next(), o));
    }
    blocks.sort_by_key(|b| b.0);
    for (block, b) in blocks {
        let count = b.stray_bits();
        if count > 0 {
            r.problems.push(Problem::StrayBits { block, count });
        }
    }
    for rej in &parsed.rejected {
        r.problems
            .extend(rej.problems.iter().map(|&problem| Problem::Label {
                slot: rej.slot,
                problem,
            }));
    }
    let uses_cookie1 = parsed.current_index.header.uses_cookie1();
    for a in &parsed.labels {
        let (slot, l) = (a.slot, &a.label);
        if l.rawsize == 0 {
            r.problems.push(Problem::EmptyExtent { slot });
        }
        if let Some(dimm_size) = opts.dimm_size
            && l.dpa
                .checked_add(l.rawsize)
                .is_none_or(|end| end > dimm_size)
        {
            r.problems.push(Problem::OutOfRange {
                slot,
                dpa: l.dpa,
                rawsize: l.rawsize,
                dimm_size,
            });
        }
        if l.nlabel == 0 || l.position >= l.nlabel {
            r.problems.push(Problem::BadPosition {
                slot,
                position: l.position,
                nlabel: l.nlabel,
            });
        } else if l.nlabel != 1 {
            r.problems.push(Problem::Interleaved {
                slot,
                nlabel: l.nlabel,
            });
        }
        if let Some(set) = opts.interleave_set {
            let expected = set.expected(uses_cookie1);
            if l.isetcookie != expected {
                if !uses_cookie1 && l.isetcookie == set.cookie1() {
                    r.problems.push(Problem::AltCookie { slot });
                } else {
                    r.problems.push(Problem::CookieMismatch {
                        slot,
                        found: l.isetcookie,
                        expected,
                    });
                }
            }
        }
        if parsed.version == LabelVersion::V1_2 && l.type_guid != PMEM_TYPE_GUID {
            r.problems.push(Problem::TypeGuid {
                slot,
                found: format_uuid(&l.type_guid),
            });
        }
        if l.flags & NSLABEL_FLAG_UPDATING != 0 {
            r.problems.push(Problem::Updating { slot });
        }
    }
    let mut extents: Vec<(u64, u64, u32)> = parsed
        .labels
        .iter()
        .filter(|a| a.label.rawsize > 0)
        .map(|a| {
            (
                a.label.dpa,
                a.label.dpa.saturating_add(a.label.rawsize),
                a.slot,
            )
        })
        .collect();
    extents.sort();
    // Sweep: each label that starts before the furthest end seen so far
    // overlaps the label owning that end (linear, one finding per label).
    let mut furthest: Option<(u64, u32)> = None;
    for &(start, end, slot) in &extents {
        if let Some((fend, fslot)) = furthest {
            if start < fend {
                r.problems.push(Problem::Overlap {
                    a: fslot.min(slot),
                    b: fslot.max(slot),
                });
            }
            if end > fend {
                furthest = Some((end, slot));
            }
        } else {
            furthest = Some((end, slot));
        }
    }
    r
}
