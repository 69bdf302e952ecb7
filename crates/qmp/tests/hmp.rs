//! HMP: parsing onto commands, QEMU's output formats, and a whole session over a byte stream.

#[path = "support/fake.rs"]
mod fake;

use std::sync::Arc;

use qmp::hmp::{format_memdev, format_memory_size_summary, format_status, parse_opts};
use qmp::{
    Command, DeviceAdd, HmpRequest, Memdev, MemoryInfo, ObjectAdd, Props, QmpServer, RunState,
    StatusInfo, parse_hmp_line,
};

#[test]
fn parses_the_seed_hotplug_commands() {
    assert_eq!(
        parse_hmp_line(
            "object_add memory-backend-file,id=mem3,share=on,mem-path=/virtual-machines/qemu/f27nvdimm2,size=4G"
        ),
        Ok(HmpRequest::Command(Command::ObjectAdd(
            ObjectAdd::new(Props(vec![
                ("qom-type".into(), "memory-backend-file".into()),
                ("id".into(), "mem3".into()),
                ("share".into(), "on".into()),
                (
                    "mem-path".into(),
                    "/virtual-machines/qemu/f27nvdimm2".into()
                ),
                ("size".into(), "4G".into()),
            ]))
            .unwrap()
        )))
    );
    assert_eq!(
        parse_hmp_line("  device_add nvdimm,id=nvdimm2,memdev=mem3  "),
        Ok(HmpRequest::Command(Command::DeviceAdd(
            DeviceAdd::new(Props(vec![
                ("driver".into(), "nvdimm".into()),
                ("id".into(), "nvdimm2".into()),
                ("memdev".into(), "mem3".into()),
            ]))
            .unwrap()
        )))
    );
    assert_eq!(
        parse_hmp_line("device_del nvdimm2"),
        Ok(HmpRequest::Command(Command::DeviceDel {
            id: "nvdimm2".into()
        }))
    );
    assert_eq!(
        parse_hmp_line("object_del \"mem 3\""),
        Ok(HmpRequest::Command(Command::ObjectDel {
            id: "mem 3".into()
        }))
    );
    assert_eq!(
        parse_hmp_line("info memory-devices"),
        Ok(HmpRequest::Command(Command::QueryMemoryDevices))
    );
    assert_eq!(
        parse_hmp_line("info memory_size_summary"),
        Ok(HmpRequest::Command(Command::QueryMemorySizeSummary))
    );
    assert_eq!(
        parse_hmp_line("info status"),
        Ok(HmpRequest::Command(Command::QueryStatus))
    );
    assert_eq!(
        parse_hmp_line("system_powerdown"),
        Ok(HmpRequest::Command(Command::SystemPowerdown))
    );
    assert_eq!(parse_hmp_line("q"), Ok(HmpRequest::Command(Command::Quit)));
    assert_eq!(
        parse_hmp_line("help device_add"),
        Ok(HmpRequest::Help(Some("device_add".into())))
    );
    assert_eq!(parse_hmp_line(""), Ok(HmpRequest::Nothing));
}

#[test]
fn hmp_errors() {
    assert_eq!(
        parse_hmp_line("frob"),
        Err("unknown command: 'frob'".into())
    );
    assert_eq!(
        parse_hmp_line("info frob"),
        Err("unknown command: 'info frob'".into())
    );
    assert_eq!(
        parse_hmp_line("object_add memory-backend-file,size=4G"),
        Err("Error: Parameter 'id' is missing".into())
    );
    assert_eq!(
        parse_hmp_line("device_add id=x"),
        Err("Error: Parameter 'driver' is missing".into())
    );
    assert_eq!(
        parse_hmp_line("device_del"),
        Err("device_del: missing argument 'device'".into())
    );
    assert_eq!(
        parse_hmp_line("stop now"),
        Err("stop: extraneous characters at the end of line".into())
    );
}

#[test]
fn qemuopts_syntax() {
    assert_eq!(
        parse_opts(
            "memory-backend-file,id=m,share,mem-path=/a,,b,readonly=off,",
            Some("qom-type")
        ),
        Ok(Props(vec![
            ("qom-type".into(), "memory-backend-file".into()),
            ("id".into(), "m".into()),
            ("share".into(), "on".into()),
            ("mem-path".into(), "/a,b".into()),
            ("readonly".into(), "off".into()),
        ]))
    );
    assert_eq!(
        parse_opts("qom-type=x,id=y", Some("qom-type")).map(|p| p.0.len()),
        Ok(2)
    );
    assert!(parse_opts("x,=v", None).is_err());
}

