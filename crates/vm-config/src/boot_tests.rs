//! Boot order from whole command lines (here, not in boot.rs: parsing a command line goes
//! through args.rs, which uses boot.rs).

use crate::{BootSource, VmConfig, boot_drive_order};

fn parse(extra: &str) -> VmConfig {
    let fw = std::env::temp_dir().join(format!("vmcfg-bios-{}.bin", std::process::id()));
    std::fs::write(&fw, vec![0u8; 64 << 10]).unwrap();
    let mut argv: Vec<String> = vec!["-bios".into(), fw.display().to_string()];
    argv.extend(extra.split_whitespace().map(str::to_string));
    match crate::parse_args(&argv).unwrap() {
        crate::Action::Run(c) => *c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn boot_order_from_the_command_line() {
    // The seed's shape: one disk at index 0, an installer ISO.
    let c = parse("-drive file=d.raw,format=raw,index=0,media=disk -cdrom x.iso");
    assert!(matches!(c.source, BootSource::Firmware(_)));
    assert_eq!(c.drives[1].index, 2);
    assert!(c.drives[1].cdrom && c.drives[1].readonly);
    assert_eq!(boot_drive_order(&c), (vec![0, 1], false));
    // -boot d: the CD-ROM first; strict: nothing else.
    let c = parse("-drive file=d.raw -cdrom x.iso -boot order=d,strict=on");
    assert_eq!(boot_drive_order(&c), (vec![1], true));
    // bootindex beats the letters; lower first.
    let c = parse("-drive file=a,bootindex=5 -drive file=b -drive file=c,bootindex=1 -boot dc");
    assert_eq!(boot_drive_order(&c).0, vec![2, 0, 1]);
    // Letters for devices pmvm lacks are accepted and add nothing.
    let c = parse("-drive file=a -boot n");
    assert_eq!(boot_drive_order(&c).0, Vec::<usize>::new());
}
