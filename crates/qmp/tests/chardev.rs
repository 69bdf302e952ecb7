//! `-qmp`/`-monitor` argument parsing.

use std::path::PathBuf;

use qmp::{ChardevSpec, Endpoint, parse_chardev_spec};

#[test]
fn qemu_spellings() {
    let cases: &[(&str, ChardevSpec)] = &[
        (
            "unix:./qmp-sock,server",
            ChardevSpec {
                endpoint: Endpoint::Unix(PathBuf::from("./qmp-sock")),
                server: true,
                wait: true,
            },
        ),
        (
            "unix:/run/a,,b.sock,server=on,wait=off",
            ChardevSpec {
                endpoint: Endpoint::Unix(PathBuf::from("/run/a,b.sock")),
                server: true,
                wait: false,
            },
        ),
        (
            "tcp:localhost:4444,server,nowait",
            ChardevSpec {
                endpoint: Endpoint::Tcp("localhost".into(), 4444),
                server: true,
                wait: false,
            },
        ),
        (
            "tcp::4444,server=on,wait=off",
            ChardevSpec {
                endpoint: Endpoint::Tcp(String::new(), 4444),
                server: true,
                wait: false,
            },
        ),
        (
            "tcp:[::1]:5000,server=yes,wait=no,telnet=off",
            ChardevSpec {
                endpoint: Endpoint::Tcp("::1".into(), 5000),
                server: true,
                wait: false,
            },
        ),
        (
            "unix:/tmp/s",
            ChardevSpec {
                endpoint: Endpoint::Unix(PathBuf::from("/tmp/s")),
                server: false,
                wait: true,
            },
        ),
        (
            "stdio",
            ChardevSpec {
                endpoint: Endpoint::Stdio,
                server: false,
                wait: true,
            },
        ),
    ];
    for (s, want) in cases {
        assert_eq!(&parse_chardev_spec(s).unwrap(), want, "{s}");
    }
}

#[test]
fn rejects_with_actionable_messages() {
    for (s, needle) in [
        ("pipe:/x", "expected unix:PATH, tcp:HOST:PORT or stdio"),
        ("unix:", "empty"),
        ("tcp:host", "expected tcp:HOST:PORT"),
        ("tcp:host:99999", "port '99999'"),
        ("unix:/x,server=maybe", "'server' expects 'on' or 'off'"),
        ("unix:/x,reconnect=1", "unknown option 'reconnect'"),
        ("tcp::1,server,telnet", "telnet mode is not supported"),
    ] {
        let e = parse_chardev_spec(s).unwrap_err().to_string();
        assert!(e.contains(needle), "{s}: {e}");
        assert!(e.contains(s), "error names the argument: {e}");
    }
}