#[test]
fn formats_like_qemu() {
    let paused = StatusInfo {
        running: false,
        singlestep: None,
        status: RunState::Paused,
    };
    assert_eq!(format_status(&paused), "VM status: paused\n");
    let shut = StatusInfo {
        running: false,
        singlestep: None,
        status: RunState::Shutdown,
    };
    assert_eq!(format_status(&shut), "VM status: paused (shutdown)\n");
    assert_eq!(
        format_memory_size_summary(&MemoryInfo {
            base_memory: 1 << 30,
            plugged_memory: Some(0)
        }),
        "base memory: 1073741824\nplugged memory: 0\n"
    );
    let m = Memdev {
        id: Some("mem1".into()),
        size: 4 << 30,
        merge: false,
        dump: true,
        prealloc: false,
        share: true,
        reserve: None,
        host_nodes: vec![0, 1],
        policy: Default::default(),
    };
    assert_eq!(
        format_memdev(&[m]),
        "memory backend: mem1\n  size:  4294967296\n  merge: false\n  dump: true\n  prealloc: false\n  share: true\n  policy: default\n  host nodes: 0,1\n\n"
    );
}

#[test]
fn info_registers_is_hmp_only() {
    use qmp::{Command, HmpRequest, parse_hmp_line};
    assert_eq!(
        parse_hmp_line("info registers"),
        Ok(HmpRequest::Command(Command::InfoRegisters { all: false }))
    );
    assert_eq!(
        parse_hmp_line("info  registers -a"),
        Ok(HmpRequest::Command(Command::InfoRegisters { all: true }))
    );
    assert!(parse_hmp_line("info registers -b").is_err());
    assert!(parse_hmp_line("info registers -a x").is_err());
    // QEMU has no QMP command for it; human-monitor-command reaches it.
    assert!(Command::from_qmp("info registers", None).is_err());
    assert!(!qmp::COMMAND_NAMES.contains(&"info registers"));
}

#[test]
fn info_cpus_and_query_cpus_fast() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    assert_eq!(
        server.hmp_command("info cpus"),
        "* CPU #0: thread_id=4242\n  CPU #1: thread_id=4243\n"
    );
    let mut s = server.session();
    s.feed(br#"{"execute":"qmp_capabilities"}"#);
    let r = s.feed(br#"{"execute":"query-cpus-fast"}"#);
    let text = qmp::session::wire_line(&r[0]);
    assert!(
        text.contains(r#""cpu-index": 1"#) || text.contains(r#""cpu-index":1"#),
        "{text}"
    );
    assert!(
        text.contains("thread-id") && text.contains("core-id") && !text.contains("node-id"),
        "{text}"
    );
}

#[test]
fn info_block_and_query_block() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    assert_eq!(
        server.hmp_command("info block"),
        "virtio0: /vm/f27.raw (raw, read-only)\n    Cache mode:       writeback\n\n"
    );
    assert!(qmp::COMMAND_NAMES.contains(&"query-block"));
    let mut s = server.session();
    s.feed(br#"{"execute":"qmp_capabilities"}"#);
    let r = s.feed(br#"{"execute":"query-block"}"#);
    let text = qmp::session::wire_line(&r[0]);
    // The reply decodes into QEMU's schema types.
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let list: Vec<qmp::BlockInfo> = serde_json::from_value(v["return"].clone()).unwrap();
    assert_eq!(
        list[0].inserted.as_ref().unwrap().image.virtual_size,
        1 << 20
    );
}

#[test]
fn whole_session_over_a_stream() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm.clone());
    let input = b"object_add memory-backend-file,id=mem3,share,mem-path=/x,size=4G\r\n\
device_add nvdimm,id=nvdimm2,memdev=mem3\n\
info memory-devices\n\
info memory_size_summary\n\
device_del nvdimm2\n\
info version\n\
quit\n\
info status\n";
    let mut out = Vec::new();
    server.serve_hmp(&input[..], &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        text,
        format!(
            "QEMU 10.2.0 monitor - type 'help' for more information\r\n\
(qemu) (qemu) (qemu) Memory device [nvdimm]: \"nvdimm2\"\r\n  addr: 0x140000000\r\n  slot: 0\r\n  node: 0\r\n  size: 4294967296\r\n  memdev: /objects/mem3\r\n  hotplugged: true\r\n  hotpluggable: true\r\n\
(qemu) base memory: 4294967296\r\nplugged memory: 4294967296\r\n\
(qemu) Error: nvdimm device hot unplug is not supported yet.\r\n\
(qemu) 10.2.0 (pmvm {v})\r\n\
(qemu) "
        )
    );
    assert!(vm.quit_requested(), "quit reached the handler");
    // The session ended at quit: "info status" was not executed.
    assert!(!vm.log().contains(&Command::QueryStatus));
}

#[test]
fn help_lists_commands() {
    let vm = Arc::new(fake::FakeVm::new());
    let server = QmpServer::new(vm);
    let h = server.hmp_command("help");
    assert!(
        h.contains(
            "device_add driver[,prop=value][,...] -- add device, like -device on the command line\n"
        ),
        "{h}"
    );
    assert!(h.contains("quit|q  -- quit the emulator\n"), "{h}");
    assert!(
        server
            .hmp_command("info")
            .contains("info memory-devices  -- show memory devices\n")
    );
}
