//! Fuzz entry point: every read path on hostile bytes must not panic.

use crate::{
    CheckOptions, InterleaveSetInfo, JsonStyle, Label, add_label, check, classify, parse,
    read_labels_json, remove_label, to_ndctl_string,
};

/// Run parse, check, classify, the ndctl JSON view and the writers on `data`
/// as a label area. Never panics (that is the property being fuzzed).
pub fn fuzz_label_area(data: &[u8]) {
    let parsed = parse(data);
    let opts = CheckOptions {
        dimm_size: data.first().map(|&b| u64::from(b) << 20),
        interleave_set: data
            .get(1)
            .map(|&b| InterleaveSetInfo::qemu(0x123456 + u32::from(b & 3))),
    };
    let report = check(data, &opts);
    let _ = report.to_json();
    for p in &report.problems {
        let _ = (p.to_string(), p.code(), p.severity());
    }
    let _ = classify(data);
    for style in [JsonStyle::Plain, JsonStyle::Human] {
        if let Ok(j) = read_labels_json(data, "nmem0", style) {
            for terminal in [false, true] {
                let _ = to_ndctl_string(std::slice::from_ref(&j), terminal);
            }
        }
    }
    if let Ok(area) = parsed {
        let mut copy = data.to_vec();
        let mut l = Label {
            rawsize: 1 << 20,
            ..Label::default()
        };
        let _ = l.set_name("fuzz");
        let _ = add_label(&mut copy, &l);
        if let Some(a) = area.labels.first() {
            let _ = remove_label(&mut copy, a.slot);
        }
        let _ = parse(&copy);
    }
}
