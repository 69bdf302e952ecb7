//! Transcript tests: exact bytes in, exact JSON out (QEMU's formatting), fake VMM behind.

#[path = "support/fake.rs"]
mod fake;

use std::sync::Arc;

use qmp::{Command, DeviceAdd, ObjectAdd, Props, QmpServer, QmpSession};

fn setup() -> (Arc<fake::FakeVm>, QmpServer, QmpSession) {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    let _ = vm.server.set(server.clone());
    let session = server.session();
    (vm, server, session)
}

/// Feeds `input`, returns the replies as QEMU would print them (without CRLF).
fn run(s: &mut QmpSession, input: &str) -> Vec<String> {
    s.feed(input.as_bytes())
        .iter()
        .map(|j| j.to_qemu_string())
        .collect()
}

fn negotiated() -> (Arc<fake::FakeVm>, QmpServer, QmpSession) {
    let (vm, srv, mut s) = setup();
    assert_eq!(
        run(&mut s, r#"{"execute":"qmp_capabilities"}"#),
        [r#"{"return": {}}"#]
    );
    (vm, srv, s)
}

#[test]
fn greeting_is_qemu_shaped() {
    let (_, _, s) = setup();
    let pkg = format!("pmvm {}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        qmp::session::wire_line(&s.greeting()),
        format!(
            "{{\"QMP\": {{\"version\": {{\"qemu\": {{\"micro\": 0, \"minor\": 2, \"major\": 10}}, \"package\": \"{pkg}\"}}, \"capabilities\": []}}}}\r\n"
        )
    );
}

#[test]
fn commands_before_negotiation_are_refused() {
    let (vm, _, mut s) = setup();
    assert_eq!(
        run(&mut s, r#"{"execute": "query-status", "id": 1}"#),
        [
            r#"{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}, "id": 1}"#
        ]
    );
    assert_eq!(
        run(&mut s, r#"{"execute": "no-such-thing"}"#),
        [
            r#"{"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}"#
        ]
    );
    // Non-CommandNotFound errors keep their text.
    assert_eq!(
        run(
            &mut s,
            r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}"#
        ),
        [r#"{"error": {"class": "GenericError", "desc": "Capability oob not available"}}"#]
    );
    assert_eq!(
        run(
            &mut s,
            r#"{"execute": "qmp_capabilities", "arguments": {"enable": ["x"]}}"#
        ),
        [
            r#"{"error": {"class": "GenericError", "desc": "Parameter 'enable[0]' does not accept value 'x'"}}"#
        ]
    );
    assert!(
        vm.log().is_empty(),
        "the handler must not run before negotiation"
    );
    assert_eq!(
        run(
            &mut s,
            r#"{"execute": "qmp_capabilities", "arguments": {"enable": []}, "id": "c"}"#
        ),
        [r#"{"return": {}, "id": "c"}"#]
    );
    assert_eq!(
        run(&mut s, r#"{"execute": "qmp_capabilities"}"#),
        [
            r#"{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete, command ignored"}}"#
        ]
    );
}

#[test]
fn id_is_echoed_verbatim_for_any_json_value() {
    let (_, _, mut s) = negotiated();
    for id in [
        r#"1"#,
        r#""abc""#,
        r#"{"b": [1, 2.5, null], "a": {"z": true}}"#,
        r#"[]"#,
        r#"-12"#,
        r#"18446744073709551615"#,
        r#""\u00E9\n""#,
    ] {
        let out = run(&mut s, &format!(r#"{{"execute":"stop","id":{id}}}"#));
        assert_eq!(
            out,
            [format!(r#"{{"return": {{}}, "id": {id}}}"#)],
            "id {id}"
        );
    }
    // Single quotes are accepted on input, output always uses double quotes.
    assert_eq!(
        run(&mut s, "{'execute':'cont','id':'it''s'}"),
        [
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expected separator in dict"}}"#
        ]
    );
    assert_eq!(
        run(&mut s, r"{'execute':'cont','id':'it\'s'}"),
        [r#"{"return": {}, "id": "it's"}"#]
    );
}

#[test]
fn malformed_requests() {
    let (_, _, mut s) = negotiated();
    let cases = [
        (
            r#"[1, 2]"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input must be a JSON object"}}"#,
        ),
        (
            r#"{"execute": 1, "id": 7}"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input member 'execute' must be a string"}, "id": 7}"#,
        ),
        (
            r#"{"id": 7}"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input lacks member 'execute'"}, "id": 7}"#,
        ),
        (
            r#"{"execute": "stop", "arguments": []}"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input member 'arguments' must be an object"}}"#,
        ),
        (
            r#"{"execute": "stop", "foo": 1}"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input member 'foo' is unexpected"}}"#,
        ),
        (
            r#"{"exec-oob": "stop", "id": 3}"#,
            r#"{"error": {"class": "GenericError", "desc": "QMP input member 'exec-oob' is unexpected"}, "id": 3}"#,
        ),
        (
            r#"{"execute": "frobnicate", "id": "x"}"#,
            r#"{"error": {"class": "CommandNotFound", "desc": "The command frobnicate has not been found"}, "id": "x"}"#,
        ),
        (
            r#"{ "execute": }"#,
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#,
        ),
        (
            r#"{"execute": "stop", "execute": "cont"}"#,
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, duplicate key"}}"#,
        ),
        (
            r#"{"execute" "stop"}"#,
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, missing : in object pair"}}"#,
        ),
        (
            r#"{"execute": tru}"#,
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, invalid keyword 'tru'"}}"#,
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(run(&mut s, input), [expected], "input {input}");
    }
}

#[test]
fn argument_checking_follows_qapi() {
    let (vm, _, mut s) = negotiated();
    let cases = [
        (
            r#"{"execute": "stop", "arguments": {"now": true}}"#,
            "Parameter 'now' is unexpected",
        ),
        (
            r#"{"execute": "device_del", "arguments": {}}"#,
            "Parameter 'id' is missing",
        ),
        (
            r#"{"execute": "device_del", "arguments": {"id": 5}}"#,
            "Invalid parameter type for 'id', expected: string",
        ),
        (
            r#"{"execute": "object-del", "arguments": {"id": "a", "x": 1}}"#,
            "Parameter 'x' is unexpected",
        ),
        (
            r#"{"execute": "object-add", "arguments": {"id": "m"}}"#,
            "Parameter 'qom-type' is missing",
        ),
        (
            r#"{"execute": "object-add", "arguments": {"qom-type": "memory-backend-file"}}"#,
            "Parameter 'id' is missing",
        ),
        (
            r#"{"execute": "object-add", "arguments": {"qom-type": "memory-backend-file", "id": "m", "host-nodes": [0]}}"#,
            "Invalid parameter type for 'host-nodes', expected: string, number or boolean",
        ),
        (
            r#"{"execute": "device_add", "arguments": {"id": "nv"}}"#,
            "Parameter 'driver' is missing",
        ),
        (
            r#"{"execute": "human-monitor-command", "arguments": {"command-line": "info status", "cpu-index": "0"}}"#,
            "Invalid parameter type for 'cpu-index', expected: integer",
        ),
    ];
    for (input, desc) in cases {
        assert_eq!(
            run(&mut s, input),
            [format!(
                r#"{{"error": {{"class": "GenericError", "desc": "{desc}"}}}}"#
            )],
            "input {input}"
        );
    }
    assert!(
        vm.log().is_empty(),
        "rejected commands must not reach the handler: {:?}",
        vm.log()
    );
}

#[test]
fn nvdimm_hotplug_flow() {
    let (vm, _, mut s) = negotiated();
    let input = concat!(
        r#"{"execute": "object-add", "arguments": {"qom-type": "memory-backend-file", "id": "mem3", "share": true, "mem-path": "/x", "size": 4294967296, "align": 2097152.0}, "id": 1}"#,
        r#"{"execute": "device_add", "arguments": {"driver": "nvdimm", "id": "nvdimm2", "memdev": "mem3", "label-size": "2M", "unarmed": false}, "id": 2}"#,
        "\n",
        r#"{"execute": "query-memory-devices", "id": 3}"#,
        "\r\n",
        r#"{"execute": "query-memory-size-summary", "id": 4}"#,
        r#"{"execute": "device_del", "arguments": {"id": "nvdimm2"}, "id": 5}"#,
        r#"{"execute": "device_del", "arguments": {"id": "nope"}, "id": 6}"#,
    );
    assert_eq!(
        run(&mut s, input),
        [
            r#"{"return": {}, "id": 1}"#,
            r#"{"return": {}, "id": 2}"#,
            r#"{"return": [{"data": {"addr": 5368709120, "hotpluggable": true, "hotplugged": true, "id": "nvdimm2", "memdev": "/objects/mem3", "node": 0, "size": 4294967296, "slot": 0}, "type": "nvdimm"}], "id": 3}"#,
            r#"{"return": {"base-memory": 4294967296, "plugged-memory": 4294967296}, "id": 4}"#,
            r#"{"error": {"class": "GenericError", "desc": "nvdimm device hot unplug is not supported yet."}, "id": 5}"#,
            r#"{"error": {"class": "DeviceNotFound", "desc": "Device 'nope' not found"}, "id": 6}"#,
        ]
    );
    // Properties keep the client's order and are normalised like the command line.
    let log = vm.log();
    assert_eq!(
        log[0],
        Command::ObjectAdd(
            ObjectAdd::new(Props(vec![
                ("qom-type".into(), "memory-backend-file".into()),
                ("id".into(), "mem3".into()),
                ("share".into(), "on".into()),
                ("mem-path".into(), "/x".into()),
                ("size".into(), "4294967296".into()),
                ("align".into(), "2097152".into()),
            ]))
            .unwrap()
        )
    );
    assert_eq!(
        log[1],
        Command::DeviceAdd(
            DeviceAdd::new(Props(vec![
                ("driver".into(), "nvdimm".into()),
                ("id".into(), "nvdimm2".into()),
                ("memdev".into(), "mem3".into()),
                ("label-size".into(), "2M".into()),
                ("unarmed".into(), "off".into()),
            ]))
            .unwrap()
        )
    );
    if let Command::DeviceAdd(d) = &log[1] {
        assert_eq!(
            d.to_opts_string(),
            "nvdimm,id=nvdimm2,memdev=mem3,label-size=2M,unarmed=off"
        );
    }
}

#[test]
fn server_side_queries() {
    let (_, _, mut s) = negotiated();
    let out = run(&mut s, r#"{"execute": "query-version"}"#);
    assert!(
        out[0].starts_with(
            r#"{"return": {"qemu": {"micro": 0, "minor": 2, "major": 10}, "package": "pmvm "#
        ),
        "{out:?}"
    );
    let out = run(&mut s, r#"{"execute": "query-commands"}"#);
    for name in qmp::COMMAND_NAMES {
        assert!(
            out[0].contains(&format!(r#"{{"name": "{name}"}}"#)),
            "{name} missing from {out:?}"
        );
    }
    assert_eq!(
        run(&mut s, r#"{"execute": "query-status"}"#),
        [r#"{"return": {"running": true, "status": "running"}}"#]
    );
    assert_eq!(
        run(&mut s, r#"{"execute": "stop"}{"execute": "query-status"}"#),
        [
            r#"{"return": {}}"#,
            r#"{"return": {"running": false, "status": "paused"}}"#
        ]
    );
    assert_eq!(
        run(&mut s, r#"{"execute": "query-name"}"#),
        [r#"{"return": {"name": "fake"}}"#]
    );
}

#[test]
fn human_monitor_command_uses_hmp() {
    let (vm, _, mut s) = negotiated();
    let out = run(
        &mut s,
        r#"{"execute": "human-monitor-command", "arguments": {"command-line": "object_add memory-backend-file,id=mem3,share,mem-path=/x,size=4G"}, "id": 1}
           {"execute": "human-monitor-command", "arguments": {"command-line": "device_add nvdimm,id=nvdimm2,memdev=mem3"}, "id": 2}
           {"execute": "human-monitor-command", "arguments": {"command-line": "info memory-devices"}, "id": 3}
           {"execute": "human-monitor-command", "arguments": {"command-line": "info status"}, "id": 4}
           {"execute": "human-monitor-command", "arguments": {"command-line": "bogus"}, "id": 5}"#,
    );
    assert_eq!(
        out,
        [
            r#"{"return": "", "id": 1}"#,
            r#"{"return": "", "id": 2}"#,
            r#"{"return": "Memory device [nvdimm]: \"nvdimm2\"\n  addr: 0x140000000\n  slot: 0\n  node: 0\n  size: 4294967296\n  memdev: /objects/mem3\n  hotplugged: true\n  hotpluggable: true\n", "id": 3}"#,
            r#"{"return": "VM status: running\n", "id": 4}"#,
            r#"{"return": "unknown command: 'bogus'\n", "id": 5}"#,
        ]
    );
    assert_eq!(
        vm.log()[0],
        Command::ObjectAdd(
            ObjectAdd::new(Props(vec![
                ("qom-type".into(), "memory-backend-file".into()),
                ("id".into(), "mem3".into()),
                ("share".into(), "on".into()),
                ("mem-path".into(), "/x".into()),
                ("size".into(), "4G".into())
            ]))
            .unwrap()
        )
    );
}

#[test]
fn parse_errors_and_resync() {
    let (_, _, mut s) = negotiated();
    // 0xFF is a lexical error; the parser resyncs and the next command works.
    let mut input = b"{\"execute\": \"st".to_vec();
    input.push(0xFF);
    input.extend_from_slice(b"op\"}\n{\"execute\": \"cont\", \"id\": 1}");
    let out: Vec<String> = s.feed(&input).iter().map(|j| j.to_qemu_string()).collect();
    assert_eq!(
        out,
        [
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error, stray '\\\"st\\uFFFD'\"}}",
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, expecting value"}}"#,
            r#"{"return": {}, "id": 1}"#,
        ]
    );
    // A control character forces a reset even inside an unterminated object.
    let out = run(
        &mut s,
        "{\"execute\": \"stop\", \"arguments\": {\u{1}\n{\"execute\":\"cont\",\"id\":2}",
    );
    assert_eq!(
        out,
        [
            r#"{"error": {"class": "GenericError", "desc": "JSON parse error, stray '\u0001'"}}"#,
            r#"{"return": {}, "id": 2}"#,
        ]
    );
}

#[test]
fn messages_split_across_reads_and_lines() {
    let (_, _, mut s) = negotiated();
    let msg = "{\"execute\":\n \"stop\",\n \"id\": 12345}";
    let mut out = Vec::new();
    for b in msg.as_bytes() {
        out.extend(
            s.feed(std::slice::from_ref(b))
                .iter()
                .map(|j| j.to_qemu_string()),
        );
    }
    assert_eq!(out, [r#"{"return": {}, "id": 12345}"#]);
}
