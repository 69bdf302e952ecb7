//! Fuzz entry point for the `_DSM` mailbox (hostile guest input).

use crate::dsm::DsmDispatcher;
use crate::label::{DimmRef, DsmTarget, LabelArea, MemLabelArea};
use crate::mailbox::{MAILBOX_SIZE, PRIVATE_HANDLE};
use crate::nfit::{NvdimmAcpiInfo, Persistence, build_fit};

/// Four slots: handle 1 writable 128 KiB labels, 2 read-only 4 KiB labels, 3 no labels,
/// 4 empty.
struct FuzzTarget {
    rw: MemLabelArea,
    ro: MemLabelArea,
    fit: Vec<u8>,
}

impl DsmTarget for FuzzTarget {
    fn dimm(&mut self, handle: u32) -> Option<DimmRef<'_>> {
        match handle {
            1 => Some(DimmRef {
                labels: Some(&mut self.rw),
            }),
            2 => Some(DimmRef {
                labels: Some(&mut self.ro),
            }),
            3 => Some(DimmRef { labels: None }),
            _ => None,
        }
    }

    fn fit(&self) -> &[u8] {
        &self.fit
    }
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = data.split_at(n.min(data.len()));
    *data = tail;
    head
}

/// Runs a sequence of mailbox requests decoded from `data` through a [`DsmDispatcher`] and
/// checks the reply invariants (never panics on any input unless an invariant is broken):
/// replies are 8..=MAILBOX_SIZE bytes with RLEN equal to their length, and a successful
/// function-6 write is visible in the label area.
///
/// Encoding, repeated: `[mode u8][len u16 LE][len bytes]`. `mode & 3`: 0 = the bytes are the
/// raw mailbox copy; 1 = the first 3 bytes pick handle (0..=4 or private), revision (1 or
/// raw) and function (byte), the rest is FARG; 2 = call `fit_changed()`; 3 = like 1 but the
/// copy is padded with zeros to MAILBOX_SIZE.
pub fn fuzz_dsm_mailbox(data: &[u8]) {
    let devs: Vec<NvdimmAcpiInfo> = (0..3)
        .map(|slot| NvdimmAcpiInfo {
            slot,
            gpa: 0x1_0000_0000 + u64::from(slot) * 0x4000_0000,
            pmem_size: 0x800_0000,
            node: 0,
            unarmed: slot == 1,
        })
        .collect();
    let mut target = FuzzTarget {
        rw: MemLabelArea::new(0x20000),
        ro: MemLabelArea {
            data: vec![0xA5; 0x1000],
            read_only: true,
        },
        fit: build_fit(&devs, Some(Persistence::Cpu)),
    };
    let mut disp = DsmDispatcher::new();
    let mut data = data;
    while let Some((&mode, rest)) = data.split_first() {
        data = rest;
        let len_bytes = take(&mut data, 2);
        let len = match len_bytes {
            [a, b] => usize::from(u16::from_le_bytes([*a, *b])),
            _ => 0,
        };
        let body = take(&mut data, len);
        let mailbox: Vec<u8> = match mode & 3 {
            0 => body.to_vec(),
            2 => {
                disp.fit_changed();
                continue;
            }
            m => {
                let pick = |i: usize| body.get(i).copied().unwrap_or(0);
                let handle = match pick(0) % 7 {
                    5 => PRIVATE_HANDLE,
                    6 => u32::from(pick(0)) << 8,
                    h => u32::from(h),
                };
                let rev = if pick(1) < 0xF0 {
                    1
                } else {
                    u32::from(pick(1))
                };
                let mut mb = Vec::with_capacity(MAILBOX_SIZE);
                mb.extend_from_slice(&handle.to_le_bytes());
                mb.extend_from_slice(&rev.to_le_bytes());
                mb.extend_from_slice(&u32::from(pick(2) % 9).to_le_bytes());
                mb.extend_from_slice(body.get(3..).unwrap_or(&[]));
                if m == 3 {
                    mb.resize(MAILBOX_SIZE.max(mb.len()), 0);
                }
                mb
            }
        };
        let reply = disp.handle(&mailbox, &mut target);
        assert!(
            reply.len() >= 8 && reply.len() <= MAILBOX_SIZE,
            "reply length {}",
            reply.len()
        );
        let rlen = u32::from_le_bytes([reply[0], reply[1], reply[2], reply[3]]);
        assert_eq!(
            rlen as usize,
            reply.len(),
            "RLEN must equal the reply length"
        );
        check_write_visible(&mailbox, &reply, &target.rw);
    }
}

/// After a successful function-6 on handle 1, the label area holds the written bytes.
fn check_write_visible(mailbox: &[u8], reply: &[u8], rw: &MemLabelArea) {
    let word = |b: &[u8], o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    };
    let ok = word(reply, 4) == Some(0) && reply.len() == 8;
    if !(ok && word(mailbox, 0) == Some(1) && word(mailbox, 8) == Some(6)) {
        return;
    }
    if let (Some(off), Some(len)) = (word(mailbox, 12), word(mailbox, 16)) {
        let (off, len) = (off as usize, len as usize);
        let mut back = vec![0u8; len];
        assert!(
            rw.read(off as u32, &mut back).is_ok(),
            "accepted write must be in range"
        );
        assert_eq!(
            &back[..],
            &mailbox[20..20 + len],
            "written bytes must be readable"
        );
    }
}
