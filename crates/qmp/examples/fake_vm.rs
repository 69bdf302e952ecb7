//! A QMP/HMP server in front of a fake VMM, for trying clients by hand and for the `qemu.qmp`
//! interoperability test:
//!
//! ```text
//! cargo run -p qmp --example fake_vm -- -qmp unix:/tmp/q.sock,server=on,wait=off \
//!     -monitor unix:/tmp/h.sock,server=on,wait=off
//! nc -U /tmp/q.sock
//! ```
//!
//! Exits when a client sends `quit`.

#[path = "../tests/support/fake.rs"]
mod fake;

use std::sync::Arc;
use std::time::Duration;

use qmp::{QmpServer, parse_chardev_spec};

fn main() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    let _ = vm.server.set(server.clone());
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!(
            "usage: fake_vm -qmp SPEC [-monitor SPEC]...   (SPEC as for QEMU, e.g. unix:/tmp/q.sock,server=on,wait=off)"
        );
        std::process::exit(2);
    }
    for pair in args.chunks(2) {
        let [opt, spec] = pair else {
            eprintln!("fake_vm: option {} needs a value", pair[0]);
            std::process::exit(2);
        };
        let parsed = match parse_chardev_spec(spec) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("fake_vm: {e}");
                std::process::exit(2);
            }
        };
        let r = match opt.as_str() {
            "-qmp" => server.listen_spec(&parsed),
            "-monitor" => server.listen_hmp(parsed.endpoint, parsed.server, parsed.wait),
            other => {
                eprintln!("fake_vm: unknown option {other} (use -qmp or -monitor)");
                std::process::exit(2);
            }
        };
        if let Err(e) = r {
            eprintln!("fake_vm: {e}");
            std::process::exit(1);
        }
    }
    eprintln!("fake_vm: ready");
    while !vm.quit_requested() {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the reply and the SHUTDOWN event reach the client, as QEMU does before exiting.
    std::thread::sleep(Duration::from_millis(100));
    server.shutdown();
}
