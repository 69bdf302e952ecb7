//! Placement of memory devices from real command lines.
use crate::{Action, parse_args};

fn argv(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn cfg(s: &str) -> Result<Box<crate::VmConfig>, crate::ConfigError> {
    match parse_args(&argv(s))? {
        Action::Run(c) => Ok(c),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn seed_example_two_4g_nvdimms_with_2m_labels() {
    let c = cfg("-kernel /proc/self/exe -m 4G,slots=4,maxmem=32G -smp 4 -machine pc,accel=kvm,nvdimm=on -enable-kvm \
        -object memory-backend-file,id=mem1,share,mem-path=/a,size=4G -device nvdimm,memdev=mem1,id=nv1,label-size=2M \
        -object memory-backend-file,id=mem2,share,mem-path=/b,size=4G -device nvdimm,memdev=mem2,id=nv2,label-size=2M")
    .unwrap();
    let (_, plans) = super::plan_devices(&c).unwrap();
    assert_eq!(plans.len(), 2);
    // 4 GiB RAM: 3 GiB below 4G, 1 GiB above; window at align_up(5 GiB, 1 GiB).
    assert_eq!(plans[0].gpa, 5 << 30);
    assert_eq!(plans[0].size, (4 << 30) - (2 << 20));
    assert_eq!(plans[0].nvdimm.unwrap().label_offset, (4 << 30) - (2 << 20));
    assert_eq!((plans[0].slot, plans[1].slot), (0, 1));
    assert!(plans[1].gpa >= plans[0].gpa + plans[0].size);
    assert_eq!(
        plans[1].gpa % (128 << 20),
        0,
        "devices start on memory-block boundaries"
    );
    // Same command line, same layout.
    let (_, again) = super::plan_devices(&c).unwrap();
    assert_eq!(plans, again);
}

#[test]
fn checks_name_the_option() {
    let base = "-kernel /proc/self/exe -machine pc,nvdimm=on -object memory-backend-file,id=m,mem-path=/a,size=1G";
    let err = |extra: &str| cfg(&format!("{base} {extra}")).unwrap_err().to_string();
    assert!(err("-m 512M -device nvdimm,id=n,memdev=m").contains("maxmem"));
    assert!(err("-m 512M,slots=0,maxmem=2G -device nvdimm,id=n,memdev=m").contains("slots"));
    assert!(
        cfg(&format!(
            "{base} -m 512M,slots=1,maxmem=2G -device nvdimm,id=n,memdev=m"
        ))
        .is_ok()
    );
    let two = format!(
        "{base} -object memory-backend-file,id=m2,mem-path=/b,size=1G -m 512M,slots=1,maxmem=4G \
         -device nvdimm,id=n,memdev=m -device nvdimm,id=n2,memdev=m2"
    );
    assert!(
        cfg(&two)
            .unwrap_err()
            .to_string()
            .contains("no free slots available")
    );
    let m = err("-m 512M,slots=2,maxmem=1G -device nvdimm,id=n,memdev=m");
    assert!(m.contains("maxmem") || m.contains("space"), "{m}");
    assert!(
        err("-m 512M,slots=2,maxmem=2G -device nvdimm,id=n,memdev=m,label-size=64K")
            .contains("0x20000")
    );
    assert!(
        cfg(&format!(
            "{base} -m 512M,slots=2,maxmem=2G -device nvdimm,id=n,memdev=m,label-size=128K"
        ))
        .is_ok()
    );
}
