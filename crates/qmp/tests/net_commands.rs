//! The network commands: HMP `info network`, `hostfwd_add`, `hostfwd_remove`, `set_link`, and
//! QMP `set_link`.

use qmp::{Command, HmpRequest, Json, parse_hmp_line};

fn cmd(line: &str) -> Command {
    match parse_hmp_line(line) {
        Ok(HmpRequest::Command(c)) => c,
        other => panic!("{line}: {other:?}"),
    }
}

#[test]
fn hmp_network_commands_parse() {
    assert_eq!(cmd("info network"), Command::InfoNetwork);
    assert_eq!(
        cmd("hostfwd_add tcp::2223-:22"),
        Command::HostfwdAdd {
            netdev: None,
            rule: "tcp::2223-:22".into()
        }
    );
    assert_eq!(
        cmd("hostfwd_add user.0 udp:127.0.0.1:5353-:53"),
        Command::HostfwdAdd {
            netdev: Some("user.0".into()),
            rule: "udp:127.0.0.1:5353-:53".into()
        }
    );
    assert_eq!(
        cmd("hostfwd_remove net0 tcp::2223"),
        Command::HostfwdRemove {
            netdev: Some("net0".into()),
            rule: "tcp::2223".into()
        }
    );
    assert_eq!(
        cmd("set_link user.0 off"),
        Command::SetLink {
            name: "user.0".into(),
            up: false
        }
    );
    assert_eq!(
        cmd("set_link e1000.0 on"),
        Command::SetLink {
            name: "e1000.0".into(),
            up: true
        }
    );
    for bad in [
        "set_link user.0",
        "set_link a maybe",
        "hostfwd_add",
        "hostfwd_add a b c",
    ] {
        let e = parse_hmp_line(bad).unwrap_err();
        assert!(e.contains("usage"), "{bad}: {e}");
    }
    assert!(Command::InfoNetwork.has_return());
}

#[test]
fn qmp_set_link_checks_its_arguments() {
    let args = |up: Json| {
        vec![
            ("name".to_string(), Json::String("n0".into())),
            ("up".to_string(), up),
        ]
    };
    assert_eq!(
        Command::from_qmp("set_link", Some(&args(Json::Bool(false)))).unwrap(),
        Command::SetLink {
            name: "n0".into(),
            up: false
        }
    );
    let e = Command::from_qmp("set_link", Some(&args(Json::String("off".into())))).unwrap_err();
    assert_eq!(e.desc, "Invalid parameter type for 'up', expected: boolean");
    let e = Command::from_qmp(
        "set_link",
        Some(&[("name".to_string(), Json::String("n0".into()))]),
    )
    .unwrap_err();
    assert_eq!(e.desc, "Parameter 'up' is missing");
    assert!(qmp::COMMAND_NAMES.contains(&"set_link"));
}
