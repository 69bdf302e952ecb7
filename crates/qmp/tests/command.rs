//! The command table and the `object-add`/`device_add` values.

use qmp::json::Json;
use qmp::{
    COMMAND_NAMES, COMMANDS, Command, DeviceAdd, HmpRequest, ObjectAdd, Props, parse_hmp_line,
};

fn members(json: &str) -> Vec<(String, Json)> {
    let mut r = qmp::MessageReader::new(qmp::Limits::default());
    match r.feed(json.as_bytes()).pop() {
        Some(Ok(Json::Object(m))) => m,
        other => panic!("not an object: {other:?}"),
    }
}

fn decode(name: &str, args: &str) -> Result<Command, String> {
    Command::from_qmp(name, Some(&members(args))).map_err(|e| e.desc)
}

fn props(list: &[(&str, &str)]) -> Props {
    Props(
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[test]
fn query_commands_order_is_unchanged() {
    assert_eq!(
        COMMAND_NAMES,
        [
            "qmp_capabilities",
            "query-version",
            "query-commands",
            "query-status",
            "query-name",
            "query-memory-devices",
            "query-memory-size-summary",
            "query-memdev",
            "query-cpus-fast",
            "query-block",
            "set_link",
            "object-add",
            "object-del",
            "device_add",
            "device_del",
            "stop",
            "cont",
            "system_powerdown",
            "system_reset",
            "quit",
            "query-vnc",
            "set_password",
            "human-monitor-command",
        ]
    );
    let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    assert_eq!(names, COMMAND_NAMES);
}

#[test]
fn every_row_decodes_to_a_command_with_its_name_and_return() {
    let minimal = |name: &str| match name {
        "object-add" => r#"{"qom-type": "t", "id": "i"}"#,
        "object-del" | "device_del" => r#"{"id": "i"}"#,
        "device_add" => r#"{"driver": "d"}"#,
        "human-monitor-command" => r#"{"command-line": "info status"}"#,
        "set_link" => r#"{"name": "n", "up": false}"#,
        "set_password" => r#"{"protocol": "vnc", "password": "p"}"#,
        _ => "{}",
    };
    for spec in COMMANDS {
        let cmd = spec
            .decode(Some(&members(minimal(spec.name))))
            .unwrap_or_else(|e| panic!("{}: {}", spec.name, e.desc));
        assert_eq!(cmd.name(), spec.name);
        assert_eq!(cmd.has_return(), spec.has_return, "{}", spec.name);
    }
    let expected_returns = [
        "query-version",
        "query-commands",
        "query-status",
        "query-name",
        "query-memory-devices",
        "query-memory-size-summary",
        "query-memdev",
        "query-cpus-fast",
        "query-block",
        "query-vnc",
        "human-monitor-command",
    ];
    for spec in COMMANDS {
        assert_eq!(
            spec.has_return,
            expected_returns.contains(&spec.name),
            "{}",
            spec.name
        );
    }
    let regs = Command::InfoRegisters { all: true };
    assert_eq!((regs.name(), regs.has_return()), ("info registers", true));
    assert_eq!(
        decode("info registers", "{}"),
        Err("The command info registers has not been found".into())
    );
}

#[test]
fn device_add_keeps_every_member_in_client_order() {
    let Ok(Command::DeviceAdd(d)) = decode(
        "device_add",
        r#"{"id": "nv1", "memdev": "m", "driver": "nvdimm", "unarmed": true, "slot": 2}"#,
    ) else {
        panic!("not a device_add");
    };
    assert_eq!(
        d.props(),
        &props(&[
            ("id", "nv1"),
            ("memdev", "m"),
            ("driver", "nvdimm"),
            ("unarmed", "on"),
            ("slot", "2"),
        ])
    );
    assert_eq!((d.driver(), d.id()), ("nvdimm", Some("nv1")));
    // The command-line form always starts with the driver, then the id.
    assert_eq!(
        d.to_opts_string(),
        "nvdimm,id=nv1,memdev=m,unarmed=on,slot=2"
    );
    let Ok(Command::DeviceAdd(d)) = decode("device_add", r#"{"driver": "a,b"}"#) else {
        panic!("not a device_add");
    };
    assert_eq!((d.id(), d.to_opts_string().as_str()), (None, "a,,b"));
}

#[test]
fn object_add_keeps_every_member_in_client_order() {
    let Ok(Command::ObjectAdd(o)) = decode(
        "object-add",
        r#"{"size": 1048576, "id": "m", "qom-type": "memory-backend-ram", "share": false}"#,
    ) else {
        panic!("not an object-add");
    };
    assert_eq!(
        o.props(),
        &props(&[
            ("size", "1048576"),
            ("id", "m"),
            ("qom-type", "memory-backend-ram"),
            ("share", "off"),
        ])
    );
    assert_eq!((o.qom_type(), o.id()), ("memory-backend-ram", "m"));
    assert_eq!(
        o.to_opts_string(),
        "memory-backend-ram,id=m,size=1048576,share=off"
    );
}

#[test]
fn required_members_are_checked_when_decoding() {
    let cases = [
        (
            "device_add",
            r#"{"id": "x"}"#,
            "Parameter 'driver' is missing",
        ),
        (
            "device_add",
            r#"{"driver": 1}"#,
            "Invalid parameter type for 'driver', expected: string",
        ),
        (
            "device_add",
            r#"{"driver": "nvdimm", "id": 7}"#,
            "Invalid parameter type for 'id', expected: string",
        ),
        (
            "device_add",
            r#"{"x": [1], "driver": 2}"#,
            "Invalid parameter type for 'driver', expected: string",
        ),
        (
            "object-add",
            r#"{"id": "m"}"#,
            "Parameter 'qom-type' is missing",
        ),
        (
            "object-add",
            r#"{"qom-type": "t"}"#,
            "Parameter 'id' is missing",
        ),
        (
            "object-add",
            r#"{"qom-type": "t", "id": true}"#,
            "Invalid parameter type for 'id', expected: string",
        ),
        (
            "object-add",
            r#"{"qom-type": "t", "id": "m", "host-nodes": [0]}"#,
            "Invalid parameter type for 'host-nodes', expected: string, number or boolean",
        ),
    ];
    for (name, args, err) in cases {
        assert_eq!(decode(name, args), Err(err.to_string()), "{name} {args}");
    }
    assert_eq!(
        DeviceAdd::new(props(&[("id", "x")])).map_err(|e| e.desc),
        Err("Parameter 'driver' is missing".into())
    );
    assert_eq!(
        ObjectAdd::new(props(&[("qom-type", "t")])).map_err(|e| e.desc),
        Err("Parameter 'id' is missing".into())
    );
}

#[test]
fn hmp_builds_the_same_values() {
    let Ok(HmpRequest::Command(Command::DeviceAdd(h))) =
        parse_hmp_line("device_add nvdimm,id=nv1,memdev=m,unarmed")
    else {
        panic!("not a device_add");
    };
    let Ok(Command::DeviceAdd(q)) = decode(
        "device_add",
        r#"{"driver": "nvdimm", "id": "nv1", "memdev": "m", "unarmed": true}"#,
    ) else {
        panic!("not a device_add");
    };
    assert_eq!(h, q);
    // `id` before the other members in the text; repeated keys: the last one counts (as in
    // QEMU's QemuOpts and vm-config), the text keeps every occurrence.
    let Ok(HmpRequest::Command(Command::DeviceAdd(d))) =
        parse_hmp_line("device_add nvdimm,memdev=m,id=a,id=b")
    else {
        panic!("not a device_add");
    };
    assert_eq!(d.id(), Some("b"));
    assert_eq!(d.to_opts_string(), "nvdimm,id=a,memdev=m,id=b");
    assert_eq!(
        parse_hmp_line("object_add id=m,size=1G"),
        Err("Error: Parameter 'qom-type' is missing".into())
    );
    assert_eq!(
        parse_hmp_line("object_add memory-backend-ram,size=1G"),
        Err("Error: Parameter 'id' is missing".into())
    );
    assert_eq!(
        parse_hmp_line("device_add id=x"),
        Err("Error: Parameter 'driver' is missing".into())
    );
}
